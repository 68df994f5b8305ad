//! The one error context of the crate: every macro collects its errors here, so that one
//! compile reports all of them, each at its own token. A context must be emptied with
//! [`Errors::finish`] or [`Errors::into_compile_errors`]; dropping one unchecked is a bug in
//! this crate, and panics (in the macro, so that tests catch it) instead of losing an error.

use std::fmt::Display;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;

/// The errors found so far.
pub struct Errors {
    found: Option<syn::Error>,
    checked: bool,
}

impl Errors {
    pub fn new() -> Self {
        Errors {
            found: None,
            checked: false,
        }
    }

    /// Records `message` at `tokens`.
    pub fn at(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records `message` at `span`.
    pub fn at_span(&mut self, span: Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    /// Records that `what` (a key, a tag, a hook...) is given a second time, at `tokens`: one
    /// wording for every duplicate in every macro.
    pub fn twice(&mut self, tokens: impl ToTokens, what: impl Display, remedy: impl Display) {
        self.at(tokens, format!("{what} is given twice; {remedy}"));
    }

    /// Records an error built elsewhere (such as by syn's parser).
    pub fn push(&mut self, err: syn::Error) {
        match &mut self.found {
            Some(all) => all.combine(err),
            None => self.found = Some(err),
        }
    }

    /// Ends the collection: all the errors, combined, if there were any.
    pub fn finish(mut self) -> syn::Result<()> {
        self.checked = true;
        self.found.take().map_or(Ok(()), Err)
    }

    /// Ends the collection: the errors as `compile_error!` invocations (nothing if none).
    pub fn into_compile_errors(self) -> TokenStream {
        self.finish()
            .err()
            .map(|err| err.to_compile_error())
            .unwrap_or_default()
    }
}

impl Drop for Errors {
    fn drop(&mut self) {
        if !self.checked && !std::thread::panicking() {
            panic!("pea2pea-macros bug: an error context was dropped without being checked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Errors;

    #[test]
    fn finish_returns_every_error_combined() {
        let mut errors = Errors::new();
        errors.at_span(proc_macro2::Span::call_site(), "first");
        errors.at_span(proc_macro2::Span::call_site(), "second");
        let all = errors.finish().unwrap_err();
        let messages: Vec<String> = all.into_iter().map(|e| e.to_string()).collect();
        assert_eq!(messages, ["first", "second"]);
    }

    #[test]
    fn an_empty_context_finishes_clean() {
        assert!(Errors::new().finish().is_ok());
        assert!(Errors::new().into_compile_errors().is_empty());
    }

    #[test]
    #[should_panic(expected = "dropped without being checked")]
    fn an_unchecked_context_panics_on_drop() {
        let mut errors = Errors::new();
        errors.at_span(proc_macro2::Span::call_site(), "lost");
    }
}
