//! Judges a parsed declaration: every setting known, typed and in range, every hook declared
//! once, rpcs unique and possible. Errors are collected; what is wrong falls back to a default
//! so that the expansion still happens and one mistake does not cascade.

use std::collections::HashMap;

use proc_macro2::Span;
use quote::ToTokens;
use syn::{LitStr, Path, Type};

use super::{
    parse::{Declaration, Framing, Hook, Item, Messages, OnArm, RpcItem, Setting},
    settings,
    values::{count, size},
};
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

    // in the order written, so that the errors about them read top to bottom
    let mut seen_keys: Vec<(String, Span)> = Vec::new();
    for item in decl.items {
        match item {
            Item::Setting(setting) => {
                let key = setting.key.to_string();
                if seen_keys.iter().any(|(seen, _)| *seen == key) {
                    errors.at(
                        &setting.key,
                        format!("`{key}` is set twice; keep one of the two settings"),
                    );
                    continue;
                }
                seen_keys.push((key, setting.key.span()));
                apply_setting(&mut model, &setting, errors);
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
    for (key, span) in &seen_keys {
        if let Some(reason) = settings::find(key).and_then(|spec| spec.no_effect(&model)) {
            errors.at_span(*span, reason);
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

/// Stores a setting in the model, or records why it cannot be stored.
fn apply_setting(model: &mut Model, setting: &Setting, errors: &mut Errors) {
    let key = setting.key.to_string();
    let Some(spec) = settings::find(&key) else {
        let keys = settings::keys();
        errors.at(
            &setting.key,
            format!("unknown setting `{key}`; expected one of: {keys}"),
        );
        return;
    };
    match &setting.value {
        Some(value) => spec.apply(model, value, errors),
        None => errors.at(
            &setting.key,
            format!("`{key}` needs a value: write `{key} = ...`"),
        ),
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
