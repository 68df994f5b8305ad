//! The `Pea2Pea` impl.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{DeriveInput, Path};

use super::parse::NodeField;

pub fn expand(input: &DeriveInput, field: &NodeField, krate: &Path) -> TokenStream {
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let (member, ty) = (&field.member, &field.ty);
    quote! {
        impl #impl_generics #krate::__private_0_1::rt::Pea2Pea for #name #ty_generics #where_clause {
            fn node(&self) -> &#ty {
                &self.#member
            }
        }
    }
}
