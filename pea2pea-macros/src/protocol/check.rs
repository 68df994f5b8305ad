//! Judges a parsed declaration: every setting known, typed and in range, every hook declared
//! once, rpcs unique and possible. Errors are collected; what is wrong falls back to a default
//! so that the expansion still happens and one mistake does not cascade.

use std::collections::HashMap;

use proc_macro2::Span;
use quote::ToTokens;
use syn::{LitStr, Path, Type};

use super::parse::{Declaration, Framing, Hook, Item, Messages, OnArm, RpcItem, Setting, Value};
use crate::errors::Errors;

/// What the expansion needs, validated.
pub struct Model {
    pub krate: Path,
    pub node: Path,
    pub inbound: Option<Type>,
    pub outbound: Option<Type>,
    pub framing: CheckedFraming,
    pub name: Option<LitStr>,
    pub handshake: HandshakeKind,
    pub read: ReadSettings,
    pub write: WriteSettings,
    pub handshake_timeout_ms: Option<u64>,
    pub disconnect_timeout_ms: Option<u64>,
    pub call_timeout_ms: u64,
    pub max_calls: u64,
    pub arms: Vec<OnArm>,
    pub catch_all: bool,
    pub rpcs: Vec<RpcItem>,
    pub on_connect: Option<Hook>,
    pub on_disconnect: Option<Hook>,
}

// short-lived values of a proc macro: their size does not matter
#[allow(clippy::large_enum_variant)]
pub enum CheckedFraming {
    LengthDelimited {
        max_frame: u64,
        width: u64,
        little_endian: bool,
    },
    Custom(Type),
}

#[derive(Clone, Copy, PartialEq)]
pub enum HandshakeKind {
    None,
    Custom,
    Fingerprint,
}

#[derive(Default)]
pub struct ReadSettings {
    pub queue: Option<u64>,
    pub backpressure: Option<bool>,
    pub idle_timeout_ms: Option<u64>,
    pub buffer: Option<u64>,
}

#[derive(Default)]
pub struct WriteSettings {
    pub queue: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub buffer: Option<u64>,
}

const DEFAULT_CALL_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_MAX_CALLS: u64 = 1024;
const DEFAULT_MAX_FRAME: u64 = 1024 * 1024;

const KEYS: &str = "crate, name, handshake, handshake_timeout, read_queue, backpressure, idle_timeout, read_buffer, write_queue, write_timeout, write_buffer, disconnect_timeout, call_timeout, max_calls";

pub fn check(decl: Declaration, errors: &mut Errors) -> Model {
    let (inbound, outbound) = match decl.messages {
        Messages::Speaks(ty) => (Some(ty.clone()), Some(ty)),
        Messages::Split { reads, writes } => (reads, writes),
    };
    let mut model = Model {
        krate: crate::crate_path::default(),
        node: decl.node,
        inbound,
        outbound,
        framing: CheckedFraming::LengthDelimited {
            max_frame: DEFAULT_MAX_FRAME,
            width: 4,
            little_endian: false,
        },
        name: None,
        handshake: HandshakeKind::None,
        read: ReadSettings::default(),
        write: WriteSettings::default(),
        handshake_timeout_ms: None,
        disconnect_timeout_ms: None,
        call_timeout_ms: DEFAULT_CALL_TIMEOUT_MS,
        max_calls: DEFAULT_MAX_CALLS,
        arms: Vec::new(),
        catch_all: decl.broken_items,
        rpcs: Vec::new(),
        on_connect: None,
        on_disconnect: None,
    };
    if let Some(framing) = decl.framing {
        model.framing = check_framing(framing, errors);
    }

    let mut seen_keys: HashMap<String, Span> = HashMap::new();
    for item in decl.items {
        match item {
            Item::Setting(setting) => {
                let key = setting.key.to_string();
                if seen_keys.insert(key.clone(), setting.key.span()).is_some() {
                    errors.at(
                        &setting.key,
                        format!("`{key}` is set twice; keep one of the two settings"),
                    );
                    continue;
                }
                apply_setting(&mut model, setting, errors);
            }
            Item::On(arm) => model.arms.push(arm),
            Item::Rpc(rpc) => {
                let request = rpc.request.to_token_stream().to_string();
                if model
                    .rpcs
                    .iter()
                    .any(|r| r.request.to_token_stream().to_string() == request)
                {
                    errors.at(
                        &rpc.request,
                        format!(
                            "`{}` is declared as an rpc request twice; each request type gets one `rpc` line",
                            compact(&request)
                        ),
                    );
                    continue;
                }
                model.rpcs.push(rpc);
            }
            Item::Hook(hook) => check_hook(&mut model, hook, errors),
        }
    }

    let has_rpc = !model.rpcs.is_empty();
    if has_rpc {
        if let CheckedFraming::Custom(ty) = &model.framing {
            errors.at(
                ty,
                "rpc declarations need `length_delimited` framing (requests and responses travel in its frames); remove the rpcs or use `over length_delimited(...)`",
            );
        }
        if model.inbound.is_none() || model.outbound.is_none() {
            errors.at(
                &model.rpcs[0].keyword,
                "an rpc needs a protocol that both reads and writes; declare `speaks Msg` or `reads In, writes Out`",
            );
        }
    }
    if let (None, Some(arm)) = (&model.inbound, model.arms.first()) {
        errors.at(
            &arm.pat,
            "this node declares no inbound messages (no `speaks`/`reads`), so there is nothing to handle; add `reads Msg` or remove the handler",
        );
    }
    if model.handshake_timeout_ms.is_some() && model.handshake != HandshakeKind::Fingerprint {
        let span = seen_keys["handshake_timeout"];
        errors.at_span(
            span,
            "`handshake_timeout` applies to `handshake = fingerprint` only; a custom `Handshake` impl sets its own `TIMEOUT_MS`",
        );
    }
    if model.disconnect_timeout_ms.is_some() && model.on_disconnect.is_none() && !has_rpc {
        errors.at_span(
            seen_keys["disconnect_timeout"],
            "`disconnect_timeout` has no effect without an `on_disconnect(addr) => ...` hook",
        );
    }
    for key in ["call_timeout", "max_calls"] {
        if let (Some(span), false) = (seen_keys.get(key), has_rpc) {
            errors.at_span(
                *span,
                format!("`{key}` has no effect: the protocol declares no `rpc`"),
            );
        }
    }
    for key in ["read_queue", "backpressure", "idle_timeout", "read_buffer"] {
        if let (Some(span), None) = (seen_keys.get(key), &model.inbound) {
            errors.at_span(
                *span,
                format!(
                    "`{key}` has no effect: the node reads nothing (declare `speaks` or `reads`)"
                ),
            );
        }
    }
    for key in ["write_queue", "write_timeout", "write_buffer"] {
        if let (Some(span), None) = (seen_keys.get(key), &model.outbound) {
            errors.at_span(
                *span,
                format!(
                    "`{key}` has no effect: the node writes nothing (declare `speaks` or `writes`)"
                ),
            );
        }
    }
    model
}

fn compact(tokens: &str) -> String {
    tokens
        .replace(" :: ", "::")
        .replace(" < ", "<")
        .replace(" >", ">")
}

fn check_framing(framing: Framing, errors: &mut Errors) -> CheckedFraming {
    let options = match framing {
        Framing::Custom { codec, .. } => return CheckedFraming::Custom(codec),
        Framing::LengthDelimited { options, .. } => options,
    };
    let (mut max_frame, mut width, mut little_endian) = (DEFAULT_MAX_FRAME, 4, false);
    let mut max_span = None;
    let mut seen: HashMap<String, ()> = HashMap::new();
    for option in options {
        let key = option.key.to_string();
        if seen.insert(key.clone(), ()).is_some() {
            errors.at(&option.key, format!("`{key}` is set twice; keep one"));
            continue;
        }
        match (key.as_str(), &option.value) {
            ("max_frame", Some(value)) => {
                if let Some(n) = size(value, "max_frame", errors) {
                    if n == 0 {
                        errors.at_span(
                            value.span(),
                            "the maximum frame size must be at least 1 byte; write a bound such as `max_frame = 64 KiB`",
                        );
                    } else {
                        max_frame = n;
                        max_span = Some(value.span());
                    }
                }
            }
            ("length_width", Some(value)) => match count(value, "length_width", errors) {
                Some(n @ (1 | 2 | 4 | 8)) => width = n,
                Some(_) => errors.at_span(
                    value.span(),
                    "`length_width` is the size of the length header in bytes: 1, 2, 4 or 8",
                ),
                None => {}
            },
            ("little_endian", None) => little_endian = true,
            ("big_endian", None) => little_endian = false,
            ("little_endian" | "big_endian", Some(value)) => errors.at_span(
                value.span(),
                format!("`{key}` is a flag and takes no value: write just `{key}`"),
            ),
            (_, None) if key == "max_frame" || key == "length_width" => errors.at(
                &option.key,
                format!("`{key}` needs a value, as in `max_frame = 64 KiB` or `length_width = 4`"),
            ),
            _ => errors.at(
                &option.key,
                format!(
                    "unknown framing option `{key}`; expected `max_frame = <size>`, `length_width = 1|2|4|8`, `little_endian` or `big_endian`"
                ),
            ),
        }
    }
    let header_max = if width == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * width)) - 1
    };
    if max_frame > header_max {
        let span = max_span.unwrap_or_else(Span::call_site);
        errors.at_span(
            span,
            format!(
                "a {width}-byte length header cannot describe frames above {header_max} bytes; lower `max_frame` or raise `length_width`"
            ),
        );
    }
    CheckedFraming::LengthDelimited {
        max_frame,
        width,
        little_endian,
    }
}

fn apply_setting(model: &mut Model, setting: Setting, errors: &mut Errors) {
    let key = setting.key.to_string();
    let Some(value) = setting.value else {
        errors.at(
            &setting.key,
            format!("`{key}` needs a value: write `{key} = ...`"),
        );
        return;
    };
    match key.as_str() {
        "crate" => match value {
            Value::Path(path) => model.krate = path,
            Value::Str(lit) => match lit.parse() {
                Ok(path) => model.krate = path,
                Err(_) => errors.at(&lit, "expected a path to the pea2pea crate, as in `crate = ::p2p`"),
            },
            other => errors.at_span(
                other.span(),
                "expected a path to the pea2pea crate, as in `crate = ::p2p`",
            ),
        },
        "name" => match value {
            Value::Str(lit) => model.name = Some(lit),
            other => errors.at_span(
                other.span(),
                "expected a string naming the protocol, as in `name = \"chat/1\"`",
            ),
        },
        "handshake" => match &value {
            Value::Path(path) if path.is_ident("fingerprint") => {
                model.handshake = HandshakeKind::Fingerprint;
            }
            Value::Path(path) if path.is_ident("custom") => model.handshake = HandshakeKind::Custom,
            other => errors.at_span(
                other.span(),
                "unknown handshake; expected `fingerprint` (the built-in check that both peers speak this protocol) or `custom` (your own `impl Handshake`)",
            ),
        },
        "handshake_timeout" => model.handshake_timeout_ms = duration(&value, &key, false, errors),
        "disconnect_timeout" => model.disconnect_timeout_ms = duration(&value, &key, false, errors),
        "call_timeout" => {
            if let Some(ms) = duration(&value, &key, false, errors) {
                model.call_timeout_ms = ms;
            }
        }
        "idle_timeout" => model.read.idle_timeout_ms = duration(&value, &key, true, errors),
        "write_timeout" => model.write.timeout_ms = duration(&value, &key, false, errors),
        "read_queue" => model.read.queue = nonzero(count(&value, &key, errors), &value, &key, errors),
        "write_queue" => model.write.queue = nonzero(count(&value, &key, errors), &value, &key, errors),
        "max_calls" => {
            if let Some(n) = nonzero(count(&value, &key, errors), &value, &key, errors) {
                model.max_calls = n;
            }
        }
        "read_buffer" => model.read.buffer = size(&value, &key, errors),
        "write_buffer" => model.write.buffer = size(&value, &key, errors),
        "backpressure" => match value {
            Value::Bool(b) => model.read.backpressure = Some(b.value),
            other => errors.at_span(other.span(), "expected `true` or `false`"),
        },
        _ => errors.at(
            &setting.key,
            format!("unknown setting `{key}`; expected one of: {KEYS}"),
        ),
    }
}

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

fn count(value: &Value, key: &str, errors: &mut Errors) -> Option<u64> {
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

fn nonzero(n: Option<u64>, value: &Value, key: &str, errors: &mut Errors) -> Option<u64> {
    match n {
        Some(0) => {
            errors.at_span(value.span(), format!("`{key}` must be at least 1"));
            None
        }
        other => other,
    }
}

fn size(value: &Value, key: &str, errors: &mut Errors) -> Option<u64> {
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

fn duration(value: &Value, key: &str, zero_disables: bool, errors: &mut Errors) -> Option<u64> {
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

fn check_hook(model: &mut Model, hook: Hook, errors: &mut Errors) {
    let name = hook.name.to_string();
    let (slot, max_args, usage) = if name == "on_connect" {
        (&mut model.on_connect, 1, "`on_connect(addr) => ...`")
    } else {
        (
            &mut model.on_disconnect,
            2,
            "`on_disconnect(addr) => ...` or `on_disconnect(addr, origin) => ...`",
        )
    };
    if slot.is_some() {
        errors.at(
            &hook.name,
            format!(
                "`{name}` is declared twice; a node has one `{name}` hook, so merge the two bodies"
            ),
        );
        return;
    }
    if hook.args.is_empty() || hook.args.len() > max_args {
        let span = hook
            .args
            .get(max_args)
            .map(syn::spanned::Spanned::span)
            .unwrap_or_else(|| hook.name.span());
        errors.at_span(
            span,
            format!(
                "`{name}` takes {}; write {usage}",
                if max_args == 1 {
                    "one argument, the peer's address"
                } else {
                    "the peer's address and, optionally, the `DisconnectOrigin`"
                }
            ),
        );
    }
    *slot = Some(hook);
}
