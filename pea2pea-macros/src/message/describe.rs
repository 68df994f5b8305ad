//! What the type says about itself: `Message::SHAPE` (a compact declaration, hashed into the
//! fingerprint) and `Message::SCHEMA` (the same, as data).

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;

use super::parse::{Body, Fields, Input, Style};
use crate::text::compact;

/// The type's declaration as a compact string: `struct Point { x: u32, y: u32 }`,
/// `enum Chat { Hello { name: String } = 0, Bye = 1 }`. Types without evolution attributes
/// keep the shape (and so the fingerprint) they had before those attributes existed; the
/// attributes add `extensible `, ` (default)`, `= other` and ` reserved(2, 5)`.
pub fn shape(input: &Input) -> String {
    let generics = compact(&input.generics.to_token_stream().to_string());
    let fields = |f: &Fields| -> String {
        let list = f
            .fields
            .iter()
            .map(|field| {
                let ty = compact(&field.ty.to_token_stream().to_string());
                let mut notes = Vec::new();
                if let Some((max, _)) = &field.max_len {
                    notes.push(format!("max_len {max}"));
                }
                if field.default.is_some() {
                    notes.push("default".to_string());
                }
                let notes = match notes.is_empty() {
                    true => String::new(),
                    false => format!(" ({})", notes.join(", ")),
                };
                match f.style {
                    Style::Named => format!("{}: {ty}{notes}", field.name()),
                    _ => format!("{ty}{notes}"),
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        match f.style {
            Style::Named => format!(" {{ {list} }}"),
            Style::Tuple => format!("({list})"),
            Style::Unit => String::new(),
        }
    };
    let extensible = match input.extensible {
        Some(_) => "extensible ",
        None => "",
    };
    match &input.body {
        Body::Struct(f) => format!("{extensible}struct {}{generics}{}", input.ident, fields(f)),
        Body::Enum(variants) => {
            let list = variants
                .iter()
                .map(|v| match v.other {
                    Some(_) => format!("{}{} = other", v.ident, fields(&v.fields)),
                    None => format!("{}{} = {}", v.ident, fields(&v.fields), v.tag),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let reserved = match &input.reserved {
                Some((_, tags)) => {
                    let tags: Vec<_> = tags.iter().map(|(t, _)| t.to_string()).collect();
                    format!(" reserved({})", tags.join(", "))
                }
                None => String::new(),
            };
            format!(
                "{extensible}enum {}{generics} {{ {list} }}{reserved}",
                input.ident
            )
        }
    }
}

/// The `Message::SCHEMA` constant: a `&'static Schema` built from literals and
/// `schema_of::<FieldType>` pointers (so recursive types need no recursive constant).
pub fn schema(m: &TokenStream, input: &Input) -> TokenStream {
    let d = quote!(#m);
    let name = input.ident.to_string();
    let extensible = input.extensible.is_some();
    let params = input.generics.type_params().map(|p| {
        let p = &p.ident;
        quote!(#d::schema_of::<#p>)
    });
    let kind = match &input.body {
        Body::Struct(fields) => {
            let fields = field_schemas(&d, fields);
            quote!(#d::SchemaKind::Struct { fields: #fields, extensible: #extensible })
        }
        Body::Enum(variants) => {
            let listed = variants.iter().filter(|v| v.other.is_none()).map(|v| {
                let name = v.ident.to_string();
                let tag = v.tag;
                let fields = field_schemas(&d, &v.fields);
                quote!(#d::VariantSchema { name: #name, tag: #tag, fields: #fields })
            });
            let catch_all = match variants.iter().find(|v| v.other.is_some()) {
                Some(v) => {
                    let name = v.ident.to_string();
                    quote!(::core::option::Option::Some(#name))
                }
                None => quote!(::core::option::Option::None),
            };
            let reserved = input
                .reserved
                .iter()
                .flat_map(|(_, tags)| tags.iter().map(|(t, _)| *t));
            quote!(#d::SchemaKind::Enum {
                variants: &[#(#listed),*],
                catch_all: #catch_all,
                reserved: &[#(#reserved),*],
                extensible: #extensible,
            })
        }
    };
    quote!(&#d::Schema { name: #name, kind: #kind, params: &[#(#params),*] })
}

fn field_schemas(d: &TokenStream, fields: &Fields) -> TokenStream {
    let list = fields.fields.iter().map(|f| {
        let name = f.name();
        let ty = &f.ty;
        let written = compact(&ty.to_token_stream().to_string());
        // a closure, not `schema_of::<T>`: a field type without `Message` is then the same
        // error, at the field, as its encoding's (one error, not a second about
        // `schema_of`'s bound)
        let schema = quote_spanned!(ty.span()=> || <#ty as #d::Message>::SCHEMA);
        let default = f.default.is_some();
        let max_len = match &f.max_len {
            Some((max, _)) => quote!(::core::option::Option::Some(#max)),
            None => quote!(::core::option::Option::None),
        };
        quote!(#d::FieldSchema {
            name: #name,
            ty: #written,
            schema: #schema,
            default: #default,
            max_len: #max_len,
        })
    });
    quote!(&[#(#list),*])
}
