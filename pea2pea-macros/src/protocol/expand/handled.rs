//! The check that the `on` handlers cover every variant of a derived inbound enum, with an
//! error in the DSL's syntax (`add on Chat::Bye => ...`) beside rustc's E0004, whose help is
//! a Rust match arm. It is a constant evaluated by the engine's `unhandled`, since only the
//! type's `SCHEMA` knows its variants; it says nothing when a handler is a catch-all, when a
//! pattern is one it cannot read, and when the type is not a derived enum.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{Pat, Path, Type, spanned::Spanned};

use super::{checked, respan};
use crate::{protocol::check::Model, text::compact};

pub(super) fn check_handled(model: &Model, rt: &TokenStream) -> Option<TokenStream> {
    let inbound = model.inbound.as_ref()?;
    if model.catch_all {
        return None;
    }
    let mut handled = Vec::new();
    for arm in &model.arms {
        variants(&arm.pat, &mut handled)?;
    }
    let written = enum_path(inbound)?;
    let schema = checked(inbound, rt);
    // at the inbound type: the declaration that lacks the handler
    let check = respan(
        quote! {
            const _: () = {
                const UNHANDLED: #rt::Unhandled =
                    #rt::unhandled(<#schema as #rt::Message>::SCHEMA, #written, &[#(#handled),*]);
                if let #rt::Some(message) = UNHANDLED.message() {
                    ::core::panic!("{}", message)
                }
            };
        },
        inbound.span(),
    );
    Some(check)
}

/// Adds the variants `pat` names; `None` for a pattern that may match any variant, or that
/// this check does not read.
fn variants(pat: &Pat, out: &mut Vec<String>) -> Option<()> {
    let path = match pat {
        Pat::Path(p) => &p.path,
        Pat::TupleStruct(p) => &p.path,
        Pat::Struct(p) => &p.path,
        Pat::Or(or) => {
            for case in &or.cases {
                variants(case, out)?;
            }
            return Some(());
        }
        Pat::Paren(p) => return variants(&p.pat, out),
        _ => return None,
    };
    // `Chat::Bye`: a bare `Bye` (imported) is read as a binding, which matches anything
    if path.segments.len() < 2 {
        return None;
    }
    out.push(path.segments.last()?.ident.to_string());
    Some(())
}

/// The enum's path as the protocol writes it, without generic arguments (`v2::Chat`), to
/// write the handler to add; `None` for a type that is not a path.
fn enum_path(ty: &Type) -> Option<String> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let mut path: Path = p.path.clone();
    for segment in &mut path.segments {
        segment.arguments = syn::PathArguments::None;
    }
    Some(compact(&path.to_token_stream().to_string()))
}
