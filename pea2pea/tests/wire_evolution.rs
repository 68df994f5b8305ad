//! Evolvable messages: one protocol in two versions, as two Rust types in one process. Version
//! 2 adds a trailing `Option` field to one variant, a variant at the end, and a trailing field
//! to a struct. Version 1 was written to grow (`extensible`, a catch-all), so each side reads
//! the other: new fields default, unknown variants reach the catch-all with their bytes, and a
//! version-1 relay forwards version-2 messages intact.

use bytes::Bytes;
use pea2pea::{
    Message,
    message::{DecodeErrorKind, Delimited, SchemaKind},
};
use proptest::prelude::*;

mod v1 {
    use super::*;

    #[derive(Message, Debug, Clone, PartialEq)]
    #[message(extensible)]
    pub enum Chat {
        Hello {
            name: String,
        },
        Say(String),
        Bye,
        #[message(other)]
        Unknown {
            tag: u32,
            body: Bytes,
        },
    }

    #[derive(Message, Debug, Clone, PartialEq)]
    #[message(extensible)]
    pub struct Status {
        pub height: u64,
        pub peers: Vec<String>,
    }

    /// Statuses nested in a list: each is length-prefixed, so each may grow.
    #[derive(Message, Debug, Clone, PartialEq)]
    pub struct Census {
        pub statuses: Vec<Delimited<Status>>,
        pub round: u32,
    }
}

mod v2 {
    use super::*;

    #[derive(Message, Debug, Clone, PartialEq)]
    #[message(extensible)]
    pub enum Chat {
        Hello {
            name: String,
            #[message(default)]
            agent: Option<String>,
        },
        Say(String),
        Bye,
        React {
            to: u64,
            emoji: char,
        },
        #[message(other)]
        Unknown {
            tag: u32,
            body: Bytes,
        },
    }

    #[derive(Message, Debug, Clone, PartialEq)]
    #[message(extensible)]
    pub struct Status {
        pub height: u64,
        pub peers: Vec<String>,
        #[message(default = default_mode)]
        pub mode: String,
    }

    pub fn default_mode() -> String {
        "full".into()
    }

    #[derive(Message, Debug, Clone, PartialEq)]
    pub struct Census {
        pub statuses: Vec<Delimited<Status>>,
        pub round: u32,
    }
}

/// What a version-2 reader makes of a version-1 message.
fn upgrade(msg: &v1::Chat) -> v2::Chat {
    match msg.clone() {
        v1::Chat::Hello { name } => v2::Chat::Hello { name, agent: None },
        v1::Chat::Say(text) => v2::Chat::Say(text),
        v1::Chat::Bye => v2::Chat::Bye,
        v1::Chat::Unknown { tag, body } => v2::Chat::Unknown { tag, body },
    }
}

/// What a version-1 reader makes of a version-2 message: the new field is skipped, the new
/// variant is kept whole by the catch-all.
fn downgrade(msg: &v2::Chat) -> v1::Chat {
    match msg.clone() {
        v2::Chat::Hello { name, .. } => v1::Chat::Hello { name },
        v2::Chat::Say(text) => v1::Chat::Say(text),
        v2::Chat::Bye => v1::Chat::Bye,
        react @ v2::Chat::React { .. } => v1::Chat::Unknown {
            tag: 3,
            body: react.to_bytes().slice(1..),
        },
        v2::Chat::Unknown { tag, body } => v1::Chat::Unknown { tag, body },
    }
}

fn relay<A: Message, B: Message>(value: &A) -> B {
    B::from_bytes(value.to_bytes()).expect("the other version reads it")
}

#[test]
fn a_new_reader_fills_in_the_new_field() {
    let hello = v1::Chat::Hello { name: "ann".into() };
    let read: v2::Chat = relay(&hello);
    assert_eq!(
        read,
        v2::Chat::Hello {
            name: "ann".into(),
            agent: None
        }
    );
    let status = v1::Status {
        height: 7,
        peers: vec!["a".into()],
    };
    let read: v2::Status = relay(&status);
    assert_eq!(read.mode, "full", "the default function gives the value");
    assert_eq!((read.height, read.peers), (7, status.peers));
}

#[test]
fn an_old_reader_skips_the_new_field() {
    let hello = v2::Chat::Hello {
        name: "bob".into(),
        agent: Some("pea2pea/2".into()),
    };
    let read: v1::Chat = relay(&hello);
    assert_eq!(read, v1::Chat::Hello { name: "bob".into() });
    let status = v2::Status {
        height: 1 << 40,
        peers: vec![],
        mode: "light".into(),
    };
    let read: v1::Status = relay(&status);
    assert_eq!(read.height, 1 << 40);
}

#[test]
fn an_old_reader_keeps_a_new_variant_whole() {
    let react = v2::Chat::React {
        to: 300,
        emoji: '👍',
    };
    let bytes = react.to_bytes();
    let read = v1::Chat::from_bytes(bytes.clone()).unwrap();
    let v1::Chat::Unknown { tag, body } = &read else {
        panic!("expected the catch-all, got {read:?}");
    };
    assert_eq!(*tag, 3);
    assert_eq!(body[..], bytes[1..], "the body is everything after the tag");
    // A version-1 relay writes back exactly what it received.
    assert_eq!(read.to_bytes(), bytes);
    assert_eq!(read.encoded_len(), bytes.len());
    assert_eq!(relay::<_, v2::Chat>(&read), react);
}

#[test]
fn a_catch_all_body_is_a_slice_of_the_frame() {
    let frame = v2::Chat::React { to: 1, emoji: 'x' }.to_bytes();
    let v1::Chat::Unknown { body, .. } = v1::Chat::from_bytes(frame.clone()).unwrap() else {
        panic!("expected the catch-all");
    };
    assert!(frame.as_ptr_range().contains(&body.as_ptr()));
}

#[test]
fn tags_past_the_known_ones_and_large_tags_reach_the_catch_all() {
    // Tag 300 (a two-byte varint) with a three-byte body.
    let frame = Bytes::from_static(&[0xac, 0x02, 1, 2, 3]);
    let read = v2::Chat::from_bytes(frame.clone()).unwrap();
    assert_eq!(
        read,
        v2::Chat::Unknown {
            tag: 300,
            body: Bytes::from_static(&[1, 2, 3])
        }
    );
    assert_eq!(read.to_bytes(), frame);
    // A tag alone: an empty body.
    let read = v2::Chat::from_bytes(Bytes::from_static(&[9])).unwrap();
    assert_eq!(
        read,
        v2::Chat::Unknown {
            tag: 9,
            body: Bytes::new()
        }
    );
    // A tag that overflows a u32 is still an error.
    let err =
        v2::Chat::from_bytes(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x1f])).unwrap_err();
    assert_eq!(err.kind(), &DecodeErrorKind::BadVarint);
}

/// The same protocol without the growth attributes: what happens when version 1 did not plan
/// for it.
mod strict {
    use super::*;

    #[derive(Message, Debug, PartialEq)]
    pub enum ChatV1 {
        Hello { name: String },
        Say(String),
        Bye,
    }

    #[derive(Message, Debug, PartialEq)]
    pub enum ChatV2 {
        Hello {
            name: String,
            #[message(default)]
            agent: Option<String>,
        },
        Say(String),
        Bye,
        React {
            to: u64,
            emoji: char,
        },
    }
}

#[test]
fn a_reader_that_did_not_plan_for_growth_refuses_what_it_does_not_know() {
    // The new reader still reads the old messages: defaults need nothing from the writer.
    let old = strict::ChatV1::Hello { name: "ann".into() };
    let read = strict::ChatV2::from_bytes(old.to_bytes()).unwrap();
    assert_eq!(
        read,
        strict::ChatV2::Hello {
            name: "ann".into(),
            agent: None
        }
    );
    // The old reader has no place for the new field nor the new variant.
    let new = strict::ChatV2::Hello {
        name: "ann".into(),
        agent: None,
    };
    let err = strict::ChatV1::from_bytes(new.to_bytes()).unwrap_err();
    assert_eq!(err.kind(), &DecodeErrorKind::TrailingBytes { remaining: 1 });
    let err = strict::ChatV1::from_bytes(strict::ChatV2::React { to: 1, emoji: 'x' }.to_bytes())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot decode ChatV1 at byte 0: unknown variant tag 3"
    );
}

#[test]
fn a_defaulted_field_that_is_cut_short_is_an_error_not_a_default() {
    // Hello with agent = Some(...) but the string's bytes cut off: the field started, so it
    // must be whole.
    let mut frame = v2::Chat::Hello {
        name: "ann".into(),
        agent: Some("abc".into()),
    }
    .to_bytes()
    .to_vec();
    frame.truncate(frame.len() - 1);
    let err = v2::Chat::from_slice(&frame).unwrap_err();
    assert_eq!(err.path().collect::<Vec<_>>(), ["Chat::Hello.agent"]);
    assert!(
        matches!(err.kind(), DecodeErrorKind::LengthExceedsFrame { .. }),
        "{err}"
    );
}

#[test]
fn nested_messages_grow_inside_a_length_prefix() {
    let census = v2::Census {
        statuses: vec![
            Delimited(v2::Status {
                height: 1,
                peers: vec!["p".into()],
                mode: "light".into(),
            }),
            Delimited(v2::Status {
                height: 2,
                peers: vec![],
                mode: "full".into(),
            }),
        ],
        round: 9,
    };
    let old: v1::Census = relay(&census);
    assert_eq!(old.round, 9);
    assert_eq!(old.statuses[0].peers, ["p"]);
    assert_eq!(old.statuses[1].height, 2);
    let back: v2::Census = relay(&old);
    assert_eq!(
        back.statuses[0].mode, "full",
        "lost on the way, so defaulted"
    );
    assert_eq!(back.round, 9);
}

#[test]
fn a_delimited_value_must_fill_its_length() {
    // A Delimited<u8> of declared length 2 holding one u8: the second byte is left over.
    let err = Delimited::<u8>::from_bytes(Bytes::from_static(&[2, 7, 7])).unwrap_err();
    assert_eq!(err.kind(), &DecodeErrorKind::TrailingBytes { remaining: 1 });
    // A length longer than the frame.
    let err = Delimited::<u8>::from_bytes(Bytes::from_static(&[5, 7])).unwrap_err();
    assert!(
        matches!(err.kind(), DecodeErrorKind::LengthExceedsFrame { .. }),
        "{err}"
    );
    // A catch-all inside a length prefix takes only the bytes inside it.
    let mut frame = vec![4, 0xac, 0x02, 1, 2];
    frame.push(42);
    let (chat, after) = <(Delimited<v1::Chat>, u8)>::from_slice(&frame).unwrap();
    assert_eq!(
        chat.0,
        v1::Chat::Unknown {
            tag: 300,
            body: Bytes::from_static(&[1, 2])
        }
    );
    assert_eq!(after, 42);
}

#[test]
fn encoding_is_postcards_whatever_the_attributes() {
    // Defaulted fields are always written, and extensible types write what they know: the
    // bytes are those of the same declaration without the attributes.
    let hello = v2::Chat::Hello {
        name: "a".into(),
        agent: Some("b".into()),
    };
    assert_eq!(&hello.to_bytes()[..], &[0, 1, b'a', 1, 1, b'b']);
    let status = v2::Status {
        height: 300,
        peers: vec![],
        mode: "x".into(),
    };
    assert_eq!(&status.to_bytes()[..], &[0xac, 0x02, 0, 1, b'x']);
}

#[test]
fn shapes_name_the_attributes() {
    assert_eq!(
        <v2::Chat as Message>::SHAPE,
        "extensible enum Chat { Hello { name: String, agent: Option<String> (default) } = 0, Say(String) = 1, Bye = 2, React { to: u64, emoji: char } = 3, Unknown { tag: u32, body: Bytes } = other }"
    );
    assert_eq!(
        <v2::Status as Message>::SHAPE,
        "extensible struct Status { height: u64, peers: Vec<String>, mode: String (default) }"
    );
    // Without the attributes, the shape (and so the fingerprint) is what it always was.
    assert_eq!(
        <strict::ChatV1 as Message>::SHAPE,
        "enum ChatV1 { Hello { name: String } = 0, Say(String) = 1, Bye = 2 }"
    );
    assert_ne!(
        <v1::Chat as Message>::FINGERPRINT,
        <v2::Chat as Message>::FINGERPRINT
    );
}

/// The name and `OPEN_ENDED` of `T`.
fn open<T: Message>(name: &'static str) -> (&'static str, bool) {
    (name, T::OPEN_ENDED)
}

#[test]
fn open_ended_types_are_known() {
    let seen = [
        open::<v1::Chat>("extensible, with a catch-all"),
        open::<v2::Status>("extensible, with a default"),
        open::<strict::ChatV2>("a defaulted field only"),
        open::<strict::ChatV1>("no attribute"),
        open::<Option<v2::Status>>("Option of one"),
        open::<Vec<v2::Status>>("Vec of one"),
        open::<(u8, v2::Status)>("last in a tuple"),
        open::<(v2::Status, u8)>("first in a tuple (refused when decoded)"),
        open::<Delimited<v2::Status>>("Delimited"),
        open::<v2::Census>("holds them in Delimited"),
    ];
    let expected = [
        true, true, true, false, true, true, true, false, false, false,
    ];
    for ((name, open), expected) in seen.into_iter().zip(expected) {
        assert_eq!(open, expected, "{name}");
    }
}

#[test]
fn the_schema_lists_variants_tags_and_defaults() {
    let SchemaKind::Enum {
        variants,
        catch_all,
        extensible,
        reserved,
    } = <v2::Chat as Message>::SCHEMA.kind
    else {
        panic!("an enum");
    };
    assert!(extensible);
    assert!(reserved.is_empty());
    assert_eq!(catch_all, Some("Unknown"));
    let names: Vec<_> = variants.iter().map(|v| (v.name, v.tag)).collect();
    assert_eq!(names, [("Hello", 0), ("Say", 1), ("Bye", 2), ("React", 3)]);
    let agent = &variants[0].fields[1];
    assert_eq!(
        (agent.name, agent.ty, agent.default),
        ("agent", "Option<String>", true)
    );
    let option = (agent.schema)();
    assert_eq!(option.name, "Option");
    assert_eq!((option.params[0])().name, "String");
    let say = &variants[1].fields[0];
    assert_eq!((say.name, say.default), ("0", false));

    let census = <v2::Census as Message>::SCHEMA;
    let SchemaKind::Struct { fields, .. } = census.kind else {
        panic!("a struct");
    };
    // Vec<Delimited<Status>> leads to Status's own schema.
    let vec = (fields[0].schema)();
    let delimited = (vec.params[0])();
    let status = (delimited.params[0])();
    assert_eq!(
        (vec.name, delimited.name, status.name),
        ("Vec", "Delimited", "Status")
    );
    let SchemaKind::Struct { fields, extensible } = status.kind else {
        panic!("a struct");
    };
    assert!(extensible);
    assert_eq!(fields[2].name, "mode");
    assert!(fields[2].default);
}

/// A retired variant's tag stays retired; the schema says so.
#[derive(Message, Debug, PartialEq)]
#[message(reserved(1))]
enum Retired {
    Ping,
    #[message(tag = 2)]
    Pong,
    #[message(other)]
    Unknown(u32, Bytes),
}

#[test]
fn a_reserved_tag_reaches_the_catch_all() {
    let read = Retired::from_bytes(Bytes::from_static(&[1, 5])).unwrap();
    assert_eq!(read, Retired::Unknown(1, Bytes::from_static(&[5])));
    let SchemaKind::Enum { reserved, .. } = <Retired as Message>::SCHEMA.kind else {
        panic!("an enum");
    };
    assert_eq!(reserved, [1]);
    assert!(<Retired as Message>::SHAPE.ends_with("reserved(1)"));
}

fn text() -> impl Strategy<Value = String> {
    ".{0,12}"
}

fn bytes() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..16).prop_map(Bytes::from)
}

/// Unknown tags that neither version has (v2's highest is 3).
fn unknown() -> impl Strategy<Value = (u32, Bytes)> {
    (4u32.., bytes())
}

fn chat_v1() -> impl Strategy<Value = v1::Chat> {
    prop_oneof![
        text().prop_map(|name| v1::Chat::Hello { name }),
        text().prop_map(v1::Chat::Say),
        Just(v1::Chat::Bye),
        unknown().prop_map(|(tag, body)| v1::Chat::Unknown { tag, body }),
    ]
}

/// Version-2 values that use nothing version 1 lacks.
fn chat_v2_old_parts() -> impl Strategy<Value = v2::Chat> {
    chat_v1().prop_map(|msg| upgrade(&msg))
}

/// Any version-2 value, new parts included.
fn chat_v2() -> impl Strategy<Value = v2::Chat> {
    prop_oneof![
        (text(), prop::option::of(text()))
            .prop_map(|(name, agent)| v2::Chat::Hello { name, agent }),
        text().prop_map(v2::Chat::Say),
        Just(v2::Chat::Bye),
        (any::<u64>(), any::<char>()).prop_map(|(to, emoji)| v2::Chat::React { to, emoji }),
        unknown().prop_map(|(tag, body)| v2::Chat::Unknown { tag, body }),
    ]
}

fn status_v1() -> impl Strategy<Value = v1::Status> {
    (any::<u64>(), prop::collection::vec(text(), 0..4))
        .prop_map(|(height, peers)| v1::Status { height, peers })
}

fn status_v2() -> impl Strategy<Value = v2::Status> {
    (status_v1(), text()).prop_map(|(s, mode)| v2::Status {
        height: s.height,
        peers: s.peers,
        mode,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn v1_values_decode_as_v2_with_defaults(msg in chat_v1(), status in status_v1()) {
        prop_assert_eq!(relay::<_, v2::Chat>(&msg), upgrade(&msg));
        let read: v2::Status = relay(&status);
        prop_assert_eq!(read.mode, "full");
        prop_assert_eq!((read.height, read.peers), (status.height, status.peers));
    }

    #[test]
    fn v2_values_without_new_parts_decode_as_v1_and_back(msg in chat_v2_old_parts()) {
        let old: v1::Chat = relay(&msg);
        prop_assert_eq!(&old, &downgrade(&msg));
        // Nothing was new, so nothing was lost (an absent `agent` is `None` again).
        prop_assert_eq!(relay::<_, v2::Chat>(&old), msg);
    }

    #[test]
    fn v2_values_with_new_parts_decode_as_v1(msg in chat_v2(), status in status_v2()) {
        let old: v1::Chat = relay(&msg);
        prop_assert_eq!(&old, &downgrade(&msg));
        // What the catch-all kept goes back out unchanged; only skipped fields are lost.
        if !matches!(msg, v2::Chat::Hello { .. }) {
            prop_assert_eq!(relay::<_, v2::Chat>(&old), msg);
        }
        let read: v1::Status = relay(&status);
        prop_assert_eq!((read.height, read.peers), (status.height, status.peers));
    }

    #[test]
    fn nested_statuses_cross_versions(
        statuses in prop::collection::vec(status_v2(), 0..4),
        round in any::<u32>(),
    ) {
        let census = v2::Census {
            statuses: statuses.iter().cloned().map(Delimited).collect(),
            round,
        };
        let old: v1::Census = relay(&census);
        prop_assert_eq!(old.round, round);
        for (old, new) in old.statuses.iter().zip(&statuses) {
            prop_assert_eq!(old.height, new.height);
            prop_assert_eq!(&old.peers, &new.peers);
        }
        prop_assert_eq!(old.statuses.len(), statuses.len());
    }
}
