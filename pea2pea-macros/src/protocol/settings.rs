//! The settings of `protocol!` as one table: each key, the value it takes, the part of the
//! protocol it needs to have an effect, and where it goes in the model. Reading a setting, the
//! "has no effect" errors and the list of keys in the help all come from this table, and a test
//! checks that DSL.md documents the same keys.

use proc_macro2::TokenStream;
use syn::{LitInt, LitStr, Path};

use super::{
    check::{HandshakeKind, Model},
    parse::Value,
    values::{count, duration, nonzero, size},
};
use crate::errors::Errors;

/// One setting.
pub struct SettingSpec {
    pub key: &'static str,
    kind: Kind,
    needs: Needs,
    apply: fn(&mut Model, Parsed),
}

/// The value a setting takes.
#[derive(Clone, Copy)]
enum Kind {
    CratePath,
    Text,
    Handshake,
    Duration,
    DurationOrOff,
    Count,
    Size,
    Bool,
    Version,
    VersionRange,
}

/// What must be in the protocol for a setting to have an effect.
#[derive(Clone, Copy)]
enum Needs {
    Nothing,
    Reads,
    Writes,
    Rpc,
    Fingerprint,
    /// The fingerprint handshake, which exchanges versions.
    Versions,
    DisconnectHook,
}

/// A setting's value, read according to its kind.
enum Parsed {
    Path(Path),
    Text(LitStr),
    Handshake(HandshakeKind),
    Number(u64),
    Bool(bool),
    Range((u32, u32), TokenStream),
}

macro_rules! setter {
    ($variant:ident, |$model:ident, $value:ident| $body:expr) => {
        |$model: &mut Model, parsed: Parsed| {
            if let Parsed::$variant($value) = parsed {
                $body
            }
        }
    };
}

const fn spec(
    key: &'static str,
    kind: Kind,
    needs: Needs,
    apply: fn(&mut Model, Parsed),
) -> SettingSpec {
    SettingSpec {
        key,
        kind,
        needs,
        apply,
    }
}

#[rustfmt::skip]
pub const SETTINGS: &[SettingSpec] = &[
    spec("crate",              Kind::CratePath,     Needs::Nothing,        setter!(Path, |m, p| m.krate = p)),
    spec("name",               Kind::Text,          Needs::Nothing,        setter!(Text, |m, s| m.name = Some(s))),
    spec("handshake",          Kind::Handshake,     Needs::Nothing,        setter!(Handshake, |m, h| m.handshake = h)),
    spec("handshake_timeout",  Kind::Duration,      Needs::Fingerprint,    setter!(Number, |m, ms| m.handshake_timeout_ms = Some(ms))),
    spec("version",            Kind::Version,       Needs::Versions,       setter!(Number, |m, v| m.version = v as u32)),
    spec("accepts",            Kind::VersionRange,  Needs::Versions,       |m: &mut Model, parsed: Parsed| if let Parsed::Range(r, tokens) = parsed { m.accepts = Some((r, tokens)) }),
    spec("read_queue",         Kind::Count,         Needs::Reads,          setter!(Number, |m, n| m.read.queue = Some(n))),
    spec("backpressure",       Kind::Bool,          Needs::Reads,          setter!(Bool, |m, b| m.read.backpressure = Some(b))),
    spec("idle_timeout",       Kind::DurationOrOff, Needs::Reads,          setter!(Number, |m, ms| m.read.idle_timeout_ms = Some(ms))),
    spec("read_buffer",        Kind::Size,          Needs::Reads,          setter!(Number, |m, n| m.read.buffer = Some(n))),
    spec("write_queue",        Kind::Count,         Needs::Writes,         setter!(Number, |m, n| m.write.queue = Some(n))),
    spec("write_timeout",      Kind::Duration,      Needs::Writes,         setter!(Number, |m, ms| m.write.timeout_ms = Some(ms))),
    spec("write_buffer",       Kind::Size,          Needs::Writes,         setter!(Number, |m, n| m.write.buffer = Some(n))),
    spec("disconnect_timeout", Kind::Duration,      Needs::DisconnectHook, setter!(Number, |m, ms| m.disconnect_timeout_ms = Some(ms))),
    spec("call_timeout",       Kind::Duration,      Needs::Rpc,            setter!(Number, |m, ms| m.call_timeout_ms = ms)),
    spec("max_calls",          Kind::Count,         Needs::Rpc,            setter!(Number, |m, n| m.max_calls = n)),
];

/// The keys, for help texts: "crate, name, ...".
pub fn keys() -> String {
    SETTINGS
        .iter()
        .map(|s| s.key)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn find(key: &str) -> Option<&'static SettingSpec> {
    SETTINGS.iter().find(|s| s.key == key)
}

impl SettingSpec {
    /// Reads `value` and stores it in the model, or records why it cannot.
    pub fn apply(&self, model: &mut Model, value: &Value, errors: &mut Errors) {
        if let Some(parsed) = self.read(value, errors) {
            (self.apply)(model, parsed);
        }
    }

    fn read(&self, value: &Value, errors: &mut Errors) -> Option<Parsed> {
        let key = self.key;
        let number = |n: Option<u64>| n.map(Parsed::Number);
        match self.kind {
            Kind::CratePath => crate_path(value, errors).map(Parsed::Path),
            Kind::Text => match value {
                Value::Str(lit) => Some(Parsed::Text(lit.clone())),
                other => wrong(
                    other,
                    "expected a string naming the protocol, as in `name = \"chat/1\"`",
                    errors,
                ),
            },
            Kind::Handshake => handshake(value, errors).map(Parsed::Handshake),
            Kind::Duration => number(duration(value, key, false, errors)),
            Kind::DurationOrOff => number(duration(value, key, true, errors)),
            Kind::Count => number(nonzero(count(value, key, errors), value, key, errors)),
            Kind::Size => number(size(value, key, errors)),
            Kind::Bool => match value {
                Value::Bool(b) => Some(Parsed::Bool(b.value)),
                other => wrong(other, "expected `true` or `false`", errors),
            },
            Kind::Version => version(value, errors).map(|v| Parsed::Number(v.into())),
            Kind::VersionRange => {
                version_range(value, errors).map(|(r, tokens)| Parsed::Range(r, tokens))
            }
        }
    }

    /// Why this setting would have no effect in `model`, if it would not.
    pub fn no_effect(&self, model: &Model) -> Option<String> {
        let key = self.key;
        let has_rpc = !model.rpcs.is_empty();
        match self.needs {
            Needs::Nothing => None,
            Needs::Reads if model.inbound.is_none() => Some(format!(
                "`{key}` has no effect: the node reads nothing (declare `speaks` or `reads`)"
            )),
            Needs::Writes if model.outbound.is_none() => Some(format!(
                "`{key}` has no effect: the node writes nothing (declare `speaks` or `writes`)"
            )),
            Needs::Rpc if !has_rpc => Some(format!(
                "`{key}` has no effect: the protocol declares no `rpc`"
            )),
            Needs::Fingerprint if model.handshake != HandshakeKind::Fingerprint => Some(format!(
                "`{key}` applies to `handshake = fingerprint` only; a custom `Handshake` impl sets its own `TIMEOUT_MS`"
            )),
            Needs::Versions if model.handshake != HandshakeKind::Fingerprint => Some(format!(
                "`{key}` has no effect without `handshake = fingerprint`: versions are exchanged in its hello"
            )),
            Needs::DisconnectHook if model.on_disconnect.is_none() => Some(format!(
                "`{key}` has no effect without an `on_disconnect(addr) => ...` hook"
            )),
            _ => None,
        }
    }
}

fn wrong<T>(value: &Value, message: &str, errors: &mut Errors) -> Option<T> {
    errors.at_span(value.span(), message);
    None
}

fn crate_path(value: &Value, errors: &mut Errors) -> Option<Path> {
    const EXPECTED: &str = "expected a path to the pea2pea crate, as in `crate = ::p2p`";
    match value {
        Value::Path(path) => Some(path.clone()),
        Value::Str(lit) => lit.parse().ok().or_else(|| wrong(value, EXPECTED, errors)),
        other => wrong(other, EXPECTED, errors),
    }
}

fn handshake(value: &Value, errors: &mut Errors) -> Option<HandshakeKind> {
    match value {
        Value::Path(path) if path.is_ident("fingerprint") => Some(HandshakeKind::Fingerprint),
        Value::Path(path) if path.is_ident("custom") => Some(HandshakeKind::Custom),
        other => wrong(
            other,
            "unknown handshake; expected `fingerprint` (the built-in check that both peers speak this protocol) or `custom` (your own `impl Handshake`)",
            errors,
        ),
    }
}

const VERSION_HELP: &str = "a version is a whole number from 1 to 4294967295, as in `version = 2`";

fn version_number(lit: &LitInt, errors: &mut Errors) -> Option<u32> {
    match lit.base10_parse::<u32>() {
        Ok(0) | Err(_) => {
            errors.at_span(lit.span(), VERSION_HELP);
            None
        }
        Ok(v) if lit.suffix().is_empty() => Some(v),
        Ok(_) => {
            errors.at_span(
                lit.span(),
                format!("a version takes no unit; {VERSION_HELP}"),
            );
            None
        }
    }
}

fn version(value: &Value, errors: &mut Errors) -> Option<u32> {
    match value {
        Value::Int { lit, unit: None } => version_number(lit, errors),
        other => wrong(other, VERSION_HELP, errors),
    }
}

/// `A..=B` or `A..`, as an inclusive pair (`A..` ends at `u32::MAX`), and its tokens.
fn version_range(value: &Value, errors: &mut Errors) -> Option<((u32, u32), TokenStream)> {
    let Value::Range { start, end, tokens } = value else {
        return wrong(
            value,
            "expected a range of versions, as in `accepts = 1..=2` or `accepts = 2..`",
            errors,
        );
    };
    let lo = version_number(start, errors)?;
    let hi = match end {
        Some(end) => version_number(end, errors)?,
        None => u32::MAX,
    };
    if hi < lo {
        errors.at(
            tokens,
            "this range of versions is empty: its end is below its start",
        );
        return None;
    }
    Some(((lo, hi), tokens.clone()))
}
