//! `impl Reading`: the codec, and the dispatch of each inbound message to its handler; in a
//! protocol with rpcs, the reader that routes answers and hands handlers to their tasks.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{Expr, Ident, Type, spanned::Spanned};

use super::{
    Side, bind_from, braced, checked, codec, if_clone, millis, respan, setting_const, through,
    usize_lit,
};
use crate::protocol::{
    check::Model,
    parse::{OnArm, RpcItem},
};

pub(super) fn expand_reading(model: &Model, rt: &TokenStream) -> TokenStream {
    let node = &model.node;
    let if_clone = if_clone(model, rt);
    let inbound = model.inbound.as_ref().expect("checked by the caller");
    let (codec_ty, codec_expr) = codec(model, rt, Side::Reading);
    let read = &model.read;
    let (count, millis_ty, flag) = (quote!(#rt::usize), quote!(#rt::u64), quote!(#rt::bool));
    let queue = setting_const(
        "MESSAGE_QUEUE_DEPTH",
        count.clone(),
        read.queue.map(usize_lit),
    );
    let backpressure = setting_const("BACKPRESSURE", flag, read.backpressure.map(|b| quote!(#b)));
    let idle = setting_const("IDLE_TIMEOUT_MS", millis_ty, millis(read.idle_timeout_ms));
    let buffer = setting_const("INITIAL_BUFFER_SIZE", count, read.buffer.map(usize_lit));
    let message_ty = if model.rpcs.is_empty() {
        quote!(#inbound)
    } else {
        quote!(#rt::Inbound<#inbound>)
    };
    // The scrutinee carries the message type's span: a missing variant is reported there.
    let scrutinee = Ident::new("__pea2pea_message", inbound.span());
    let arms = model.arms.iter().map(|arm| expand_arm(arm, rt));
    let catch_all = model.catch_all.then(|| quote!(_ => {}));
    let dispatch = quote! {
        match #scrutinee {
            #(#arms)*
            #catch_all
        }
    };
    let (body, handlers) = if model.rpcs.is_empty() {
        // the reader runs only while its connection is registered: a failing handler's
        // connection is looked up when it fails
        let body = quote! {
            let __pea2pea_conn: #rt::Option<#rt::ConnectionId> = #rt::None;
            #dispatch
        };
        (body, TokenStream::new())
    } else {
        expand_rpc_reading(model, rt, inbound, &scrutinee, dispatch)
    };
    let param = if model.rpcs.is_empty() {
        quote!(#scrutinee)
    } else {
        quote!(__pea2pea_frame)
    };
    // the rpc envelope can tell the peer why its frame was refused
    let refuse = (!model.rpcs.is_empty()).then(|| {
        quote! {
            async fn on_decode_error(&self, __pea2pea_source: #rt::SocketAddr, __pea2pea_error: &#rt::io::Error) {
                #rt::refuse_frame(self, __pea2pea_source, __pea2pea_error).await
            }
        }
    });
    // the codec's items name the inbound type: they carry its span (see `respan`); the
    // message type is spelled as written, as `Reading` needs only `Send` of it
    let codec_body = braced(codec_expr, inbound.span());
    let codec_items = respan(
        quote! {
            type Codec = #codec_ty;

            fn codec(
                &self,
                _: #rt::SocketAddr,
                _: #rt::ConnectionSide,
            ) -> Self::Codec
        },
        inbound.span(),
    );
    let codec_items = quote!(#codec_items #codec_body);
    quote! {
        impl #rt::Reading for #node #if_clone {
            #queue
            #backpressure
            #idle
            #buffer
            type Message = #message_ty;
            #codec_items

            async fn process_message(&self, __pea2pea_source: #rt::SocketAddr, #param: Self::Message) {
                #body
            }

            #refuse
        }

        #handlers
    }
}

/// The reader of a protocol with rpcs: it routes answers to this node's calls itself, hands
/// each message to the connection's handler task (in order) and starts a task per request, so
/// that it never waits for a handler. Returns the reader's body and the handlers' methods.
fn expand_rpc_reading(
    model: &Model,
    rt: &TokenStream,
    inbound: &Type,
    scrutinee: &Ident,
    dispatch: TokenStream,
) -> (TokenStream, TokenStream) {
    let node = &model.node;
    let if_clone = if_clone(model, rt);
    let timeout = model.call_timeout_ms;
    let max = usize_lit(model.max_calls);
    let served = model
        .rpcs
        .iter()
        .filter(|rpc| rpc.handler.is_some())
        .map(|rpc| expand_served(rpc, rt, timeout));
    let body = quote! {
        match __pea2pea_frame {
            #rt::Inbound::Message(__pea2pea_message) => {
                let __pea2pea_this = #rt::Clone::clone(self);
                #rt::deliver_in_order(
                    self,
                    __pea2pea_source,
                    <Self as #rt::Reading>::MESSAGE_QUEUE_DEPTH,
                    move |__pea2pea_conn| #rt::Box::pin(async move {
                        __pea2pea_this
                            .__pea2pea_on_message(__pea2pea_source, #rt::Some(__pea2pea_conn), __pea2pea_message)
                            .await
                    }),
                )
                .await;
            }
            #rt::Inbound::Request {
                id: __pea2pea_id,
                method: __pea2pea_method,
                body: __pea2pea_body,
            } => {
                #rt::serve(
                    self,
                    __pea2pea_source,
                    __pea2pea_id,
                    #max,
                    #timeout,
                    move |__pea2pea_this: Self| async move {
                        __pea2pea_this
                            .__pea2pea_serve(__pea2pea_source, __pea2pea_id, __pea2pea_method, __pea2pea_body)
                            .await
                    },
                )
                .await;
            }
            #rt::Inbound::Response { id: __pea2pea_id, result: __pea2pea_result } => {
                #rt::complete(self, __pea2pea_source, __pea2pea_id, __pea2pea_result);
            }
            // the peer could not decode a frame of ours: recorded, counted, never answered
            #rt::Inbound::Refused(__pea2pea_reason) => {
                #rt::refused_by_peer(self, __pea2pea_source, __pea2pea_reason).await;
            }
        }
    };
    let handlers = quote! {
        impl #node #if_clone {
            /// The `on` handlers (in the connection's handler task).
            #[doc(hidden)]
            async fn __pea2pea_on_message(
                &self,
                __pea2pea_source: #rt::SocketAddr,
                __pea2pea_conn: #rt::Option<#rt::ConnectionId>,
                #scrutinee: #inbound,
            ) {
                #dispatch
            }

            /// The rpc handlers (each request in a task of its own).
            #[doc(hidden)]
            async fn __pea2pea_serve(
                &self,
                __pea2pea_source: #rt::SocketAddr,
                __pea2pea_id: #rt::u64,
                __pea2pea_method: #rt::u64,
                __pea2pea_body: #rt::Bytes,
            ) {
                #(#served)*
                #rt::unknown_method(self, __pea2pea_source, __pea2pea_id, __pea2pea_method, #timeout).await;
            }
        }
    };
    (body, handlers)
}

/// An `on` handler: its body runs in an async block (so that `?` leaves the handler, not the
/// dispatch) and its result is settled by the runtime: `()`, or a `Result` whose error
/// disconnects the peer.
fn expand_arm(arm: &OnArm, rt: &TokenStream) -> TokenStream {
    let pat = &arm.pat;
    let bind = bind_from(&arm.from);
    let body = &arm.body;
    let result = match &arm.result {
        Some(ty) => Some(quote!(#ty)),
        // `?` on the handler's own level needs an error type: io's unless said otherwise
        None => uses_try(body).then(|| quote!(#rt::io::Result<()>)),
    };
    let annotation = result.map(|ty| quote!(: #ty));
    // a result that is neither `()` nor a `Result` is reported at the body
    let outcome = Ident::new("__pea2pea_outcome", body.span());
    let run = quote_spanned!(body.span()=> async { #body }.await);
    quote! {
        #pat => {
            #bind
            let #outcome #annotation = #run;
            #rt::settle(self, __pea2pea_source, __pea2pea_conn, #outcome);
        }
    }
}

/// Whether `body` applies `?` itself (not inside a closure, an async block or an item of its
/// own, where `?` leaves that instead).
fn uses_try(body: &Expr) -> bool {
    struct Finder(bool);
    impl<'a> syn::visit::Visit<'a> for Finder {
        fn visit_expr_try(&mut self, _: &'a syn::ExprTry) {
            self.0 = true;
        }
        fn visit_expr_closure(&mut self, _: &'a syn::ExprClosure) {}
        fn visit_expr_async(&mut self, _: &'a syn::ExprAsync) {}
        fn visit_item(&mut self, _: &'a syn::Item) {}
    }
    let mut finder = Finder(false);
    syn::visit::Visit::visit_expr(&mut finder, body);
    finder.0
}

/// `RpcAnswer::<Response>::into_answer(answer)`, all at the handler body's span (carried by
/// `answer`) but the response type, which keeps its own: an answer of the wrong type is
/// reported at the body, a response type without `Message` where `checked` reports it.
fn answer_call(rt: &TokenStream, response: &TokenStream, answer: &Ident) -> TokenStream {
    let at = answer.span();
    let head = respan(quote!(#rt::RpcAnswer::<), at);
    let tail = respan(quote!(>::into_answer(#answer)), at);
    quote!(#head #response #tail)
}

fn expand_served(rpc: &RpcItem, rt: &TokenStream, timeout: u64) -> TokenStream {
    let handler = rpc.handler.as_ref().expect("filtered by the caller");
    let (request, response) = (checked(&rpc.request, rt), checked(&rpc.response, rt));
    // the calls that name the request and response types carry their spans, to the `.await`
    // (see `respan`)
    let decode = through(&rpc.request, rt, "decode_request");
    let decode = respan(
        quote!(#decode::<Self, _>(self, __pea2pea_source, __pea2pea_id, __pea2pea_body).await),
        rpc.request.span(),
    );
    let respond = through(&rpc.response, rt, "respond");
    let respond = respan(
        quote!(#respond::<Self, _>(self, __pea2pea_source, __pea2pea_id, __pea2pea_answer, #timeout).await),
        rpc.response.span(),
    );
    let pat = &handler.pat;
    let bind = bind_from(&handler.from);
    let body = &handler.body;
    // the response, or a `Result` of it; `?` on the handler's level makes it an io one
    let annotation = uses_try(body).then(|| quote!(: #rt::Result<#response, #rt::io::Error>));
    // an answer of the wrong type is reported at the body
    let answer = Ident::new("__pea2pea_answer", body.span());
    let run = quote_spanned!(body.span()=> async { #body }.await);
    let into_answer = answer_call(rt, &response, &answer);
    quote! {
        if __pea2pea_method == <#request as #rt::Rpc<Self>>::METHOD {
            if let #rt::Some(__pea2pea_request) = #decode {
                let #pat = __pea2pea_request;
                #bind
                let #answer #annotation = #run;
                let __pea2pea_answer = #into_answer;
                #respond;
            }
            return;
        }
    }
}
