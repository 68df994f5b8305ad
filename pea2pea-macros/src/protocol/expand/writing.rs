//! `impl Writing`: the codec and the outbound message type.

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;

use super::{Side, braced, codec, if_clone, millis, respan, setting_const, usize_lit};
use crate::protocol::check::{CheckedFraming, Model};

pub(super) fn expand_writing(model: &Model, rt: &TokenStream) -> TokenStream {
    let node = &model.node;
    let if_clone = if_clone(model, rt);
    let written = model.outbound.as_ref().expect("checked by the caller");
    let (codec_ty, codec_expr) = codec(model, rt, Side::Writing);
    let write = &model.write;
    let count = quote!(#rt::usize);
    let queue = setting_const(
        "MESSAGE_QUEUE_DEPTH",
        count.clone(),
        write.queue.map(usize_lit),
    );
    let timeout = setting_const("TIMEOUT_MS", quote!(#rt::u64), millis(write.timeout_ms));
    let buffer = setting_const("INITIAL_BUFFER_SIZE", count, write.buffer.map(usize_lit));
    let message_ty = match (&model.framing, model.rpcs.is_empty()) {
        (CheckedFraming::Custom(_), _) => quote!(#written),
        (_, true) => quote!(#rt::Outgoing<#written>),
        (_, false) => quote!(#rt::Frame<#written>),
    };
    // the items that name the outbound type carry its span (see `respan`)
    let codec_body = braced(codec_expr, written.span());
    let types = respan(
        quote! {
            type Message = #message_ty;
            type Codec = #codec_ty;

            fn codec(
                &self,
                _: #rt::SocketAddr,
                _: #rt::ConnectionSide,
            ) -> Self::Codec
        },
        written.span(),
    );
    quote! {
        impl #rt::Writing for #node #if_clone {
            #queue
            #timeout
            #buffer
            #types #codec_body
        }
    }
}
