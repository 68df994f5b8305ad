//! The engine's trait impls that are not about messages: `Protocol`, the DSL handshake, the
//! `on_connect`/`on_disconnect` hooks, and one `Rpc` impl per `rpc` line.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{Type, spanned::Spanned};

use super::{bind_args, checked, if_clone, millis, respan, setting_const, unit_body};
use crate::{
    protocol::check::{CheckedFraming, HandshakeKind, Model},
    text::compact,
};

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
        Some(ty) => {
            let ty = checked(ty, rt);
            quote!(<#ty as #rt::Message>::FINGERPRINT)
        }
        None => quote!(0u64),
    };
    let (fp_in, fp_out) = (fp(&model.inbound), fp(&model.outbound));
    let framing = framing_code(model, rt);
    let rpcs = model.rpcs.iter().map(|rpc| {
        let (request, response) = (checked(&rpc.request, rt), checked(&rpc.response, rt));
        quote!(.wrapping_add(#rt::rpc_shape(
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

/// The framing as a number, hashed into the fingerprint and compared in the handshake.
fn framing_code(model: &Model, rt: &TokenStream) -> TokenStream {
    match &model.framing {
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
    }
}

/// An rpc's request type as its `rpc` line writes it, without the leading path: what its
/// method id hashes (`v2::Cube` is `Cube`, `Page<u32>` stays).
fn rpc_name(request: &Type) -> String {
    let written = match request {
        Type::Path(path) if path.qself.is_none() => match path.path.segments.last() {
            Some(last) => last.to_token_stream().to_string(),
            None => request.to_token_stream().to_string(),
        },
        other => other.to_token_stream().to_string(),
    };
    compact(&written)
}

/// What the DSL handshake sends about this declaration: a `Declared` constant.
fn declared(model: &Model, rt: &TokenStream) -> TokenStream {
    let node = &model.node;
    let name = model.name.as_ref().map(|n| n.value()).unwrap_or_default();
    let version = model.version;
    let (lo, hi) = model
        .accepts
        .as_ref()
        .map_or((0, u32::MAX), |(range, _)| *range);
    let framing = framing_code(model, rt);
    let schema = |ty: &Option<Type>| match ty {
        Some(ty) => {
            let ty = checked(ty, rt);
            quote!(#rt::Some(#rt::schema_of::<#ty>))
        }
        None => quote!(#rt::None),
    };
    let (inbound, outbound) = (schema(&model.inbound), schema(&model.outbound));
    let rpcs = model.rpcs.iter().map(|rpc| {
        let name = rpc_name(&rpc.request);
        let (request, response) = (checked(&rpc.request, rt), checked(&rpc.response, rt));
        let served = rpc.handler.is_some();
        quote!(#rt::DeclaredRpc {
            name: #name,
            request: #rt::schema_of::<#request>,
            response: #rt::schema_of::<#response>,
            served: #served,
        })
    });
    quote! {
        const __PEA2PEA_DECLARED: #rt::Declared = #rt::Declared {
            fingerprint: <#node as #rt::Protocol>::FINGERPRINT,
            display: <#node as #rt::Protocol>::NAME,
            name: #name,
            version: #version,
            accepts: (#lo, #hi),
            framing: #framing,
            inbound: #inbound,
            outbound: #outbound,
            rpcs: &[#(#rpcs),*],
        };
    }
}

/// `impl Handshake` for `handshake = fingerprint`: the DSL handshake.
pub(super) fn handshake(model: &Model, rt: &TokenStream) -> Option<TokenStream> {
    let node = &model.node;
    let if_clone = if_clone(model, rt);
    (model.handshake == HandshakeKind::Fingerprint).then(|| {
        let timeout = setting_const(
            "TIMEOUT_MS",
            quote!(#rt::u64),
            millis(model.handshake_timeout_ms),
        );
        let declared = declared(model, rt);
        quote! {
            impl #rt::Handshake for #node #if_clone {
                #timeout
                async fn perform_handshake(
                    &self,
                    __pea2pea_conn: #rt::Connection,
                ) -> #rt::io::Result<#rt::Connection> {
                    #declared
                    #rt::fingerprint_handshake(self, __pea2pea_conn, &__PEA2PEA_DECLARED).await
                }
            }
        }
    })
}

/// `impl OnConnect` for an `on_connect(addr) => ...` hook.
pub(super) fn on_connect(model: &Model, rt: &TokenStream) -> Option<TokenStream> {
    let node = &model.node;
    let if_clone = if_clone(model, rt);
    model.on_connect.as_ref().map(|hook| {
        let bind = bind_args(hook, &[quote!(__pea2pea_addr)]);
        let body = unit_body(&hook.body, hook.arrow.span());
        quote! {
            impl #rt::OnConnect for #node #if_clone {
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
    let if_clone = if_clone(model, rt);
    model.on_disconnect.as_ref().map(|hook| {
        let timeout = setting_const(
            "TIMEOUT_MS",
            quote!(#rt::u64),
            millis(model.disconnect_timeout_ms),
        );
        let bind = bind_args(hook, &[quote!(__pea2pea_addr), quote!(__pea2pea_origin)]);
        let body = unit_body(&hook.body, hook.arrow.span());
        quote! {
            impl #rt::OnDisconnect for #node #if_clone {
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
            let request = &rpc.request;
            let name = rpc_name(request);
            let response = checked(&rpc.response, rt);
            // A request type without `Message` is reported once, where `checked` spells it
            // (the fingerprint names it): the bound here makes this impl not apply to it
            // rather than fail again (a bound with a lifetime, even an unused one, may be
            // false without being an error).
            let only_if_message = respan(
                quote!(where for<'__pea2pea> #request: #rt::Message,),
                request.span(),
            );
            quote! {
                impl #rt::Rpc<#node> for #request #only_if_message {
                    type Response = #response;
                    const METHOD: #rt::u64 = #rt::method_of(#name);
                }
            }
        })
        .collect()
}
