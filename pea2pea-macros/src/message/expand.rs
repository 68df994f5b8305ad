//! Writes the `Message` impl. Generated code names the runtime only through the crate path
//! (`::pea2pea` or `#[message(crate = "...")]`) and `::core`, so it compiles under
//! `#![no_implicit_prelude]` and with renamed dependencies.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::{
    describe::{schema, shape},
    parse::{Body, Field, Fields, Input, Style, Variant},
};
use crate::text::compact;

/// The type's generics, each type parameter bound by `Message`; and the parameters' names.
fn bounded_generics(generics: &syn::Generics, m: &TokenStream) -> (syn::Generics, Vec<syn::Ident>) {
    let mut generics = generics.clone();
    let params: Vec<_> = generics.type_params().map(|p| p.ident.clone()).collect();
    let where_clause = generics.make_where_clause();
    for p in &params {
        where_clause
            .predicates
            .push(syn::parse_quote!(#p: #m::Message));
    }
    (generics, params)
}

/// The impl emitted beside the errors of a derive that failed: it satisfies every use of the
/// type, so that the errors shown are the derive's own, and it is never run (the crate does
/// not compile).
pub fn fallback(input: &syn::DeriveInput, krate: &syn::Path) -> TokenStream {
    let m = quote!(#krate::__private_0_1::derive);
    let name = &input.ident;
    let (generics, _) = bounded_generics(&input.generics, &m);
    let (impl_g, ty_g, where_c) = generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_g #m::Message for #name #ty_g #where_c {
            fn encoded_len(&self) -> ::core::primitive::usize {
                ::core::unreachable!()
            }
            fn encode(&self, _: &mut #m::BytesMut) {
                ::core::unreachable!()
            }
            fn decode(_: &mut #m::Reader) -> ::core::result::Result<Self, #m::DecodeError> {
                ::core::unreachable!()
            }
        }
    }
}

pub fn expand(input: &Input) -> TokenStream {
    let krate = &input.krate;
    let m = quote!(#krate::__private_0_1::derive);
    let name = &input.ident;
    let (generics, params) = bounded_generics(&input.generics, &m);
    let (impl_g, ty_g, where_c) = generics.split_for_impl();
    let shape = shape(input);
    let schema = schema(&m, input);
    let ty_name = name.to_string();
    let open_ended = input.open_ended();
    let BodyCode {
        min_len,
        len: len_body,
        encode: enc_body,
        decode: dec_body,
    } = match &input.body {
        Body::Struct(fields) => strukt(&m, &ty_name, fields),
        Body::Enum(variants) => enumeration(&m, input, variants),
    };
    let (free_checks, inline_checks) = nesting_checks(&m, input);
    // Extensible types ignore what a newer peer wrote after the fields they know.
    let skip_rest = match input.extensible {
        Some(_) => quote!(#m::Reader::skip_rest(src);),
        None => TokenStream::new(),
    };
    // An empty enum has no value to build: its decoder only reports the unknown tag.
    let dec_body = match &input.body {
        Body::Enum(variants) if variants.is_empty() => dec_body,
        _ => quote! {
            #m::Reader::enter(src, #ty_name)?;
            let value = { #dec_body };
            #skip_rest
            #m::Reader::leave(src);
            ::core::result::Result::Ok(value)
        },
    };
    quote! {
        #[automatically_derived]
        #[allow(deprecated)]
        impl #impl_g #m::Message for #name #ty_g #where_c {
            const SHAPE: &'static ::core::primitive::str = #shape;
            const FINGERPRINT: ::core::primitive::u64 = #m::mix(
                #m::fingerprint(#shape),
                &[#(<#params as #m::Message>::FINGERPRINT),*],
            );
            const MIN_LEN: ::core::primitive::usize = #min_len;
            const OPEN_ENDED: ::core::primitive::bool = #open_ended;
            const SCHEMA: &'static #m::Schema = #schema;

            #[inline]
            fn encoded_len(&self) -> ::core::primitive::usize {
                #len_body
            }

            #[inline]
            fn encode(&self, dst: &mut #m::BytesMut) {
                #enc_body
            }

            #[inline]
            fn decode(
                src: &mut #m::Reader,
            ) -> ::core::result::Result<Self, #m::DecodeError> {
                #inline_checks
                #dec_body
            }
        }

        #free_checks
    }
}

/// The code for one set of fields (a struct's or a variant's).
struct FieldsCode {
    /// Binds `*self`'s fields by reference to `__f0, __f1...`: `{ a: ref __f0 }`.
    pattern: TokenStream,
    /// Sum of the fields' encoded lengths.
    len: TokenStream,
    /// Encodes the fields in order.
    encode: TokenStream,
    /// Builds the value from decoded fields: `{ a: ... }` or `(...)`.
    construct: TokenStream,
    /// Sum of the minimum lengths of the fields that are always present.
    min_len: TokenStream,
}

fn binds(fields: &Fields) -> Vec<syn::Ident> {
    (0..fields.fields.len())
        .map(|i| format_ident!("__f{}", i))
        .collect()
}

/// The pattern that binds each field by reference, and the constructor from one expression per
/// field.
fn pattern_and_construct(fields: &Fields, values: &[TokenStream]) -> (TokenStream, TokenStream) {
    let binds = binds(fields);
    let members = fields.fields.iter().map(|f| &f.member);
    let members2 = fields.fields.iter().map(|f| &f.member);
    match fields.style {
        Style::Named => (
            quote!({ #(#members: ref #binds),* }),
            quote!({ #(#members2: #values),* }),
        ),
        Style::Tuple => (quote!((#(ref #binds),*)), quote!((#(#values),*))),
        Style::Unit => (TokenStream::new(), TokenStream::new()),
    }
}

fn fields_code(m: &TokenStream, fields: &Fields, path: &str) -> FieldsCode {
    let binds = binds(fields);
    let lens = fields.fields.iter().zip(&binds).map(|(f, b)| {
        let ty = &f.ty;
        quote_spanned!(ty.span()=> <#ty as #m::Message>::encoded_len(#b))
    });
    let encodes = fields.fields.iter().zip(&binds).map(|(f, b)| {
        let ty = &f.ty;
        quote_spanned!(ty.span()=> <#ty as #m::Message>::encode(#b, dst);)
    });
    let decodes: Vec<_> = fields
        .fields
        .iter()
        .map(|f| decode_field(m, f, path))
        .collect();
    let mins = fields
        .fields
        .iter()
        .filter(|f| f.default.is_none())
        .map(|f| {
            let ty = &f.ty;
            quote_spanned!(ty.span()=> .saturating_add(<#ty as #m::Message>::MIN_LEN))
        });
    let (pattern, construct) = pattern_and_construct(fields, &decodes);
    FieldsCode {
        pattern,
        len: quote!(0usize #(+ #lens)*),
        encode: quote!(#(#encodes)*),
        construct,
        min_len: quote!(0usize #(#mins)*),
    }
}

/// Decodes one field, adding the field to the error's path; checks `max_len` first. A
/// defaulted field that finds the enclosing value ended takes its default instead.
fn decode_field(m: &TokenStream, field: &Field, path: &str) -> TokenStream {
    let ty = &field.ty;
    let step = format!("{path}.{}", field.name());
    let decode = quote_spanned!(ty.span()=>
        #m::within(<#ty as #m::Message>::decode(src), #step)?
    );
    let decode = match &field.max_len {
        None => decode,
        Some((max, lit)) => {
            let max = syn::LitInt::new(&format!("{max}usize"), lit.span());
            let check = quote_spanned!(ty.span()=>
                #m::check_max_len::<#ty>(src, #max, #step)?
            );
            quote!({ #check; #decode })
        }
    };
    let Some(default) = &field.default else {
        return decode;
    };
    let value = match &default.with {
        Some(with) => quote_spanned!(with.span()=> #with()),
        None => quote_spanned!(ty.span()=> <#ty as #m::DefaultField>::default_field()),
    };
    quote!(if #m::Reader::at_end(src) { #value } else { #decode })
}

/// The bodies of the impl's items for a struct or an enum.
struct BodyCode {
    /// `Message::MIN_LEN`.
    min_len: TokenStream,
    /// `encoded_len`'s body.
    len: TokenStream,
    /// `encode`'s body.
    encode: TokenStream,
    /// The expression that decodes a value (inside `decode`).
    decode: TokenStream,
}

fn strukt(m: &TokenStream, name: &str, fields: &Fields) -> BodyCode {
    let FieldsCode {
        pattern,
        len,
        encode,
        construct,
        min_len,
    } = fields_code(m, fields, name);
    let bind = if fields.style == Style::Unit {
        TokenStream::new()
    } else {
        quote!(let Self #pattern = *self;)
    };
    BodyCode {
        min_len,
        len: quote!(#bind #len),
        encode: quote!(#bind #encode),
        decode: quote!(Self #construct),
    }
}

fn enumeration(m: &TokenStream, input: &Input, variants: &[Variant]) -> BodyCode {
    let name = input.ident.to_string();
    let mut len_arms = Vec::new();
    let mut enc_arms = Vec::new();
    let mut dec_arms = Vec::new();
    let mut catch_all = None;
    for variant in variants {
        let ident = &variant.ident;
        if variant.other.is_some() {
            let (len, enc, dec) = catch_all_arms(m, variant);
            len_arms.push(len);
            enc_arms.push(enc);
            catch_all = Some(dec);
            continue;
        }
        let tag = variant.tag;
        let path = format!("{name}::{ident}");
        let FieldsCode {
            pattern,
            len,
            encode,
            construct,
            ..
        } = fields_code(m, &variant.fields, &path);
        let tag_bytes = varint(u64::from(tag));
        let tag_len = tag_bytes.len();
        len_arms.push(quote!(Self::#ident #pattern => #tag_len + #len,));
        enc_arms.push(quote!(Self::#ident #pattern => {
            #m::BytesMut::extend_from_slice(dst, &[#(#tag_bytes),*]);
            #encode
        }));
        let tag_lit = syn::LitInt::new(&format!("{tag}u32"), Span::call_site());
        dec_arms.push(quote!(#tag_lit => Self::#ident #construct,));
    }
    let min_len = if variants.is_empty() {
        quote!(0usize)
    } else {
        quote!(1usize)
    };
    let len = quote!(match *self { #(#len_arms)* });
    let enc = quote!(match *self { #(#enc_arms)* });
    if variants.is_empty() {
        let dec = quote! {
            let at = #m::Reader::offset(src);
            let tag = #m::Reader::read_variant(src, #name)?;
            ::core::result::Result::Err(#m::unknown_variant(tag, #name, at))
        };
        return BodyCode {
            min_len,
            len,
            encode: enc,
            decode: dec,
        };
    }
    let unknown = catch_all.unwrap_or_else(|| {
        quote!(tag => return ::core::result::Result::Err(
            #m::unknown_variant(tag, #name, at),
        ),)
    });
    let dec = quote! {
        let at = #m::Reader::offset(src);
        match #m::Reader::read_variant(src, #name)? {
            #(#dec_arms)*
            #unknown
        }
    };
    BodyCode {
        min_len,
        len,
        encode: enc,
        decode: dec,
    }
}

/// The catch-all's arms: it encodes as the tag it holds followed by its bytes, exactly what it
/// received, and decodes every unknown tag with the rest of the enclosing value as its bytes.
/// check() has made sure it has two fields; the traits check their types.
fn catch_all_arms(m: &TokenStream, variant: &Variant) -> (TokenStream, TokenStream, TokenStream) {
    let d = quote!(#m);
    let ident = &variant.ident;
    let fields = &variant.fields.fields;
    let (Some(tag_ty), Some(body_ty)) =
        (fields.first().map(|f| &f.ty), fields.get(1).map(|f| &f.ty))
    else {
        return Default::default();
    };
    let tag = quote_spanned!(tag_ty.span()=> <#tag_ty as #d::CatchAllTag>);
    let body = quote_spanned!(body_ty.span()=> <#body_ty as #d::CatchAllBody>);
    let values = [
        quote!(#tag::from_tag(__tag)),
        quote!(#body::from_body(#m::Reader::read_rest(src))),
    ];
    let (pattern, construct) = pattern_and_construct(&variant.fields, &values);
    let len = quote!(Self::#ident #pattern =>
        #m::varint_len_u64(#tag::tag(__f0) as ::core::primitive::u64)
            + #body::body(__f1).len(),
    );
    let enc = quote!(Self::#ident #pattern => {
        #m::put_varint_u64(dst, #tag::tag(__f0) as ::core::primitive::u64);
        #m::BytesMut::extend_from_slice(dst, #body::body(__f1));
    });
    let dec = quote!(__tag => Self::#ident #construct,);
    (len, enc, dec)
}

/// Refuses open-ended field types (see `Message::OPEN_ENDED`): such a value finds its end at
/// the end of what encloses it, and a field never ends there reliably. A field type that does
/// not depend on the type's parameters is checked by a free constant, so that `cargo check`
/// reports it; the others by a constant in `decode`, when it is compiled for concrete types.
fn nesting_checks(m: &TokenStream, input: &Input) -> (TokenStream, TokenStream) {
    let generic: Vec<String> = input
        .generics
        .type_params()
        .map(|p| p.ident.to_string())
        .chain(input.generics.const_params().map(|p| p.ident.to_string()))
        .chain(["Self".to_string()])
        .collect();
    let name = input.ident.to_string();
    let all: Vec<(String, &Field)> = match &input.body {
        Body::Struct(fields) => fields.fields.iter().map(|f| (name.clone(), f)).collect(),
        Body::Enum(variants) => variants
            .iter()
            .filter(|v| v.other.is_none())
            .flat_map(|v| {
                let path = format!("{name}::{}", v.ident);
                v.fields.fields.iter().map(move |f| (path.clone(), f))
            })
            .collect(),
    };
    let mut free = TokenStream::new();
    let mut inline = TokenStream::new();
    for (path, field) in all {
        let ty = &field.ty;
        let written = compact(&ty.to_token_stream().to_string());
        let fix = match written.contains('<') {
            false => format!("make the field `Delimited<{written}>`"),
            true => "wrap the open-ended type inside it in `Delimited<...>`".into(),
        };
        let message = format!(
            "field `{path}.{}` (`{written}`) holds an open-ended message, a type with `#[message(default)]` fields, `#[message(extensible)]` or a `#[message(other)]` variant; it can be read only up to a known end, the end of the frame or of a length prefix, so {fix} (`pea2pea::message::Delimited`)",
            field.name(),
        );
        let check = quote_spanned!(ty.span()=>
            if <#ty as #m::Message>::OPEN_ENDED { ::core::panic!(#message) }
        );
        if mentions(ty.to_token_stream(), &generic) {
            inline.extend(quote!(const { #check };));
        } else {
            free.extend(quote!(const _: () = #check;));
        }
    }
    (free, inline)
}

/// Whether `tokens` name any of `idents` (a type parameter, `Self`).
fn mentions(tokens: TokenStream, idents: &[String]) -> bool {
    tokens.into_iter().any(|t| match t {
        TokenTree::Ident(i) => idents.iter().any(|g| i == g),
        TokenTree::Group(g) => mentions(g.stream(), idents),
        _ => false,
    })
}

/// The LEB128 bytes of a tag, computed now so the generated code writes a constant.
fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}
