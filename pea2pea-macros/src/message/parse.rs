//! The derive input, reduced to what the expansion needs.

use quote::ToTokens;
use syn::{DeriveInput, Ident, LitInt};

use super::{
    attr::{self, Place},
    errors::Errors,
};

/// A type that derives `Message`.
pub struct Input {
    pub ident: Ident,
    pub generics: syn::Generics,
    pub krate: syn::Path,
    pub body: Body,
}

pub enum Body {
    Struct(Fields),
    Enum(Vec<Variant>),
}

pub struct Variant {
    pub ident: Ident,
    /// The explicit `#[message(tag = ...)]`, with its literal for error spans.
    pub explicit_tag: Option<(u32, LitInt)>,
    pub fields: Fields,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Style {
    Named,
    Tuple,
    Unit,
}

pub struct Fields {
    pub style: Style,
    pub fields: Vec<Field>,
}

pub struct Field {
    /// The field's name, or its index in a tuple.
    pub member: syn::Member,
    pub ty: syn::Type,
    pub max_len: Option<(usize, LitInt)>,
}

impl Input {
    /// Reads the input, recording attribute errors; `None` when there is nothing to expand.
    pub fn from_syn(input: &DeriveInput, errors: &mut Errors) -> Option<Self> {
        let attrs = attr::parse(&input.attrs, Place::Container, errors);
        let krate = attrs.krate.unwrap_or_else(|| syn::parse_quote!(::pea2pea));
        let body = match &input.data {
            syn::Data::Struct(data) => Body::Struct(Fields::from_syn(&data.fields, errors)),
            syn::Data::Enum(data) => Body::Enum(
                data.variants
                    .iter()
                    .map(|v| {
                        let attrs = attr::parse(&v.attrs, Place::Variant, errors);
                        Variant {
                            ident: v.ident.clone(),
                            explicit_tag: attrs.tag,
                            fields: Fields::from_syn(&v.fields, errors),
                        }
                    })
                    .collect(),
            ),
            syn::Data::Union(data) => {
                errors.at(
                    data.union_token,
                    "`#[derive(Message)]` does not support unions; use a struct or an enum",
                );
                return None;
            }
        };
        Some(Self {
            ident: input.ident.clone(),
            generics: input.generics.clone(),
            krate,
            body,
        })
    }
}

impl Fields {
    fn from_syn(fields: &syn::Fields, errors: &mut Errors) -> Self {
        let style = match fields {
            syn::Fields::Named(_) => Style::Named,
            syn::Fields::Unnamed(_) => Style::Tuple,
            syn::Fields::Unit => Style::Unit,
        };
        let fields = fields
            .iter()
            .enumerate()
            .map(|(i, f)| Field {
                member: match &f.ident {
                    Some(ident) => syn::Member::Named(ident.clone()),
                    None => syn::Member::Unnamed(i.into()),
                },
                ty: f.ty.clone(),
                max_len: attr::parse(&f.attrs, Place::Field, errors).max_len,
            })
            .collect();
        Self { style, fields }
    }
}

impl Field {
    /// The field's name as the error path shows it: `x` or `0`.
    pub fn name(&self) -> String {
        self.member.to_token_stream().to_string()
    }
}
