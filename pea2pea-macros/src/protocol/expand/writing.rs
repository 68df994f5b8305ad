//! `impl Writing`: the codec and the outbound message type.

use proc_macro2::TokenStream;
use quote::quote;

use super::{codec, millis, setting_const, usize_lit};
use crate::protocol::check::{CheckedFraming, Model};

pub(super) fn expand_writing(model: &Model, rt: &TokenStream) -> TokenStream {
    let node = &model.node;
    let outbound = model.outbound.as_ref().expect("checked by the caller");
    let (codec_ty, codec_expr) = codec(model, rt);
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
