//! Checks that need the whole input: variant tags must be unique and fit in a u32.

use std::collections::HashMap;

use quote::ToTokens;

use super::{
    errors::Errors,
    parse::{Body, Input, Variant},
};

/// The wire tag of each variant: its explicit tag, or the previous variant's tag plus one (so
/// without explicit tags, the variant's position, as serde numbers it). `None` past `u32::MAX`.
pub fn tags(variants: &[Variant]) -> Vec<Option<u32>> {
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

/// Records every duplicate or overflowing tag, pointing at the variant that repeats it.
pub fn check(input: &Input, errors: &mut Errors) {
    let Body::Enum(variants) = &input.body else {
        return;
    };
    let mut seen: HashMap<u32, &Variant> = HashMap::new();
    for (variant, tag) in variants.iter().zip(tags(variants)) {
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
                let (span, how): (&dyn ToTokens, _) = match &variant.explicit_tag {
                    Some((_, lit)) => (lit, "tag"),
                    None => (&variant.ident, "implicit tag (the previous tag plus one)"),
                };
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
