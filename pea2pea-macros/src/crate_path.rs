//! `crate = ...`, the path to a renamed pea2pea, read the same way by all three macros: a path
//! (`crate = ::p2p`) or the same path in a string (`crate = "::p2p"`, serde's spelling).

use syn::{Path, parse::ParseStream};

/// The default, for a dependency that keeps its name.
pub fn default() -> Path {
    syn::parse_quote!(::pea2pea)
}

/// Reads the value after `crate =`.
pub fn parse(value: ParseStream) -> syn::Result<Path> {
    if value.peek(syn::LitStr) {
        let lit: syn::LitStr = value.parse()?;
        lit.parse().map_err(|_| {
            syn::Error::new(
                lit.span(),
                "expected a path to the pea2pea crate, as in `crate = ::p2p`",
            )
        })
    } else {
        Path::parse_mod_style(value).map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected a path to the pea2pea crate, as in `crate = ::p2p`",
            )
        })
    }
}
