//! The `#[message(...)]` attributes: which keys go where, and their values.

use syn::{Attribute, LitInt, meta::ParseNestedMeta};

use super::errors::Errors;

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
            Place::Container => "`crate = \"path\"`",
            Place::Variant => "`tag = <integer>`",
            Place::Field => "`max_len = <integer>`",
        }
    }
}

/// Everything `#[message(...)]` can say; each place fills only its own keys.
#[derive(Default)]
pub struct Attrs {
    pub krate: Option<syn::Path>,
    pub tag: Option<(u32, LitInt)>,
    pub max_len: Option<(usize, LitInt)>,
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
    let home = match key.as_str() {
        "crate" => Some(Place::Container),
        "tag" => Some(Place::Variant),
        "max_len" => Some(Place::Field),
        _ => None,
    };
    match home {
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
                    "`{key}` goes on {}, not on {}; here the only key is {}",
                    home.what(),
                    place.what(),
                    place.expected()
                ),
            );
            skip_value(meta)
        }
        Some(_) => {
            let repeated = match key.as_str() {
                "crate" => out.krate.is_some(),
                "tag" => out.tag.is_some(),
                _ => out.max_len.is_some(),
            };
            if repeated {
                errors.at(&meta.path, format!("`{key}` is given twice; keep one"));
            }
            match key.as_str() {
                "crate" => out.krate = Some(crate_path(meta)?),
                "tag" => out.tag = Some(integer(meta, "tag", "#[message(tag = 7)]")?),
                _ => out.max_len = Some(integer(meta, "max_len", "#[message(max_len = 64)]")?),
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
        meta.parse_nested_meta(|inner| skip_value(&inner))?;
    }
    Ok(())
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

fn crate_path(meta: &ParseNestedMeta) -> syn::Result<syn::Path> {
    let wrong = |tokens: &dyn quote::ToTokens| {
        syn::Error::new_spanned(
            tokens,
            "`crate` takes a path in a string, such as `#[message(crate = \"::pea2pea\")]`",
        )
    };
    if !meta.input.peek(syn::Token![=]) {
        return Err(wrong(&meta.path));
    }
    let expr: syn::Expr = meta.value()?.parse()?;
    match &expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        }) => lit.parse::<syn::Path>().map_err(|_| wrong(lit)),
        other => Err(wrong(other)),
    }
}
