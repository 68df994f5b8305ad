//! Writes the engine's trait impls for a checked declaration, and the node's typed API.
//!
//! Everything is named through `#krate::__private::rt`, fully qualified, so the expansion works
//! in a `#![no_implicit_prelude]` module and beside any user names; locals carry a
//! `__pea2pea_` prefix.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::{Expr, Ident, Pat, Type, spanned::Spanned};

use super::{
    check::{CheckedFraming, HandshakeKind, Model},
    parse::{Hook, OnArm, RpcItem},
};

pub fn expand(model: &Model) -> TokenStream {
    let rt = {
        let krate = &model.krate;
        quote!(#krate::__private_0_1::rt)
    };
    let node = &model.node;

    let protocol = expand_protocol(model, &rt);
    let handshake = (model.handshake == HandshakeKind::Fingerprint).then(|| {
        let timeout = model
            .handshake_timeout_ms
            .map(|ms| quote!(const TIMEOUT_MS: #rt::u64 = #ms;));
        quote! {
            impl #rt::Handshake for #node {
                #timeout
                async fn perform_handshake(
                    &self,
                    __pea2pea_conn: #rt::Connection,
                ) -> #rt::io::Result<#rt::Connection> {
                    #rt::fingerprint_handshake(
                        self,
                        __pea2pea_conn,
                        <Self as #rt::Protocol>::FINGERPRINT,
                        <Self as #rt::Protocol>::NAME,
                    )
                    .await
                }
            }
        }
    });
    let reading = model.inbound.as_ref().map(|_| expand_reading(model, &rt));
    let writing = model.outbound.as_ref().map(|_| expand_writing(model, &rt));
    let on_connect = model.on_connect.as_ref().map(|hook| {
        let bind = bind_args(hook, &[quote!(__pea2pea_addr)]);
        let body = unit_body(&hook.body, hook.arrow.span());
        quote! {
            impl #rt::OnConnect for #node {
                async fn on_connect(&self, __pea2pea_addr: #rt::SocketAddr) {
                    #bind
                    #body
                }
            }
        }
    });
    let on_disconnect = model.on_disconnect.as_ref().map(|hook| {
        let timeout = model
            .disconnect_timeout_ms
            .map(|ms| quote!(const TIMEOUT_MS: #rt::u64 = #ms;));
        let bind = bind_args(hook, &[quote!(__pea2pea_addr), quote!(__pea2pea_origin)]);
        let body = unit_body(&hook.body, hook.arrow.span());
        quote! {
            impl #rt::OnDisconnect for #node {
                #timeout
                async fn on_disconnect(
                    &self,
                    __pea2pea_addr: #rt::SocketAddr,
                    __pea2pea_origin: #rt::DisconnectOrigin,
                ) {
                    #bind
                    #body
                }
            }
        }
    });
    let rpc_impls = model.rpcs.iter().map(|rpc| {
        let (request, response) = (&rpc.request, &rpc.response);
        quote! {
            impl #rt::Rpc<#node> for #request {
                type Response = #response;
                const METHOD: #rt::u64 = #rt::method_id(
                    <#request as #rt::Message>::FINGERPRINT,
                    <#response as #rt::Message>::FINGERPRINT,
                );
            }
        }
    });
    let api = expand_api(model, &rt);

    quote! {
        #protocol
        #handshake
        #reading
        #writing
        #on_connect
        #on_disconnect
        #(#rpc_impls)*
        #api
    }
}

fn expand_protocol(model: &Model, rt: &TokenStream) -> TokenStream {
    let node = &model.node;
    let ty_name = |ty: &Option<Type>| {
        ty.as_ref()
            .map(|t| t.to_token_stream().to_string().replace(' ', ""))
    };
    let display = match &model.name {
        Some(name) => name.value(),
        None => match (ty_name(&model.inbound), ty_name(&model.outbound)) {
            (Some(i), Some(o)) if i == o => i,
            (Some(i), Some(o)) => format!("reads {i}, writes {o}"),
            (Some(i), None) => format!("reads {i}"),
            (None, Some(o)) => format!("writes {o}"),
            (None, None) => String::new(),
        },
    };
    // only an explicit name is hashed: a client that reads what its server writes must get
    // the server's fingerprint, so the directions are combined symmetrically below
    let hashed_name = model.name.as_ref().map(|n| n.value()).unwrap_or_default();
    let fp = |ty: &Option<Type>| match ty {
        Some(ty) => quote!(<#ty as #rt::Message>::FINGERPRINT),
        None => quote!(0u64),
    };
    let (fp_in, fp_out) = (fp(&model.inbound), fp(&model.outbound));
    let framing = match &model.framing {
        CheckedFraming::LengthDelimited {
            width,
            little_endian,
            ..
        } => {
            let code = width * 2 + u64::from(*little_endian);
            quote!(#code)
        }
        CheckedFraming::Custom(codec) => {
            let codec = codec.to_token_stream().to_string();
            quote!(#rt::fp_start(#codec))
        }
    };
    let rpcs = model.rpcs.iter().map(|rpc| {
        let (request, response) = (&rpc.request, &rpc.response);
        quote!(.wrapping_add(#rt::method_id(
            <#request as #rt::Message>::FINGERPRINT,
            <#response as #rt::Message>::FINGERPRINT,
        )))
    });
    quote! {
        impl #rt::Protocol for #node {
            const NAME: &'static #rt::str = #display;
            const FINGERPRINT: #rt::u64 = #rt::fp_mix(
                #rt::fp_mix(
                    #rt::fp_mix(#rt::fp_start(#hashed_name), #fp_in.wrapping_add(#fp_out)),
                    #framing,
                ),
                0u64 #(#rpcs)*,
            );
        }
    }
}

/// The codec type and the expression that builds it, for the given direction's types.
fn codec(model: &Model, rt: &TokenStream) -> (TokenStream, TokenStream) {
    let inbound = model.inbound.as_ref().or(model.outbound.as_ref());
    let outbound = model.outbound.as_ref().or(model.inbound.as_ref());
    match &model.framing {
        CheckedFraming::Custom(codec) => {
            (quote!(#codec), quote!(<#codec as #rt::Default>::default()))
        }
        CheckedFraming::LengthDelimited {
            max_frame,
            width,
            little_endian,
        } => {
            let (i, o) = if model.rpcs.is_empty() {
                (quote!(#inbound), quote!(#outbound))
            } else {
                (
                    quote!(#rt::Inbound<#inbound>),
                    quote!(#rt::Frame<#outbound>),
                )
            };
            let max = usize_lit(*max_frame);
            let width = usize_lit(*width);
            // the declared bound is the user's: the rpc envelope gets room on top
            let max = match model.rpcs.is_empty() {
                true => max,
                false => quote!(#rt::frame_bound(#max, #width)),
            };
            (
                quote!(#rt::MessageCodec<#i, #o>),
                quote!(#rt::length_delimited::<#i, #o>(#max, #width, #little_endian)),
            )
        }
    }
}

/// A `usize` literal; a value past the target's `usize` is reported by rustc at the literal.
fn usize_lit(n: u64) -> TokenStream {
    let lit = syn::LitInt::new(&format!("{n}usize"), Span::call_site());
    quote!(#lit)
}

fn expand_reading(model: &Model, rt: &TokenStream) -> TokenStream {
    let node = &model.node;
    let inbound = model.inbound.as_ref().expect("checked by the caller");
    let (codec_ty, codec_expr) = codec(model, rt);
    let read = &model.read;
    let queue = read.queue.map(|n| {
        let n = usize_lit(n);
        quote!(const MESSAGE_QUEUE_DEPTH: #rt::usize = #n;)
    });
    let backpressure = read
        .backpressure
        .map(|b| quote!(const BACKPRESSURE: #rt::bool = #b;));
    let idle = read
        .idle_timeout_ms
        .map(|ms| quote!(const IDLE_TIMEOUT_MS: #rt::u64 = #ms;));
    let buffer = read.buffer.map(|n| {
        let n = usize_lit(n);
        quote!(const INITIAL_BUFFER_SIZE: #rt::usize = #n;)
    });
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
    quote! {
        impl #rt::Reading for #node {
            #queue
            #backpressure
            #idle
            #buffer
            type Message = #message_ty;
            type Codec = #codec_ty;

            fn codec(
                &self,
                _: #rt::SocketAddr,
                _: #rt::ConnectionSide,
            ) -> Self::Codec {
                #codec_expr
            }

            async fn process_message(&self, __pea2pea_source: #rt::SocketAddr, #param: Self::Message) {
                #body
            }
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
        }
    };
    let handlers = quote! {
        impl #node {
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

fn bind_from(from: &Option<Pat>) -> TokenStream {
    match from {
        Some(Pat::Wild(_)) | None => TokenStream::new(),
        Some(pat) => quote!(let #pat = __pea2pea_source;),
    }
}

/// The body, checked to be `()` where the user wrote it.
fn unit_body(body: &Expr, at: Span) -> TokenStream {
    let unit = quote_spanned!(at=> ());
    quote! {
        let _: #unit = #body;
    }
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

fn expand_served(rpc: &RpcItem, rt: &TokenStream, timeout: u64) -> TokenStream {
    let handler = rpc.handler.as_ref().expect("filtered by the caller");
    let (request, response) = (&rpc.request, &rpc.response);
    let pat = &handler.pat;
    let bind = bind_from(&handler.from);
    let body = &handler.body;
    // the response, or a `Result` of it; `?` on the handler's level makes it an io one
    let annotation = uses_try(body).then(|| quote!(: #rt::Result<#response, #rt::io::Error>));
    // an answer of the wrong type is reported at the body
    let answer = Ident::new("__pea2pea_answer", body.span());
    let run = quote_spanned!(body.span()=> async { #body }.await);
    let respond = quote_spanned!(body.span()=> #rt::respond::<Self, _, #response, _>);
    quote! {
        if __pea2pea_method == <#request as #rt::Rpc<Self>>::METHOD {
            if let #rt::Some(__pea2pea_request) = #rt::decode_request::<Self, _, #request>(
                self,
                __pea2pea_source,
                __pea2pea_id,
                __pea2pea_body,
            )
            .await
            {
                let #pat = __pea2pea_request;
                #bind
                let #answer #annotation = #run;
                #respond(self, __pea2pea_source, __pea2pea_id, #answer, #timeout).await;
            }
            return;
        }
    }
}

fn expand_writing(model: &Model, rt: &TokenStream) -> TokenStream {
    let node = &model.node;
    let outbound = model.outbound.as_ref().expect("checked by the caller");
    let (codec_ty, codec_expr) = codec(model, rt);
    let write = &model.write;
    let queue = write.queue.map(|n| {
        let n = usize_lit(n);
        quote!(const MESSAGE_QUEUE_DEPTH: #rt::usize = #n;)
    });
    let timeout = write
        .timeout_ms
        .map(|ms| quote!(const TIMEOUT_MS: #rt::u64 = #ms;));
    let buffer = write.buffer.map(|n| {
        let n = usize_lit(n);
        quote!(const INITIAL_BUFFER_SIZE: #rt::usize = #n;)
    });
    let message_ty = match (&model.framing, model.rpcs.is_empty()) {
        (CheckedFraming::Custom(_), _) => quote!(#outbound),
        (_, true) => quote!(#rt::Outgoing<#outbound>),
        (_, false) => quote!(#rt::Frame<#outbound>),
    };
    quote! {
        impl #rt::Writing for #node {
            #queue
            #timeout
            #buffer
            type Message = #message_ty;
            type Codec = #codec_ty;

            fn codec(
                &self,
                _: #rt::SocketAddr,
                _: #rt::ConnectionSide,
            ) -> Self::Codec {
                #codec_expr
            }
        }
    }
}

fn bind_args(hook: &Hook, sources: &[TokenStream]) -> TokenStream {
    hook.args
        .iter()
        .zip(sources)
        .map(|(pat, source)| match pat {
            Pat::Wild(_) => TokenStream::new(),
            pat => quote!(let #pat = #source;),
        })
        .collect()
}

fn expand_api(model: &Model, rt: &TokenStream) -> TokenStream {
    let node = &model.node;
    let mut enables = Vec::new();
    if model.handshake != HandshakeKind::None {
        enables.push(quote!(#rt::Handshake::enable_handshake(self).await;));
    }
    if model.inbound.is_some() {
        enables.push(quote!(#rt::Reading::enable_reading(self).await;));
    }
    if model.outbound.is_some() {
        enables.push(quote!(#rt::Writing::enable_writing(self).await;));
    }
    if model.on_connect.is_some() {
        enables.push(quote!(#rt::OnConnect::enable_on_connect(self).await;));
    }
    if model.on_disconnect.is_some() {
        enables.push(quote!(#rt::OnDisconnect::enable_on_disconnect(self).await;));
    }

    let sending = model.outbound.as_ref().map(|out| {
        let to_many = match model.framing {
            CheckedFraming::Custom(_) => quote!(#rt::send_to_many_cloned::<Self, #out>),
            CheckedFraming::LengthDelimited { .. } => quote!(#rt::send_to_many_encoded::<Self, #out>),
        };
        let how = match model.framing {
            CheckedFraming::Custom(_) => "Queues a clone of `message` for each of `addrs` (the protocol's codec encodes each one)",
            CheckedFraming::LengthDelimited { .. } => "Encodes `message` once and queues the same bytes for each of `addrs`",
        };
        let to_many_doc = format!(
            "{how}, first for every peer whose outbound queue has room, then for the others at the same time, waiting for room in each (`WhenFull::Wait`, for at most the write timeout): a peer that keeps up never loses a message, and the slowest one sets the pace. It does not wait for the writes. Returns what happened at each peer (`SendReport`: queued, or failed with `NotConnected`, `TimedOut`, the connection's failure, or the encoder's error). `send_to_many_with` chooses another policy for full peers."
        );
        let to_many_with_doc = format!(
            "{how}, and treats each peer whose outbound queue is full as `when_full` says: wait for room (`WhenFull::Wait`, as `send_to_many`), skip it for this message (`WhenFull::Drop`, counted in `dsl::messages_dropped`), or disconnect it (`WhenFull::Disconnect`, counted in `dsl::slow_peers_disconnected`). The message is queued for the peers with room first, so a full peer never delays them. Returns what happened at each peer."
        );
        quote! {
            /// Queues `message` for the peer at `addr`, waiting for room if its outbound queue
            /// is full, then waits until it is written to the socket (not until the peer has
            /// read it). It fails with `NotConnected` (no connection to `addr`), the encoder's
            /// error, `TimedOut` (no room in the queue, or the write not done, within the
            /// protocol's write timeout: the peer stopped reading), `ConnectionAborted` or
            /// `BrokenPipe` (the connection closed before the message was written), the write's
            /// own error, or the node's `ShuttingDown` error.
            #[must_use = "the message is not sent unless this future is awaited"]
            pub fn send(
                &self,
                addr: #rt::SocketAddr,
                message: #out,
            ) -> impl #rt::Future<Output = #rt::io::Result<()>> + '_ {
                #rt::send(self, addr, #rt::From::from(message))
            }

            /// Queues `message` for the peer at `addr` and returns at once, without waiting for
            /// room or for the write. It fails with `QuotaExceeded` when the peer's outbound
            /// queue is full (the message is not sent; retry later or use `send`), with
            /// `NotConnected`, with `BrokenPipe` when the connection is closing, or with the
            /// encoder's error. A queued message that is never written ends its connection.
            pub fn send_fast(
                &self,
                addr: #rt::SocketAddr,
                message: #out,
            ) -> #rt::io::Result<()> {
                #rt::send_fast(self, addr, #rt::From::from(message))
            }

            #[doc = #to_many_doc]
            pub async fn send_to_many(
                &self,
                addrs: impl #rt::IntoIterator<Item = #rt::SocketAddr>,
                message: &#out,
            ) -> #rt::SendReport {
                #to_many(self, addrs, message, #rt::WhenFull::Wait).await
            }

            #[doc = #to_many_with_doc]
            pub async fn send_to_many_with(
                &self,
                addrs: impl #rt::IntoIterator<Item = #rt::SocketAddr>,
                message: &#out,
                when_full: #rt::WhenFull,
            ) -> #rt::SendReport {
                #to_many(self, addrs, message, when_full).await
            }
        }
    });
    let sending = sending.unwrap_or_else(|| undeclared_sends(rt));
    let call = (!model.rpcs.is_empty()).then(|| {
        let timeout = model.call_timeout_ms;
        let max = usize_lit(model.max_calls);
        let doc = format!(
            "Sends `request` to the peer at `addr` (waiting for room in its outbound queue if it is full) and waits for its response, for at most {timeout} ms in all. Fails with `TimedOut` then, with `NotConnected` if there is no connection to `addr`, with `ConnectionAborted` as soon as that connection closes before the answer, with `QuotaExceeded` when {} calls to that peer are already in flight, with the peer's reason when it cannot answer (`Other`: no handler for the request, or \"busy\" when it is serving its `max_calls` of this node's calls), or with `InvalidData` when the answer does not decode. The peer serves calls side by side, so its answers may come in any order.",
            model.max_calls
        );
        quote! {
            #[doc = #doc]
            pub fn call<__Pea2peaRequest>(
                &self,
                addr: #rt::SocketAddr,
                request: __Pea2peaRequest,
            ) -> #rt::Call<'_, Self, __Pea2peaRequest> {
                #rt::Call::new(self, addr, request, #timeout, #max)
            }
        }
    });
    let call = call.unwrap_or_else(|| undeclared_call(rt));
    let handshake_ms = match model.handshake {
        HandshakeKind::None => quote!(0u64),
        _ => quote!(<Self as #rt::Handshake>::TIMEOUT_MS),
    };
    let start_doc = "Enables the declared protocols (as `enable_protocols` does) and starts listening on the configured address, unless the node is already listening (`Node::start_listening`); returns the address it listens on. Calling it again, even concurrently, returns the same address.";
    quote! {
        impl #node {
            #[doc = #start_doc]
            pub async fn start(&self) -> #rt::io::Result<#rt::SocketAddr> {
                Self::enable_protocols(self).await;
                #rt::Node::start_listening(#rt::Pea2Pea::node(self)).await
            }

            /// Enables exactly the declared protocols, in the engine's order (handshake,
            /// reading, writing, on_connect, on_disconnect), without listening: for a node
            /// that only dials out. Calling it again does nothing.
            pub async fn enable_protocols(&self) {
                if #rt::first_enable(#rt::Pea2Pea::node(self)) {
                    #(#enables)*
                }
            }

            /// Returns the address of a connection to the node that listens at `addr`,
            /// dialling it only if there is none: a connection this node dialled to `addr`, or,
            /// with `handshake = fingerprint`, one the peer dialled from another port (the
            /// handshake told its listening address); and a dial on its way (another task's, or
            /// the peer's) is waited for. Two nodes that call it for each other at once end with
            /// one connection: the one dialled by the lower listening address. Send to, and
            /// call, the address it returns. Fails with the dial's error, or `TimedOut` after
            /// twice the connection and handshake timeouts.
            pub async fn connect_if_needed(
                &self,
                addr: #rt::SocketAddr,
            ) -> #rt::io::Result<#rt::SocketAddr> {
                #rt::connect_if_needed(#rt::Pea2Pea::node(self), addr, #handshake_ms).await
            }

            #sending
            #call
        }
    }
}

/// A node that writes nothing still gets the send methods, each bound by a trait without
/// implementations, so that using one is a single error saying to declare `writes`.
fn undeclared_sends(rt: &TokenStream) -> TokenStream {
    let bound = quote!(#rt::NoWritesDeclared<Self>);
    quote! {
        /// Not available: the protocol declares no messages to write (see the compile error).
        pub fn send<__Pea2peaMessage: #bound>(
            &self,
            _addr: #rt::SocketAddr,
            message: __Pea2peaMessage,
        ) -> #rt::Ready<#rt::io::Result<()>> {
            <__Pea2peaMessage as #bound>::undeclared(&message)
        }

        /// Not available: the protocol declares no messages to write (see the compile error).
        pub fn send_fast<__Pea2peaMessage: #bound>(
            &self,
            _addr: #rt::SocketAddr,
            message: __Pea2peaMessage,
        ) -> #rt::io::Result<()> {
            <__Pea2peaMessage as #bound>::undeclared(&message)
        }

        /// Not available: the protocol declares no messages to write (see the compile error).
        pub fn send_to_many<__Pea2peaMessage: #bound>(
            &self,
            _addrs: impl #rt::IntoIterator<Item = #rt::SocketAddr>,
            message: &__Pea2peaMessage,
        ) -> #rt::Ready<#rt::SendReport> {
            <__Pea2peaMessage as #bound>::undeclared(message)
        }

        /// Not available: the protocol declares no messages to write (see the compile error).
        pub fn send_to_many_with<__Pea2peaMessage: #bound>(
            &self,
            _addrs: impl #rt::IntoIterator<Item = #rt::SocketAddr>,
            message: &__Pea2peaMessage,
            _when_full: #rt::WhenFull,
        ) -> #rt::Ready<#rt::SendReport> {
            <__Pea2peaMessage as #bound>::undeclared(message)
        }
    }
}

/// A node without `rpc` lines still gets a `call`, bound by a trait without implementations,
/// so that using it is a single error saying to declare `rpc Request -> Response`. Its output
/// type is left to inference, so the error is not followed by type mismatches.
fn undeclared_call(rt: &TokenStream) -> TokenStream {
    quote! {
        /// Not available: the protocol declares no `rpc` line (see the compile error).
        pub fn call<__Pea2peaRequest: #rt::NoRpcDeclared<Self>, __Pea2peaResponse>(
            &self,
            _addr: #rt::SocketAddr,
            request: __Pea2peaRequest,
        ) -> #rt::Ready<#rt::io::Result<__Pea2peaResponse>> {
            <__Pea2peaRequest as #rt::NoRpcDeclared<Self>>::undeclared(&request)
        }
    }
}
