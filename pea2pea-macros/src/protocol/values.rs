//! Reading a setting's value: counts, sizes with their units, durations with theirs. Each
//! reader records what is wrong at the value and returns `None` then.

use proc_macro2::Span;

use super::parse::Value;
use crate::errors::Errors;

fn int(value: &Value) -> Option<(u64, Option<&str>)> {
    match value {
        Value::Int { lit, unit } => {
            let digits = lit.base10_digits().parse::<u64>().ok()?;
            Some((digits, unit.as_ref().map(|(u, _)| u.as_str())))
        }
        _ => None,
    }
}

/// Where a value's unit is written (the number itself when it is a suffix).
fn unit_span(value: &Value) -> Span {
    match value {
        Value::Int {
            unit: Some((_, span)),
            ..
        } => *span,
        other => other.span(),
    }
}

pub fn count(value: &Value, key: &str, errors: &mut Errors) -> Option<u64> {
    match int(value) {
        Some((n, None)) => Some(n),
        Some((_, Some(unit))) => {
            errors.at_span(
                unit_span(value),
                format!("`{key}` is a count and takes no unit; remove `{unit}`"),
            );
            None
        }
        None => {
            errors.at_span(
                value.span(),
                format!("`{key}` expects a whole number, as in `{key} = 128`"),
            );
            None
        }
    }
}

pub fn nonzero(n: Option<u64>, value: &Value, key: &str, errors: &mut Errors) -> Option<u64> {
    match n {
        Some(0) => {
            errors.at_span(value.span(), format!("`{key}` must be at least 1"));
            None
        }
        other => other,
    }
}

pub fn size(value: &Value, key: &str, errors: &mut Errors) -> Option<u64> {
    let Some((n, unit)) = int(value) else {
        errors.at_span(
            value.span(),
            format!("`{key}` expects a size, as in `{key} = 64 KiB` (units: B, KiB, MiB, GiB, KB, MB, GB)"),
        );
        return None;
    };
    let factor: u64 = match unit {
        None | Some("B") => 1,
        Some("KiB") => 1 << 10,
        Some("MiB") => 1 << 20,
        Some("GiB") => 1 << 30,
        Some("KB") => 1_000,
        Some("MB") => 1_000_000,
        Some("GB") => 1_000_000_000,
        Some(other) => {
            errors.at_span(
                unit_span(value),
                format!("`{other}` is not a size unit; use B, KiB, MiB, GiB, KB, MB or GB, as in `{key} = 64 KiB`"),
            );
            return None;
        }
    };
    let bytes = n.checked_mul(factor);
    if bytes.is_none() {
        errors.at_span(value.span(), format!("`{key}` is too large"));
    }
    bytes
}

pub fn duration(value: &Value, key: &str, zero_disables: bool, errors: &mut Errors) -> Option<u64> {
    if let (Value::Path(path), true) = (value, zero_disables)
        && path.is_ident("off")
    {
        return Some(0);
    }
    let Some((n, unit)) = int(value) else {
        errors.at_span(
            value.span(),
            format!(
                "`{key}` expects a duration, as in `{key} = 5 s` or `{key} = 250 ms`{}",
                if zero_disables { ", or `off`" } else { "" }
            ),
        );
        return None;
    };
    let ms = match unit {
        Some("ms") => Some(n),
        Some("s") => n.checked_mul(1_000),
        Some("min") => n.checked_mul(60_000),
        Some("h") => n.checked_mul(3_600_000),
        Some(other) => {
            errors.at_span(
                unit_span(value),
                format!("`{other}` is not a duration unit here; use ms, s, min or h, as in `{key} = 250 ms`"),
            );
            return None;
        }
        None => {
            errors.at_span(
                value.span(),
                format!("`{key}` needs a unit: write `{n} ms` or `{n} s`"),
            );
            return None;
        }
    };
    match ms {
        Some(0) if !zero_disables => {
            errors.at_span(value.span(), format!("`{key}` must be longer than zero"));
            None
        }
        None => {
            errors.at_span(value.span(), format!("`{key}` is too long"));
            None
        }
        ms => ms,
    }
}
