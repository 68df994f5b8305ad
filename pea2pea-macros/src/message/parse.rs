//! The derive input, reduced to what the expansion needs.

use quote::ToTokens;
use syn::{DeriveInput, Ident, LitInt};

use super::attr::{self, DefaultAttr, Place};
use crate::errors::Errors;

/// A type that derives `Message`.
pub struct Input {
    pub ident: Ident,
    pub generics: syn::Generics,
    pub krate: syn::Path,
    /// `#[message(extensible)]`: the key, for error spans.
    pub extensible: Option<syn::Path>,
    /// `#[message(reserved(...))]`: the key and the retired tags.
    pub reserved: Option<(syn::Path, Vec<(u32, LitInt)>)>,
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
    /// `#[message(other)]`: the key, when this is the catch-all.
    pub other: Option<syn::Path>,
    pub fields: Fields,
    /// The wire tag, resolved by `check::check` (the expansion reads it, never recomputes it).
    pub tag: u32,
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
    pub default: Option<DefaultAttr>,
}

impl Input {
    /// Reads the input, recording attribute errors; `None` when there is nothing to expand.
    pub fn from_syn(input: &DeriveInput, errors: &mut Errors) -> Option<Self> {
        let attrs = attr::parse(&input.attrs, Place::Container, errors);
        let krate = attrs
            .krate
            .clone()
            .unwrap_or_else(crate::crate_path::default);
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
                            other: attrs.other,
                            fields: Fields::from_syn(&v.fields, errors),
                            tag: 0,
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
            extensible: attrs.extensible,
            reserved: attrs.reserved,
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
            .map(|(i, f)| {
                let attrs = attr::parse(&f.attrs, Place::Field, errors);
                Field {
                    member: match &f.ident {
                        Some(ident) => syn::Member::Named(ident.clone()),
                        None => syn::Member::Unnamed(i.into()),
                    },
                    ty: f.ty.clone(),
                    max_len: attrs.max_len,
                    default: attrs.default,
                }
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

impl Input {
    /// Whether the decoder reads to the end of the enclosing value: see `Message::OPEN_ENDED`.
    pub fn open_ended(&self) -> bool {
        let defaults = |f: &Fields| f.fields.iter().any(|f| f.default.is_some());
        self.extensible.is_some()
            || match &self.body {
                Body::Struct(fields) => defaults(fields),
                Body::Enum(variants) => variants
                    .iter()
                    .any(|v| v.other.is_some() || defaults(&v.fields)),
            }
    }
}
