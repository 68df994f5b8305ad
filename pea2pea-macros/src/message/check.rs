//! Checks that need the whole input: variant tags (unique, within a u32, not reserved), the
//! catch-all variant's place and shape, and defaulted fields only at the end.

use std::collections::HashMap;

use quote::ToTokens;

use super::parse::{Body, Field, Fields, Input, Variant};
use crate::errors::Errors;

/// The wire tag of each variant: its explicit tag, or the previous variant's tag plus one (so
/// without explicit tags, the variant's position, as serde numbers it). `None` past `u32::MAX`.
/// The catch-all gets one too, which it ignores: it is the last variant.
fn tags(variants: &[Variant]) -> Vec<Option<u32>> {
    let mut next = Some(0u32);
    variants
        .iter()
        .map(|v| {
            let tag = v.explicit_tag.as_ref().map(|(t, _)| *t).or(next);
            next = tag.and_then(|t| t.checked_add(1));
            tag
        })
        .collect()
}

/// Checks the input, and resolves each variant's wire tag into the model for the expansion.
pub fn check(input: &mut Input, errors: &mut Errors) {
    rules(input, errors);
    if let Body::Enum(variants) = &mut input.body {
        let resolved = tags(variants);
        for (variant, tag) in variants.iter_mut().zip(resolved) {
            // a tag past u32::MAX is an error reported above, and then nothing is expanded
            variant.tag = tag.unwrap_or(u32::MAX);
        }
    }
}

fn rules(input: &Input, errors: &mut Errors) {
    match &input.body {
        Body::Struct(fields) => {
            trailing_defaults(fields, errors);
            if let Some((key, _)) = &input.reserved {
                errors.at(
                    key,
                    "`reserved` lists retired variant tags, so it goes on an enum, not on a struct",
                );
            }
        }
        Body::Enum(variants) => {
            for variant in variants {
                trailing_defaults(&variant.fields, errors);
            }
            catch_all(variants, errors);
            unique_tags(variants, errors);
            reserved_tags(input, variants, errors);
        }
    }
}

/// The tag of each variant but the catch-all, with the token to point at.
fn tagged(variants: &[Variant]) -> impl Iterator<Item = (&Variant, Option<u32>)> {
    variants
        .iter()
        .zip(tags(variants))
        .filter(|(v, _)| v.other.is_none())
}

/// The token an error about a variant's tag points at, and how the tag came about.
fn tag_site(variant: &Variant) -> (&dyn ToTokens, &'static str) {
    match &variant.explicit_tag {
        Some((_, lit)) => (lit, "tag"),
        None => (&variant.ident, "implicit tag (the previous tag plus one)"),
    }
}

/// Records every duplicate or overflowing tag, pointing at the variant that repeats it.
fn unique_tags(variants: &[Variant], errors: &mut Errors) {
    let mut seen: HashMap<u32, &Variant> = HashMap::new();
    for (variant, tag) in tagged(variants) {
        let Some(tag) = tag else {
            errors.at(
                &variant.ident,
                format!(
                    "variant `{}` would get tag {}, which does not fit in a u32; give it an explicit `#[message(tag = ...)]`",
                    variant.ident,
                    u64::from(u32::MAX) + 1
                ),
            );
            continue;
        };
        match seen.get(&tag) {
            Some(first) => {
                let (span, how) = tag_site(variant);
                errors.at(
                    span,
                    format!(
                        "{how} {tag} of variant `{}` is already used by variant `{}`; give each variant a unique tag",
                        variant.ident, first.ident
                    ),
                );
            }
            None => {
                seen.insert(tag, variant);
            }
        }
    }
}

/// A reserved tag may not be reused, nor reserved twice.
fn reserved_tags(input: &Input, variants: &[Variant], errors: &mut Errors) {
    let Some((_, reserved)) = &input.reserved else {
        return;
    };
    for (i, (tag, lit)) in reserved.iter().enumerate() {
        if reserved[..i].iter().any(|(t, _)| t == tag) {
            errors.twice(lit, format!("reserved tag {tag}"), "keep one");
        }
    }
    for (variant, tag) in tagged(variants) {
        if let Some(tag) = tag.filter(|t| reserved.iter().any(|(r, _)| r == t)) {
            let (span, how) = tag_site(variant);
            errors.at(
                span,
                format!(
                    "{how} {tag} of variant `{0}` is reserved: an earlier version's variant had it, and peers of that version would read `{0}` as that variant; give `{0}` an unused `#[message(tag = ...)]`",
                    variant.ident
                ),
            );
        }
    }
}

/// At most one catch-all, the last variant, without a tag, with two fields and no attributes
/// on them (their types are checked by the compiler, through the traits the expansion uses).
fn catch_all(variants: &[Variant], errors: &mut Errors) {
    let mut first: Option<&Variant> = None;
    for (i, variant) in variants.iter().enumerate() {
        let Some(key) = &variant.other else {
            continue;
        };
        if let Some(first) = first {
            errors.at(
                key,
                format!(
                    "only one variant can be `#[message(other)]`; `{}` already receives every unknown tag",
                    first.ident
                ),
            );
            continue;
        }
        first = Some(variant);
        if variants[i + 1..].iter().any(|v| v.other.is_none()) {
            errors.at(
                key,
                format!(
                    "the `#[message(other)]` variant must be the last one, since it stands for every tag the variants above it lack; move `{}` to the end of the enum",
                    variant.ident
                ),
            );
        }
        if let Some((tag, lit)) = &variant.explicit_tag {
            errors.at(
                lit,
                format!(
                    "a `#[message(other)]` variant has no tag of its own: it receives every tag that no other variant has; remove `tag = {tag}`"
                ),
            );
        }
        if variant.fields.fields.len() != 2 {
            errors.at(
                &variant.ident,
                format!(
                    "the `#[message(other)]` variant needs two fields, the unknown tag and the bytes that followed it: `{0} {{ tag: u32, body: Bytes }}` or `{0}(u32, Bytes)`",
                    variant.ident
                ),
            );
        }
        for field in &variant.fields.fields {
            let key = field
                .default
                .as_ref()
                .map(|d| d.key.to_token_stream())
                .or_else(|| field.max_len.as_ref().map(|(_, lit)| lit.to_token_stream()));
            if let Some(key) = key {
                errors.at(
                    key,
                    "the fields of a `#[message(other)]` variant take no attributes: they hold whatever the peer sent",
                );
            }
        }
    }
}

/// Defaulted fields must be a run at the end: a field can be absent only where the message
/// ends.
fn trailing_defaults(fields: &Fields, errors: &mut Errors) {
    let Some(last_required) = fields.fields.iter().rposition(|f| f.default.is_none()) else {
        return;
    };
    let required = &fields.fields[last_required];
    // `field `name`` for named fields, `field 0` for tuple fields.
    let called = |f: &Field| match f.member {
        syn::Member::Named(_) => format!("field `{}`", f.name()),
        syn::Member::Unnamed(_) => format!("field {}", f.name()),
    };
    for field in &fields.fields[..last_required] {
        if let Some(default) = &field.default {
            errors.at(
                &default.key,
                format!(
                    "{} is `#[message(default)]` but {} after it is not: only the last fields of a struct or variant can be defaulted, because a field can be absent only where the message ends; mark {1} `#[message(default)]` too, or move {0} after it",
                    called(field),
                    called(required)
                ),
            );
        }
    }
}
