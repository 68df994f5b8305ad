//! Judges a parsed declaration: every setting known, typed and in range, every hook declared
//! once, rpcs unique and possible. Errors are collected; what is wrong falls back to a default
//! so that the expansion still happens and one mistake does not cascade.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::{LitStr, Path, Type};

use super::{
    parse::{Declaration, Framing, Hook, Item, Messages, OnArm, RpcItem, Setting},
    settings,
    values::{count, size},
};
use crate::{errors::Errors, text::compact};

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
    /// `version = N` (1 by default).
    pub version: u32,
    /// `accepts = A..=B`: the inclusive range and its tokens, for errors.
    pub accepts: Option<((u32, u32), TokenStream)>,
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
    let mut model = Model::new(decl.node, decl.messages, decl.broken_items);
    if let Some(framing) = decl.framing {
        model.framing = check_framing(framing, errors);
    }
    let settings_written = collect_items(&mut model, decl.items, errors);
    for rule in RULES {
        rule(&model, errors);
    }
    settings_have_effect(&model, &settings_written, errors);
    model
}

impl Model {
    /// The model before any item: the defaults.
    fn new(node: Path, messages: Messages, broken_items: bool) -> Self {
        let (inbound, outbound) = match messages {
            Messages::Speaks(ty) => (Some(ty.clone()), Some(ty)),
            Messages::Split { reads, writes } => (reads, writes),
        };
        Model {
            krate: crate::crate_path::default(),
            node,
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
            version: 1,
            accepts: None,
            disconnect_timeout_ms: None,
            call_timeout_ms: DEFAULT_CALL_TIMEOUT_MS,
            max_calls: DEFAULT_MAX_CALLS,
            arms: Vec::new(),
            // a broken item may have been a handler: do not also report missing ones
            catch_all: broken_items,
            rpcs: Vec::new(),
            on_connect: None,
            on_disconnect: None,
        }
    }
}

/// Moves each item into the model, reporting duplicates; returns the settings written, with
/// their spans, in the order written (so that later errors about them read top to bottom).
fn collect_items(model: &mut Model, items: Vec<Item>, errors: &mut Errors) -> Vec<(String, Span)> {
    let mut written: Vec<(String, Span)> = Vec::new();
    for item in items {
        match item {
            Item::Setting(setting) => {
                let key = setting.key.to_string();
                if written.iter().any(|(seen, _)| *seen == key) {
                    errors.twice(
                        &setting.key,
                        format!("`{key}`"),
                        "keep one of the two settings",
                    );
                    continue;
                }
                written.push((key, setting.key.span()));
                apply_setting(model, &setting, errors);
            }
            Item::On(arm) => model.arms.push(arm),
            Item::Rpc(rpc) => {
                let request = compact(&rpc.request.to_token_stream().to_string());
                let seen =
                    |r: &RpcItem| compact(&r.request.to_token_stream().to_string()) == request;
                if model.rpcs.iter().any(seen) {
                    errors.twice(
                        &rpc.request,
                        format!("rpc request `{request}`"),
                        "each request type gets one `rpc` line",
                    );
                    continue;
                }
                model.rpcs.push(rpc);
            }
            Item::Hook(hook) => check_hook(model, hook, errors),
        }
    }
    written
}

/// The rules that need the whole declaration, each named for what it ensures.
const RULES: &[fn(&Model, &mut Errors)] = &[
    rpcs_travel_in_length_delimited_frames,
    rpcs_need_both_directions,
    handlers_need_inbound_messages,
    a_node_accepts_its_own_version,
];

fn a_node_accepts_its_own_version(model: &Model, errors: &mut Errors) {
    let version = model.version;
    let Some(((lo, hi), tokens)) = &model.accepts else {
        return;
    };
    if !(lo..=hi).contains(&&version) {
        errors.at(
            tokens,
            format!(
                "`accepts` must include this node's own version, {version}: two nodes of this build could not connect; widen the range to include {version}, or change `version`"
            ),
        );
    }
}

fn rpcs_travel_in_length_delimited_frames(model: &Model, errors: &mut Errors) {
    if let (CheckedFraming::Custom(ty), false) = (&model.framing, model.rpcs.is_empty()) {
        errors.at(
            ty,
            "rpc declarations need `length_delimited` framing (requests and responses travel in its frames); remove the rpcs or use `over length_delimited(...)`",
        );
    }
}

fn rpcs_need_both_directions(model: &Model, errors: &mut Errors) {
    let one_way = model.inbound.is_none() || model.outbound.is_none();
    if let (Some(rpc), true) = (model.rpcs.first(), one_way) {
        errors.at(
            &rpc.keyword,
            "an rpc needs a protocol that both reads and writes; declare `speaks Msg` or `reads In, writes Out`",
        );
    }
}

fn handlers_need_inbound_messages(model: &Model, errors: &mut Errors) {
    if let (None, Some(arm)) = (&model.inbound, model.arms.first()) {
        errors.at(
            &arm.pat,
            "this node declares no inbound messages (no `speaks`/`reads`), so there is nothing to handle; add `reads Msg` or remove the handler",
        );
    }
}

/// A setting that cannot apply to this protocol is an error, not silently ignored.
fn settings_have_effect(model: &Model, written: &[(String, Span)], errors: &mut Errors) {
    for (key, span) in written {
        if let Some(reason) = settings::find(key).and_then(|spec| spec.no_effect(model)) {
            errors.at_span(*span, reason);
        }
    }
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
            errors.twice(&option.key, format!("`{key}`"), "keep one");
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
        errors.twice(
            &hook.name,
            format!("`{name}`"),
            format!("a node has one `{name}` hook, so merge the two bodies"),
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
