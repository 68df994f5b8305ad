//! The compile-time check that a `protocol!` has a handler for every variant of its derived
//! inbound enum. rustc's own error for a missing match arm (E0004) suggests a Rust match arm
//! (`Chat::Bye => todo!()`); this check, a constant evaluated for the declaration, tells the
//! line to add in the DSL's own syntax (`on Chat::Bye => ...`). The generated constant panics
//! with the text itself, so that the error points at the declaration and nowhere else.

use crate::message::{Schema, SchemaKind};

/// Room for the message: the enum's path as written and one variant's name.
const ROOM: usize = 512;

/// What to say about the first variant of `schema` that none of `handled` (the variants the
/// handlers name) is, if `schema` is a derived enum's; nothing if there is none. `written` is
/// the enum as the protocol names it (`Chat`, `v2::Chat`).
pub const fn unhandled(schema: &Schema, written: &str, handled: &[&str]) -> Unhandled {
    let SchemaKind::Enum {
        variants,
        catch_all,
        ..
    } = schema.kind
    else {
        return Unhandled(Text::new());
    };
    let mut i = 0;
    while i < variants.len() {
        let variant = &variants[i];
        if !contains(handled, variant.name) {
            return missing(written, variant.name, !variant.fields.is_empty());
        }
        i += 1;
    }
    match catch_all {
        Some(name) if !contains(handled, name) => missing(written, name, true),
        _ => Unhandled(Text::new()),
    }
}

/// The result of [`unhandled`].
pub struct Unhandled(Text);

impl Unhandled {
    /// The error to report, if a variant has no handler.
    pub const fn message(&self) -> Option<&str> {
        match self.0.len {
            0 => None,
            _ => Some(self.0.as_str()),
        }
    }
}

const fn contains(names: &[&str], name: &str) -> bool {
    let mut i = 0;
    while i < names.len() {
        if same(names[i].as_bytes(), name.as_bytes()) {
            return true;
        }
        i += 1;
    }
    false
}

const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The message: a constant's panic message must be a `&str`, so it is written into a buffer.
const fn missing(written: &str, variant: &str, has_fields: bool) -> Unhandled {
    let mut text = Text::new();
    text.push("protocol! has no handler for `");
    text.push(written);
    text.push("::");
    text.push(variant);
    text.push("`: add `on ");
    text.push(written);
    text.push("::");
    text.push(variant);
    if has_fields {
        text.push(" { .. }");
    }
    text.push(" => ...`, or `on _ => {}` to ignore the variants without a handler");
    Unhandled(text)
}

/// A fixed buffer of text; what does not fit is cut at a character boundary.
struct Text {
    bytes: [u8; ROOM],
    len: usize,
}

impl Text {
    const fn new() -> Self {
        Text {
            bytes: [0; ROOM],
            len: 0,
        }
    }

    const fn push(&mut self, s: &str) {
        let s = s.as_bytes();
        let mut i = 0;
        while i < s.len() && self.len < ROOM {
            self.bytes[self.len] = s[i];
            self.len += 1;
            i += 1;
        }
    }

    const fn as_str(&self) -> &str {
        let written = self.bytes.split_at(self.len).0;
        match core::str::from_utf8(written) {
            Ok(s) => s,
            // cut inside a character: up to it
            Err(e) => match core::str::from_utf8(written.split_at(e.valid_up_to()).0) {
                Ok(s) => s,
                Err(_) => "",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::VariantSchema;

    const CHAT: Schema = Schema {
        name: "Chat",
        kind: SchemaKind::Enum {
            variants: &[
                VariantSchema {
                    name: "Say",
                    tag: 0,
                    fields: &[],
                },
                VariantSchema {
                    name: "Bye",
                    tag: 1,
                    fields: &[],
                },
            ],
            catch_all: Some("Unknown"),
            reserved: &[],
            extensible: false,
        },
        params: &[],
    };

    #[test]
    fn names_the_first_variant_without_a_handler_in_dsl_syntax() {
        let all = unhandled(&CHAT, "Chat", &["Say", "Bye", "Unknown"]);
        assert_eq!(all.message(), None);
        let bye = unhandled(&CHAT, "v2::Chat", &["Say", "Unknown"]);
        assert_eq!(
            bye.message(),
            Some(
                "protocol! has no handler for `v2::Chat::Bye`: add `on v2::Chat::Bye => ...`, or `on _ => {}` to ignore the variants without a handler"
            )
        );
        // the catch-all variant needs a handler too, and has fields
        let unknown = unhandled(&CHAT, "Chat", &["Say", "Bye"]);
        assert!(
            unknown
                .message()
                .unwrap()
                .contains("`on Chat::Unknown { .. } => ...`")
        );
        // not an enum: nothing to say
        let opaque = Schema::opaque("u32");
        assert_eq!(unhandled(&opaque, "u32", &[]).message(), None);
    }

    #[test]
    fn a_message_past_the_room_is_cut_at_a_character() {
        let long = "é".repeat(ROOM);
        let text = unhandled(&CHAT, &long, &[]);
        let message = text.message().unwrap();
        assert!(message.len() <= ROOM && message.len() > ROOM - 4);
        assert!(message.ends_with('é'));
    }
}
