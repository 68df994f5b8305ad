//! The fuzz targets' properties (fuzz/, see `tests/src/fuzz_types.rs`) as proptest cases that
//! run in CI: derived decoders over arbitrary and mutated bytes never panic and round-trip what
//! they accept; the frame codec gives the same outcome however its input is chunked; and valid
//! messages survive being framed, concatenated and fed in arbitrary chunks.

use bytes::Bytes;
use pea2pea::{Message, message::Delimited};
use pea2pea_tests::fuzz_types::{
    Command, End, Envelope, Evolving, Record, Tree, check_codec, check_decoder,
    check_evolvable_decoder, cut, decode_stream,
};
use proptest::{collection::vec, prelude::*};
use tokio_util::codec::Encoder;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn command() -> impl Strategy<Value = Command> {
    let leaf = prop_oneof![
        ".{0,12}".prop_map(|key| Command::Get { key }),
        (".{0,8}", vec(any::<u8>(), 0..32)).prop_map(|(k, v)| Command::Put(k, Bytes::from(v))),
        vec(".{0,4}", 0..5).prop_map(Command::Del),
        vec(any::<Option<u64>>(), 0..6).prop_map(Command::Seq),
        Just(Command::Stop),
    ];
    leaf.prop_recursive(4, 32, 2, |inner| {
        (inner.clone(), inner).prop_map(|(a, b)| Command::Both(Box::new(a), Box::new(b)))
    })
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = any::<i32>().prop_map(|value| Tree {
        value,
        children: Vec::new(),
        next: None,
    });
    leaf.prop_recursive(4, 24, 3, |inner| {
        (
            any::<i32>(),
            vec(inner.clone(), 0..3),
            proptest::option::of(inner),
        )
            .prop_map(|(value, children, next)| Tree {
                value,
                children,
                next: next.map(Box::new),
            })
    })
}

fn evolving() -> impl Strategy<Value = Evolving> {
    let leaf = prop_oneof![
        (
            ".{0,8}",
            proptest::option::of(".{0,8}"),
            vec(any::<u64>(), 0..3)
        )
            .prop_map(|(name, agent, seen)| Evolving::Hello { name, agent, seen }),
        (3u32.., vec(any::<u8>(), 0..12)).prop_map(|(tag, body)| Evolving::Unknown {
            tag,
            body: Bytes::from(body)
        }),
    ];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            vec(inner.clone().prop_map(Delimited), 0..3).prop_map(Evolving::Batch),
            (command(), inner)
                .prop_map(|(c, e)| Evolving::Pair(Delimited(c), Box::new(Delimited(e)))),
        ]
    })
}

/// `encoded` with the byte at `at` (modulo its length) replaced by `byte`, cut at `cut_at`
/// (modulo its length plus one), and with `byte` appended.
fn mutated(encoded: &[u8], at: usize, byte: u8, cut_at: usize) -> [Vec<u8>; 3] {
    let mut changed = encoded.to_vec();
    if !changed.is_empty() {
        let i = at % changed.len();
        changed[i] = byte;
    }
    let cut = encoded[..cut_at % (encoded.len() + 1)].to_vec();
    let mut longer = encoded.to_vec();
    longer.push(byte);
    [changed, cut, longer]
}

/// Every type's decoder, over the same bytes.
fn check_all_decoders(data: &[u8]) {
    check_decoder::<Envelope>(data, false);
    check_decoder::<Record>(data, false);
    check_decoder::<Tree>(data, true);
    check_decoder::<Command>(data, true);
    check_evolvable_decoder::<Evolving>(data);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decoders_survive_arbitrary_bytes(data in vec(any::<u8>(), 0..256)) {
        check_all_decoders(&data);
    }

    /// Valid encodings with a byte changed, cut short or extended: closer to the decoders'
    /// interesting paths than random bytes.
    #[test]
    fn decoders_survive_mutated_encodings(
        value in command(),
        tree in tree(),
        at in any::<usize>(),
        byte in any::<u8>(),
        cut_at in any::<usize>(),
    ) {
        for encoded in [value.to_bytes().to_vec(), tree.to_bytes().to_vec()] {
            prop_assert!(check_decoder::<Command>(&value.to_bytes(), true));
            prop_assert!(check_decoder::<Tree>(&tree.to_bytes(), true));
            for input in mutated(&encoded, at, byte, cut_at) {
                check_all_decoders(&input);
            }
        }
    }

    /// The evolvable paths (defaults, skipped bytes, catch-all bodies, length prefixes) over
    /// valid encodings changed, cut short and extended.
    #[test]
    fn evolvable_decoders_survive_mutated_encodings(
        value in evolving(),
        at in any::<usize>(),
        byte in any::<u8>(),
        cut_at in any::<usize>(),
    ) {
        let encoded = value.to_bytes().to_vec();
        prop_assert!(check_evolvable_decoder::<Evolving>(&encoded));
        prop_assert_eq!(Evolving::from_slice(&encoded).unwrap(), value);
        let [changed, cut, longer] = mutated(&encoded, at, byte, cut_at);
        check_all_decoders(&changed);
        check_all_decoders(&cut);
        // A newer peer's extra byte at the end: skipped.
        prop_assert!(check_evolvable_decoder::<Evolving>(&longer));
        check_all_decoders(&longer);
    }

    #[test]
    fn frame_codec_ignores_chunking(
        data in vec(any::<u8>(), 0..512),
        sizes in vec(any::<usize>(), 0..16),
    ) {
        check_codec::<Envelope>(&data, &sizes);
        check_codec::<Command>(&data, &sizes);
    }

    /// Framed valid messages, concatenated and chunked at random, come out as they went in.
    #[test]
    fn framed_messages_survive_any_chunking(
        values in vec(command(), 0..8),
        sizes in vec(any::<usize>(), 0..24),
    ) {
        for codec in pea2pea_tests::fuzz_types::codecs::<Command>() {
            let mut encoder = codec.clone();
            let mut wire = bytes::BytesMut::new();
            let mut sent = Vec::new();
            for value in &values {
                // a message too large for this codec's frame is refused, not truncated
                if encoder.encode(value.clone(), &mut wire).is_ok() {
                    sent.push(value.clone());
                } else {
                    prop_assert!(value.encoded_len() > codec.max_len());
                }
            }
            let (received, end) = decode_stream(codec.clone(), &cut(&wire, &sizes));
            prop_assert_eq!(&received, &sent);
            prop_assert_eq!(end, End::Pending(0));
        }
    }
}

#[test]
fn canonical_property_sees_overlong_varints() {
    // Get { key: "" } as tag 0 then length 0, both written overlong: accepted (as postcard
    // does) and re-encoded canonically, two bytes shorter
    assert!(check_decoder::<Command>(&[0x80, 0x00, 0x80, 0x00], true));
    assert_eq!(
        Command::from_bytes(Bytes::from_static(&[0x80, 0x00, 0x80, 0x00])).unwrap(),
        Command::Get { key: String::new() }
    );
}
