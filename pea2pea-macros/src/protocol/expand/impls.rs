//! The engine's trait impls that are not about messages: `Protocol`, the DSL handshake, the
//! `on_connect`/`on_disconnect` hooks, and one `Rpc` impl per `rpc` line.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{Type, spanned::Spanned};

use super::{bind_args, millis, setting_const, unit_body};
use crate::protocol::check::{CheckedFraming, HandshakeKind, Model};

pub(super) fn expand_protocol(model: &Model, rt: &TokenStream) -> TokenStream {
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

/// `impl Handshake` for `handshake = fingerprint`: the DSL handshake.
pub(super) fn handshake(model: &Model, rt: &TokenStream) -> Option<TokenStream> {
    let node = &model.node;
    (model.handshake == HandshakeKind::Fingerprint).then(|| {
        let timeout = setting_const(
            "TIMEOUT_MS",
            quote!(#rt::u64),
            millis(model.handshake_timeout_ms),
        );
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
    })
}

/// `impl OnConnect` for an `on_connect(addr) => ...` hook.
pub(super) fn on_connect(model: &Model, rt: &TokenStream) -> Option<TokenStream> {
    let node = &model.node;
    model.on_connect.as_ref().map(|hook| {
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
    })
}

/// `impl OnDisconnect` for an `on_disconnect(addr[, origin]) => ...` hook.
pub(super) fn on_disconnect(model: &Model, rt: &TokenStream) -> Option<TokenStream> {
    let node = &model.node;
    model.on_disconnect.as_ref().map(|hook| {
        let timeout = setting_const(
            "TIMEOUT_MS",
            quote!(#rt::u64),
            millis(model.disconnect_timeout_ms),
        );
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
    })
}

/// One `impl Rpc<Node>` per `rpc` line: the request's response and method id.
pub(super) fn rpc_impls(model: &Model, rt: &TokenStream) -> TokenStream {
    let node = &model.node;
    model
        .rpcs
        .iter()
        .map(|rpc| {
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
        })
        .collect()
}
