//! The `#[message(...)]` attributes: which keys go where, and their values.

use syn::{Attribute, LitInt, meta::ParseNestedMeta, punctuated::Punctuated};

use crate::errors::Errors;

/// Where an attribute sits, which decides the keys it may hold.
#[derive(Clone, Copy, PartialEq)]
pub enum Place {
    Container,
    Variant,
    Field,
}

impl Place {
    fn what(self) -> &'static str {
        match self {
            Place::Container => "the type",
            Place::Variant => "an enum variant",
            Place::Field => "a field",
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Place::Container => "`crate = path`, `extensible` or `reserved(<tags>)`",
            Place::Variant => "`tag = <integer>` or `other`",
            Place::Field => "`max_len = <integer>` or `default`",
        }
    }
}

/// The place each key belongs to.
fn home(key: &str) -> Option<Place> {
    match key {
        "crate" | "extensible" | "reserved" => Some(Place::Container),
        "tag" | "other" => Some(Place::Variant),
        "max_len" | "default" => Some(Place::Field),
        _ => None,
    }
}

/// `#[message(default)]` or `#[message(default = path)]` on a field.
pub struct DefaultAttr {
    /// The `default` key, for error spans.
    pub key: syn::Path,
    /// The function that makes the value, when not `Default::default`.
    pub with: Option<syn::Path>,
}

/// Everything `#[message(...)]` can say; each place fills only its own keys. Flags keep their
/// key, for error spans.
#[derive(Default)]
pub struct Attrs {
    pub krate: Option<syn::Path>,
    pub extensible: Option<syn::Path>,
    pub reserved: Option<(syn::Path, Vec<(u32, LitInt)>)>,
    pub tag: Option<(u32, LitInt)>,
    pub other: Option<syn::Path>,
    pub max_len: Option<(usize, LitInt)>,
    pub default: Option<DefaultAttr>,
}

impl Attrs {
    fn has(&self, key: &str) -> bool {
        match key {
            "crate" => self.krate.is_some(),
            "extensible" => self.extensible.is_some(),
            "reserved" => self.reserved.is_some(),
            "tag" => self.tag.is_some(),
            "other" => self.other.is_some(),
            "max_len" => self.max_len.is_some(),
            _ => self.default.is_some(),
        }
    }
}

/// Reads every `#[message(...)]` among `attrs`, recording errors for unknown, misplaced,
/// repeated or malformed keys.
pub fn parse(attrs: &[Attribute], place: Place, errors: &mut Errors) -> Attrs {
    let mut out = Attrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("message")) {
        if let Err(err) = attr.parse_nested_meta(|meta| parse_key(&meta, place, &mut out, errors)) {
            errors.push(err);
        }
    }
    out
}

fn parse_key(
    meta: &ParseNestedMeta,
    place: Place,
    out: &mut Attrs,
    errors: &mut Errors,
) -> syn::Result<()> {
    let key = meta
        .path
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_default();
    match home(&key) {
        None => {
            let shown = quote::ToTokens::to_token_stream(&meta.path)
                .to_string()
                .replace(' ', "");
            errors.at(
                &meta.path,
                format!(
                    "unknown message attribute `{shown}` on {}; expected {}",
                    place.what(),
                    place.expected()
                ),
            );
            skip_value(meta)
        }
        Some(home) if home != place => {
            errors.at(
                &meta.path,
                format!(
                    "`{key}` goes on {}, not on {}; here the keys are {}",
                    home.what(),
                    place.what(),
                    place.expected()
                ),
            );
            skip_value(meta)
        }
        Some(_) => {
            if out.has(&key) {
                errors.twice(&meta.path, format!("`{key}`"), "keep one");
            }
            let key_path = meta.path.clone();
            match key.as_str() {
                "crate" => out.krate = Some(crate_path(meta)?),
                "extensible" => out.extensible = Some(flag(meta, "extensible")?),
                "reserved" => out.reserved = Some((key_path, reserved(meta)?)),
                "tag" => out.tag = Some(integer(meta, "tag", "#[message(tag = 7)]")?),
                "other" => out.other = Some(flag(meta, "other")?),
                "max_len" => {
                    out.max_len = Some(integer(meta, "max_len", "#[message(max_len = 64)]")?)
                }
                _ => {
                    out.default = Some(DefaultAttr {
                        key: key_path,
                        with: default_fn(meta)?,
                    })
                }
            }
            Ok(())
        }
    }
}

/// Consumes `= value` after a rejected key so that parsing can go on to the next key.
fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<proc_macro2::TokenStream>()?;
    }
    Ok(())
}

/// A key that takes no value, such as `extensible`.
fn flag(meta: &ParseNestedMeta, key: &str) -> syn::Result<syn::Path> {
    if meta.input.peek(syn::Token![=]) || meta.input.peek(syn::token::Paren) {
        let err = syn::Error::new_spanned(
            &meta.path,
            format!("`{key}` takes no value; write `#[message({key})]`"),
        );
        skip_value(meta)?;
        return Err(err);
    }
    Ok(meta.path.clone())
}

fn integer<N>(meta: &ParseNestedMeta, key: &str, example: &str) -> syn::Result<(N, LitInt)>
where
    N: std::str::FromStr,
    N::Err: std::fmt::Display,
{
    let wrong = |span: &dyn quote::ToTokens| {
        syn::Error::new_spanned(
            span,
            format!("`{key}` takes a non-negative integer, such as `{example}`"),
        )
    };
    if !meta.input.peek(syn::Token![=]) {
        return Err(wrong(&meta.path));
    }
    let expr: syn::Expr = meta.value()?.parse()?;
    match &expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(lit),
            ..
        }) => {
            let value = lit.base10_parse::<N>().map_err(|_| wrong(lit))?;
            Ok((value, lit.clone()))
        }
        other => Err(wrong(other)),
    }
}

/// `reserved(2, 5)`: tags that no variant may use.
fn reserved(meta: &ParseNestedMeta) -> syn::Result<Vec<(u32, LitInt)>> {
    let wrong = |span: &dyn quote::ToTokens| {
        syn::Error::new_spanned(
            span,
            "`reserved` takes a list of tags (integers that fit in a u32), such as `#[message(reserved(2, 5))]`",
        )
    };
    if !meta.input.peek(syn::token::Paren) {
        skip_value(meta)?;
        return Err(wrong(&meta.path));
    }
    let content;
    syn::parenthesized!(content in meta.input);
    let list = Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated(&content)?;
    if list.is_empty() {
        return Err(wrong(&meta.path));
    }
    list.iter()
        .map(|expr| match expr {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(lit),
                ..
            }) => Ok((
                lit.base10_parse::<u32>().map_err(|_| wrong(lit))?,
                lit.clone(),
            )),
            other => Err(wrong(other)),
        })
        .collect()
}

/// The function of `default = path` (a path, or a path in a string as serde writes it), or
/// `None` for a bare `default`.
fn default_fn(meta: &ParseNestedMeta) -> syn::Result<Option<syn::Path>> {
    if !meta.input.peek(syn::Token![=]) {
        return Ok(None);
    }
    let wrong = |tokens: &dyn quote::ToTokens| {
        syn::Error::new_spanned(
            tokens,
            "`default` takes the path of a function that returns the field's value, such as `#[message(default = default_ttl)]`; a bare `#[message(default)]` uses `Default::default()`",
        )
    };
    let expr: syn::Expr = meta.value()?.parse()?;
    match &expr {
        syn::Expr::Path(path) if path.qself.is_none() => Ok(Some(path.path.clone())),
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        }) => lit.parse::<syn::Path>().map(Some).map_err(|_| wrong(lit)),
        other => Err(wrong(other)),
    }
}

fn crate_path(meta: &ParseNestedMeta) -> syn::Result<syn::Path> {
    if !meta.input.peek(syn::Token![=]) {
        return Err(
            meta.error("`crate` takes the path to pea2pea, such as `#[message(crate = ::p2p)]`")
        );
    }
    crate::crate_path::parse(meta.value()?)
}
