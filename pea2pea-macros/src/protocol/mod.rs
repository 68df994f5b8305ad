//! `protocol!`: parse the declaration (recovering from malformed items), check it (collecting
//! every error), then expand the engine's trait impls and the node's typed API. The impls are
//! emitted beside the errors, so that one mistake is reported once.

mod check;
mod expand;
mod parse;
mod settings;
mod values;

use proc_macro2::TokenStream;

/// The whole macro: tokens in, impls (and every error found) out.
pub fn protocol(input: TokenStream) -> TokenStream {
    let mut errors = crate::errors::Errors::new();
    let expanded = parse::parse(input, &mut errors).map(|decl| {
        let model = check::check(decl, &mut errors);
        expand::expand(&model)
    });
    let errors = errors.into_compile_errors();
    quote::quote!(#errors #expanded)
}

#[cfg(test)]
mod tests;
