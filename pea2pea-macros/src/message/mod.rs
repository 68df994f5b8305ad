//! `#[derive(Message)]`: parse the type and its `#[message(...)]` attributes, check them
//! (collecting every error), then expand the `Message` impl.

mod attr;
mod check;
mod describe;
mod expand;
mod parse;

use proc_macro2::TokenStream;

/// The whole derive: tokens in, impl (or every error found, combined) out.
pub fn derive(input: TokenStream) -> TokenStream {
    let input = match syn::parse2::<syn::DeriveInput>(input) {
        Ok(input) => input,
        Err(err) => return err.to_compile_error(),
    };
    let mut errors = crate::errors::Errors::new();
    let mut parsed = parse::Input::from_syn(&input, &mut errors);
    if let Some(parsed) = &mut parsed {
        check::check(parsed, &mut errors);
    }
    match (parsed, errors.finish()) {
        (Some(parsed), Ok(())) => expand::expand(&parsed),
        // beside the errors, an impl that is never run: without it, every use of the type
        // would add a "has no wire encoding" error to the one mistake in its attributes
        (parsed, Err(err)) => {
            let krate = parsed.map_or_else(crate::crate_path::default, |p| p.krate);
            let fallback = expand::fallback(&input, &krate);
            let err = err.to_compile_error();
            quote::quote!(#err #fallback)
        }
        (None, Ok(())) => TokenStream::new(),
    }
}
