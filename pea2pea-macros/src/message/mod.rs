//! `#[derive(Message)]`: parse the type and its `#[message(...)]` attributes, check them
//! (collecting every error), then expand the `Message` impl.

mod attr;
mod check;
mod describe;
mod errors;
mod expand;
mod parse;

use proc_macro2::TokenStream;

/// The whole derive: tokens in, impl (or every error found, combined) out.
pub fn derive(input: TokenStream) -> TokenStream {
    let input = match syn::parse2::<syn::DeriveInput>(input) {
        Ok(input) => input,
        Err(err) => return err.to_compile_error(),
    };
    let mut errors = errors::Errors::default();
    let parsed = parse::Input::from_syn(&input, &mut errors);
    if let Some(parsed) = &parsed {
        check::check(parsed, &mut errors);
    }
    match (parsed, errors.finish()) {
        (Some(parsed), Ok(())) => expand::expand(&parsed),
        (_, Err(err)) => err.to_compile_error(),
        (None, Ok(())) => TokenStream::new(),
    }
}
