//! Hostile input: random and truncated bytes fed to several derived decoders never panic and
//! never allocate more than a small multiple of the input's size. A counting global allocator
//! measures each decode; every test holds one lock for its whole run so that no other test
//! allocates meanwhile.

use std::{
    alloc::System,
    collections::{BTreeMap, HashMap},
    sync::{Mutex, MutexGuard},
};

use bytes::Bytes;
use pea2pea::{
    Message,
    message::{DecodeErrorKind, Delimited, Reader},
};
use proptest::{prelude::*, test_runner::TestRunner};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[derive(Message, Debug, PartialEq, Clone)]
enum Chat {
    Hello {
        name: String,
        #[message(max_len = 8)]
        tags: Vec<String>,
    },
    Say(String),
    Blob(Bytes),
    Nested(Box<Chat>),
    Many(Vec<Chat>),
    Units(Vec<()>),
    Bye,
}

#[derive(Message, Debug, PartialEq, Clone)]
struct Record {
    id: u64,
    scores: Vec<u32>,
    index: HashMap<u16, Vec<u8>>,
    sorted: BTreeMap<String, Option<i64>>,
    grid: Vec<Vec<Vec<()>>>,
    pair: (u128, char, bool),
}

/// The decoding paths of evolvable messages: defaulted fields, skipped trailing bytes, a
/// catch-all that keeps unknown bodies, and length-prefixed nesting.
#[derive(Message, Debug, PartialEq, Clone)]
#[message(extensible)]
enum Evolving {
    Hello {
        name: String,
        #[message(default)]
        agent: Option<String>,
        #[message(default)]
        tags: Vec<String>,
    },
    Batch(Vec<Delimited<Evolving>>),
    Nested(Box<Delimited<Evolving>>),
    #[message(other)]
    Unknown(u32, Bytes),
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs tests of this binary one at a time (the allocation counter is process-wide).
fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Bytes a decoder may allocate for an input of `len` bytes: element memory is at most
/// `PREALLOC_FACTOR` times the input (types here are at most 48 bytes per input byte), plus a
/// constant for the boxed error.
fn budget(len: usize) -> usize {
    64 * len + 1024
}

/// Decodes `input` as `T`, returning the bytes allocated meanwhile.
fn measured<T: Message>(input: &[u8]) -> usize {
    let frame = Bytes::copy_from_slice(input);
    let region = Region::new(GLOBAL);
    let result = T::from_bytes(frame);
    let allocated = region.change().bytes_allocated;
    drop(result);
    allocated
}

fn check_all(input: &[u8]) -> Result<(), TestCaseError> {
    let limit = budget(input.len());
    for (name, allocated) in [
        ("Chat", measured::<Chat>(input)),
        ("Record", measured::<Record>(input)),
        ("Evolving", measured::<Evolving>(input)),
        (
            "Vec<Delimited<Evolving>>",
            measured::<Vec<Delimited<Evolving>>>(input),
        ),
        ("Vec<String>", measured::<Vec<String>>(input)),
        ("Vec<Vec<()>>", measured::<Vec<Vec<()>>>(input)),
        (
            "HashMap<u64, Bytes>",
            measured::<HashMap<u64, Bytes>>(input),
        ),
    ] {
        prop_assert!(
            allocated <= limit,
            "{name} allocated {allocated} bytes for {} input bytes",
            input.len()
        );
    }
    Ok(())
}

fn sample_chat() -> Chat {
    Chat::Many(vec![
        Chat::Hello {
            name: "ann".into(),
            tags: vec!["a".into(), "b".into()],
        },
        Chat::Say("hi there".into()),
        Chat::Blob(Bytes::from_static(&[1, 2, 3, 4, 5])),
        Chat::Nested(Box::new(Chat::Units(vec![(); 10]))),
        Chat::Bye,
    ])
}

fn sample_record() -> Record {
    Record {
        id: 1 << 40,
        scores: vec![1, 300, 70_000],
        index: HashMap::from([(1, vec![1, 2]), (900, vec![])]),
        sorted: BTreeMap::from([("k".into(), Some(-5)), ("z".into(), None)]),
        grid: vec![vec![vec![(); 3]; 2]; 2],
        pair: (u128::MAX, 'é', true),
    }
}

fn sample_evolving() -> Evolving {
    let hello = Evolving::Hello {
        name: "ann".into(),
        agent: Some("v2".into()),
        tags: vec!["x".into()],
    };
    Evolving::Batch(vec![
        Delimited(hello),
        Delimited(Evolving::Nested(Box::new(Delimited(Evolving::Unknown(
            300,
            Bytes::from_static(&[1, 2, 3]),
        ))))),
        Delimited(Evolving::Hello {
            name: String::new(),
            agent: None,
            tags: vec![],
        }),
    ])
}

fn runner() -> TestRunner {
    TestRunner::new(ProptestConfig::with_cases(2000))
}

#[test]
fn random_bytes_are_rejected_cheaply() {
    let _serial = serial();
    runner()
        .run(&prop::collection::vec(any::<u8>(), 0..512), |input| {
            check_all(&input)
        })
        .unwrap();
}

#[test]
fn truncated_and_mutated_frames_are_rejected_cheaply() {
    let _serial = serial();
    let frames = [
        sample_chat().to_bytes().to_vec(),
        sample_record().to_bytes().to_vec(),
        sample_evolving().to_bytes().to_vec(),
    ];
    let cases = (
        0usize..3,
        0usize..200,
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    );
    runner()
        .run(&cases, |(which, cut, flips)| {
            let mut frame = frames[which].clone();
            for (at, byte) in flips {
                let i = at.index(frame.len());
                frame[i] = byte;
            }
            frame.truncate(cut.min(frame.len()));
            check_all(&frame)
        })
        .unwrap();
}

#[test]
fn huge_declared_lengths_fail_before_allocating() {
    let _serial = serial();
    // A Vec<()> of 2^60 elements, a String of 2^60 bytes, a Vec<u64> of 2^60 elements.
    let huge = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10];
    for (name, allocated) in [
        ("Vec<()>", measured::<Vec<()>>(&huge)),
        ("String", measured::<String>(&huge)),
        ("Vec<u64>", measured::<Vec<u64>>(&huge)),
    ] {
        assert!(
            allocated <= budget(huge.len()),
            "{name} allocated {allocated}"
        );
    }
    let err = Vec::<()>::from_bytes(Bytes::copy_from_slice(&huge)).unwrap_err();
    assert!(
        matches!(err.kind(), DecodeErrorKind::ZeroSizedBudgetExceeded { .. }),
        "{err}"
    );
    let err = String::from_bytes(Bytes::copy_from_slice(&huge)).unwrap_err();
    assert!(
        matches!(err.kind(), DecodeErrorKind::LengthExceedsFrame { .. }),
        "{err}"
    );
}

#[test]
fn errors_name_the_type_field_and_offset() {
    let _serial = serial();
    // Chat::Hello with 9 tags: over its max_len of 8.
    let frame = Bytes::from_static(&[0, 1, b'a', 9]);
    let err = Chat::from_bytes(frame).unwrap_err();
    assert_eq!(
        err.kind(),
        &DecodeErrorKind::MaxLenExceeded {
            declared: 9,
            max: 8
        }
    );
    assert_eq!(err.offset(), 3);
    assert_eq!(err.path().collect::<Vec<_>>(), ["Chat::Hello.tags"]);
    assert_eq!(
        err.to_string(),
        "cannot decode Chat::Hello.tags (Vec) at byte 3: declared length 9 exceeds the field's max_len of 8"
    );
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::ErrorKind::InvalidData);

    let err = Chat::from_bytes(Bytes::from_static(&[42])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot decode Chat at byte 0: unknown variant tag 42"
    );

    let err = Chat::from_bytes(Bytes::from_static(&[6, 0])).unwrap_err();
    assert_eq!(err.kind(), &DecodeErrorKind::TrailingBytes { remaining: 1 });
}

#[test]
fn nesting_is_capped() {
    let _serial = serial();
    // Chat::Nested(Chat::Nested(...)) 10_000 deep: tag 3 repeated, then Bye.
    let mut frame = vec![3u8; 10_000];
    frame.push(6);
    let err = Chat::from_bytes(Bytes::from(frame)).unwrap_err();
    assert_eq!(err.kind(), &DecodeErrorKind::TooDeep { limit: 128 });
    // Just under the limit decodes (the outermost Chat is level 1).
    let mut frame = vec![3u8; 127];
    frame.push(6);
    assert!(Chat::from_bytes(Bytes::from(frame)).is_ok());
    let frame = Bytes::from_static(&[3, 3, 6]);
    let mut shallow = Reader::new(&frame).with_max_depth(2);
    assert!(Chat::decode(&mut shallow).is_err());
    // Through length prefixes too: Evolving::Nested(Delimited(...)) 1000 deep, each level
    // honestly sized, around an empty Hello.
    let mut value = Evolving::Hello {
        name: String::new(),
        agent: None,
        tags: vec![],
    };
    for _ in 0..1000 {
        value = Evolving::Nested(Box::new(Delimited(value)));
    }
    let err = Evolving::from_bytes(value.to_bytes()).unwrap_err();
    assert_eq!(err.kind(), &DecodeErrorKind::TooDeep { limit: 128 });
}

#[test]
fn evolvable_paths_reject_lies_cheaply() {
    let _serial = serial();
    // A Delimited that claims 2^60 bytes fails before reading or allocating.
    let huge = [1, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10];
    let allocated = measured::<Evolving>(&huge);
    assert!(allocated <= budget(huge.len()), "allocated {allocated}");
    let err = Evolving::from_bytes(Bytes::copy_from_slice(&huge)).unwrap_err();
    assert!(
        matches!(err.kind(), DecodeErrorKind::LengthExceedsFrame { .. }),
        "{err}"
    );
    assert_eq!(err.path().collect::<Vec<_>>(), ["Evolving::Batch.0"]);
    // Inside a length prefix, a catch-all's body stops at the prefix's end; the bytes after
    // the batch (a newer peer's field) are skipped, the type being extensible.
    let frame = [1, 1, 2, 5, 9, 3, 7];
    let read = Evolving::from_slice(&frame).unwrap();
    let unknown = Evolving::Unknown(5, Bytes::from_static(&[9]));
    assert_eq!(read, Evolving::Batch(vec![Delimited(unknown)]));
}

#[test]
fn samples_round_trip() {
    let _serial = serial();
    assert_eq!(
        Chat::from_bytes(sample_chat().to_bytes()).unwrap(),
        sample_chat()
    );
    assert_eq!(
        Record::from_bytes(sample_record().to_bytes()).unwrap(),
        sample_record()
    );
    assert_eq!(
        Evolving::from_bytes(sample_evolving().to_bytes()).unwrap(),
        sample_evolving()
    );
}
