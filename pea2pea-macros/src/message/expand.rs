//! Writes the `Message` impl. Generated code names the runtime only through the crate path
//! (`::pea2pea` or `#[message(crate = "...")]`) and `::core`, so it compiles under
//! `#![no_implicit_prelude]` and with renamed dependencies.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::{
    check::tags,
    parse::{Body, Field, Fields, Input, Style},
};

pub fn expand(input: &Input) -> TokenStream {
    let krate = &input.krate;
    let m = quote!(#krate::message);
    let name = &input.ident;
    let mut generics = input.generics.clone();
    let params: Vec<_> = generics.type_params().map(|p| p.ident.clone()).collect();
    {
        let where_clause = generics.make_where_clause();
        for p in &params {
            where_clause
                .predicates
                .push(syn::parse_quote!(#p: #m::Message));
        }
    }
    let (impl_g, ty_g, where_c) = generics.split_for_impl();
    let shape = shape(input);
    let ty_name = name.to_string();
    let (min_len, len_body, enc_body, dec_body) = match &input.body {
        Body::Struct(fields) => strukt(&m, &ty_name, fields),
        Body::Enum(variants) => enumeration(&m, input, variants),
    };
    // An empty enum has no value to build: its decoder only reports the unknown tag.
    let dec_body = match &input.body {
        Body::Enum(variants) if variants.is_empty() => dec_body,
        _ => quote! {
            #m::Reader::enter(src, #ty_name)?;
            let value = { #dec_body };
            #m::Reader::leave(src);
            ::core::result::Result::Ok(value)
        },
    };
    quote! {
        #[automatically_derived]
        impl #impl_g #m::Message for #name #ty_g #where_c {
            const SHAPE: &'static ::core::primitive::str = #shape;
            const FINGERPRINT: ::core::primitive::u64 = #m::__derive::mix(
                #m::fingerprint(#shape),
                &[#(<#params as #m::Message>::FINGERPRINT),*],
            );
            const MIN_LEN: ::core::primitive::usize = #min_len;

            #[inline]
            fn encoded_len(&self) -> ::core::primitive::usize {
                #len_body
            }

            #[inline]
            fn encode(&self, dst: &mut #m::__derive::BytesMut) {
                #enc_body
            }

            #[inline]
            fn decode(
                src: &mut #m::Reader,
            ) -> ::core::result::Result<Self, #m::DecodeError> {
                #dec_body
            }
        }
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
    /// Sum of the fields' minimum lengths.
    min_len: TokenStream,
}

fn fields_code(m: &TokenStream, fields: &Fields, path: &str) -> FieldsCode {
    let binds: Vec<_> = (0..fields.fields.len())
        .map(|i| format_ident!("__f{}", i))
        .collect();
    let members = fields.fields.iter().map(|f| &f.member);
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
    let mins = fields.fields.iter().map(|f| {
        let ty = &f.ty;
        quote_spanned!(ty.span()=> .saturating_add(<#ty as #m::Message>::MIN_LEN))
    });
    let (pattern, construct) = match fields.style {
        Style::Named => {
            let members2 = fields.fields.iter().map(|f| &f.member);
            (
                quote!({ #(#members: ref #binds),* }),
                quote!({ #(#members2: #decodes),* }),
            )
        }
        Style::Tuple => (quote!((#(ref #binds),*)), quote!((#(#decodes),*))),
        Style::Unit => (TokenStream::new(), TokenStream::new()),
    };
    FieldsCode {
        pattern,
        len: quote!(0usize #(+ #lens)*),
        encode: quote!(#(#encodes)*),
        construct,
        min_len: quote!(0usize #(#mins)*),
    }
}

/// Decodes one field, adding the field to the error's path; checks `max_len` first.
fn decode_field(m: &TokenStream, field: &Field, path: &str) -> TokenStream {
    let ty = &field.ty;
    let step = format!("{path}.{}", field.name());
    let decode = quote_spanned!(ty.span()=>
        #m::__derive::within(<#ty as #m::Message>::decode(src), #step)?
    );
    match &field.max_len {
        None => decode,
        Some((max, lit)) => {
            let max = syn::LitInt::new(&format!("{max}usize"), lit.span());
            let check = quote_spanned!(ty.span()=>
                #m::__derive::check_max_len::<#ty>(src, #max, #step)?
            );
            quote!({ #check; #decode })
        }
    }
}

fn strukt(
    m: &TokenStream,
    name: &str,
    fields: &Fields,
) -> (TokenStream, TokenStream, TokenStream, TokenStream) {
    let code = fields_code(m, fields, name);
    let FieldsCode {
        pattern,
        len,
        encode,
        construct,
        min_len,
    } = code;
    let bind = if fields.style == Style::Unit {
        TokenStream::new()
    } else {
        quote!(let Self #pattern = *self;)
    };
    (
        min_len,
        quote!(#bind #len),
        quote!(#bind #encode),
        quote!(Self #construct),
    )
}

fn enumeration(
    m: &TokenStream,
    input: &Input,
    variants: &[super::parse::Variant],
) -> (TokenStream, TokenStream, TokenStream, TokenStream) {
    let name = input.ident.to_string();
    let tags = tags(variants);
    let mut len_arms = Vec::new();
    let mut enc_arms = Vec::new();
    let mut dec_arms = Vec::new();
    for (variant, tag) in variants.iter().zip(tags) {
        // check() has already rejected tags past u32::MAX.
        let tag = tag.unwrap_or_default();
        let ident = &variant.ident;
        let path = format!("{name}::{ident}");
        let code = fields_code(m, &variant.fields, &path);
        let FieldsCode {
            pattern,
            len,
            encode,
            construct,
            ..
        } = code;
        let tag_bytes = varint(u64::from(tag));
        let tag_len = tag_bytes.len();
        len_arms.push(quote!(Self::#ident #pattern => #tag_len + #len,));
        enc_arms.push(quote!(Self::#ident #pattern => {
            #m::__derive::BytesMut::extend_from_slice(dst, &[#(#tag_bytes),*]);
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
            ::core::result::Result::Err(#m::__derive::unknown_variant(tag, #name, at))
        };
        return (min_len, len, enc, dec);
    }
    let dec = quote! {
        let at = #m::Reader::offset(src);
        match #m::Reader::read_variant(src, #name)? {
            #(#dec_arms)*
            tag => return ::core::result::Result::Err(
                #m::__derive::unknown_variant(tag, #name, at),
            ),
        }
    };
    (min_len, len, enc, dec)
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

/// The type's declaration as a compact string: `struct Point { x: u32, y: u32 }`,
/// `enum Chat { Hello { name: String } = 0, Bye = 1 }`.
fn shape(input: &Input) -> String {
    let generics = compact(&input.generics.to_token_stream().to_string());
    let fields = |f: &Fields| -> String {
        let list = f
            .fields
            .iter()
            .map(|field| {
                let ty = compact(&field.ty.to_token_stream().to_string());
                match (f.style, &field.max_len) {
                    (Style::Named, None) => format!("{}: {ty}", field.name()),
                    (Style::Named, Some((max, _))) => {
                        format!("{}: {ty} (max_len {max})", field.name())
                    }
                    (_, None) => ty,
                    (_, Some((max, _))) => format!("{ty} (max_len {max})"),
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
    match &input.body {
        Body::Struct(f) => format!("struct {}{generics}{}", input.ident, fields(f)),
        Body::Enum(variants) => {
            let list = variants
                .iter()
                .zip(tags(variants))
                .map(|(v, tag)| format!("{}{} = {}", v.ident, fields(&v.fields), tag.unwrap_or(0)))
                .collect::<Vec<_>>()
                .join(", ");
            format!("enum {}{generics} {{ {list} }}", input.ident)
        }
    }
}

/// Drops the spaces `to_string` puts around punctuation: `Vec < u8 >` becomes `Vec<u8>`.
fn compact(tokens: &str) -> String {
    let chars: Vec<char> = tokens.chars().collect();
    let word = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric() || *c == '_');
    let mut out = String::with_capacity(tokens.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' && !(word(chars.get(i.wrapping_sub(1))) && word(chars.get(i + 1))) {
            // `,` keeps one following space for readability.
            if chars.get(i.wrapping_sub(1)) == Some(&',') {
                out.push(' ');
            }
            continue;
        }
        out.push(c);
    }
    out
}
