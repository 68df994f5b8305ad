//! `#[node]`: find the struct's `Node` field (by its type, or the field marked `#[node]`),
//! check there is exactly one, then emit the struct unchanged (less the helper attribute) and
//! its `Pea2Pea` impl.

mod expand;
mod parse;

use proc_macro2::TokenStream;

use crate::errors::Errors;

/// The whole attribute: `args` are its own arguments, `item` the struct.
pub fn node(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::new();
    let krate = parse::args(args, &mut errors);
    let out = match syn::parse2::<syn::DeriveInput>(item.clone()) {
        Ok(mut input) => {
            let field = parse::node_field(&mut input, &mut errors);
            let imp = field.map(|field| expand::expand(&input, &field, &krate));
            quote::quote!(#input #imp)
        }
        // not a struct, enum or union at all: leave the item to rustc's own errors
        Err(e) => {
            errors.push(e);
            item
        }
    };
    let errors = errors.into_compile_errors();
    quote::quote!(#errors #out)
}
