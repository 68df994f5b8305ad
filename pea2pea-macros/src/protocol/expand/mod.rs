//! Writes the engine's trait impls for a checked declaration, and the node's typed API: one
//! module per part (`impls`: Protocol, handshake, hooks, Rpc; `reading`; `writing`; `api`: the
//! inherent methods), and here the helpers they share.
//!
//! Everything is named through `#krate::__private_0_1::rt`, fully qualified, so the expansion
//! works in a `#![no_implicit_prelude]` module and beside any user names; locals carry a
//! `__pea2pea_` prefix.

mod api;
mod handled;
mod impls;
mod reading;
mod writing;

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use syn::{Expr, Pat, Type, spanned::Spanned};

use super::{
    check::{CheckedFraming, HandshakeKind, Model},
    parse::Hook,
};

pub fn expand(model: &Model) -> TokenStream {
    let rt = {
        let krate = &model.krate;
        quote!(#krate::__private_0_1::rt)
    };
    let protocol = impls::expand_protocol(model, &rt);
    let handshake = impls::handshake(model, &rt);
    let reading = model
        .inbound
        .as_ref()
        .map(|_| reading::expand_reading(model, &rt));
    let writing = model
        .outbound
        .as_ref()
        .map(|_| writing::expand_writing(model, &rt));
    let on_connect = impls::on_connect(model, &rt);
    let on_disconnect = impls::on_disconnect(model, &rt);
    let rpc_impls = impls::rpc_impls(model, &rt);
    let api = api::expand_api(model, &rt);
    let assert_clone = assert_clone(model, &rt);
    let check_handled = handled::check_handled(model, &rt);
    quote! {
        #assert_clone
        #check_handled
        #protocol
        #handshake
        #reading
        #writing
        #on_connect
        #on_disconnect
        #rpc_impls
        #api
    }
}

/// The where clause of every impl for the node type that needs it to be `Clone` (the engine's
/// protocols do): a node without `Clone` then gets none of them, rather than an error for
/// each, and `assert_clone` reports it once. (A bound with a lifetime, even an unused one,
/// may be false without being an error.)
fn if_clone(model: &Model, rt: &TokenStream) -> TokenStream {
    let node = &model.node;
    quote!(where for<'__pea2pea> #node: #rt::Clone)
}

/// The one error for a node type without `Clone`, at the node type as the protocol names it.
fn assert_clone(model: &Model, rt: &TokenStream) -> TokenStream {
    let node = &model.node;
    let check = respan(quote!(<#node as #rt::CloneNode>::check), node.span());
    quote!(const _: () = { let _: fn() = #check; };)
}

/// A message type the user named, as the generated code spells it: `<T as rt::ProtocolMessage>::Type`,
/// spanned at the user's `T`. Every use is then the same obligation, `T: Message`, at the same
/// place, so a type without the derive is one error there (rustc drops identical diagnostics).
fn checked(ty: &Type, rt: &TokenStream) -> TokenStream {
    through(ty, rt, "Type")
}

/// `<T as rt::ProtocolMessage>::item`, all of it spanned at the user's `T`: an engine function
/// that needs `T: Message`, called so that its only bound on `T` is the one `checked` has.
fn through(ty: &Type, rt: &TokenStream, item: &str) -> TokenStream {
    let item = syn::Ident::new(item, Span::call_site());
    respan(quote!(<#ty as #rt::ProtocolMessage>::#item), ty.span())
}

/// `tokens` with every span set to `span`. rustc reports a bound that a generated item's types
/// fail at the item; an item that names a user's message type carries that type's span, so
/// that its error is the one `checked` reports there, and is dropped as a duplicate.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut inner = Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                tree = TokenTree::Group(inner);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

/// A `{ body }` block whose braces carry `span` (for an item given a span by `respan`: the
/// span of an item runs to its closing brace), its contents left as they are.
fn braced(body: TokenStream, span: Span) -> TokenTree {
    let mut group = Group::new(proc_macro2::Delimiter::Brace, body);
    group.set_span(span);
    TokenTree::Group(group)
}

/// Which impl a codec is for.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Reading,
    Writing,
}

/// The codec type and the expression that builds it, for the given direction's types. Only the
/// side's own message type is spelled `checked` (the decoder needs only the inbound type to be
/// a `Message`, the encoder only the outbound one): a type without `Message` then fails in
/// the impl whose span is its own, not in both.
fn codec(model: &Model, rt: &TokenStream, side: Side) -> (TokenStream, TokenStream) {
    let inbound = model.inbound.as_ref().or(model.outbound.as_ref());
    let outbound = model.outbound.as_ref().or(model.inbound.as_ref());
    let spell = |ty: Option<&Type>, own: bool| match (ty, own) {
        (Some(ty), true) => checked(ty, rt),
        (ty, _) => quote!(#ty),
    };
    let inbound = spell(inbound, side == Side::Reading);
    let outbound = spell(outbound, side == Side::Writing);
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
            // without a handshake, a peer's DSL hello is recognised, to say so
            let check_hello = model.handshake == HandshakeKind::None;
            (
                quote!(#rt::DslCodec<#i, #o>),
                quote!(#rt::length_delimited::<#i, #o>(#max, #width, #little_endian, #check_hello)),
            )
        }
    }
}

/// `const NAME: TYPE = value;` in a trait impl, for a setting that was given.
fn setting_const(name: &str, ty: TokenStream, value: Option<TokenStream>) -> Option<TokenStream> {
    let name = syn::Ident::new(name, Span::call_site());
    value.map(|value| quote!(const #name: #ty = #value;))
}

/// A setting in milliseconds, as a `u64` literal.
fn millis(ms: Option<u64>) -> Option<TokenStream> {
    ms.map(|ms| quote!(#ms))
}

/// A `usize` literal; a value past the target's `usize` is reported by rustc at the literal.
fn usize_lit(n: u64) -> TokenStream {
    let lit = syn::LitInt::new(&format!("{n}usize"), Span::call_site());
    quote!(#lit)
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
