//! Encode and decode a small, a medium and a large message with pea2pea's `Message` and with
//! serde + postcard, in the same run. Run: `cargo bench -p pea2pea-benches --bench wire`.

use bytes::Bytes;
use divan::{Bencher, black_box};
use pea2pea::Message;
use serde::{Deserialize, Serialize};

fn main() {
    divan::main();
}

#[derive(Message, Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Small {
    id: u32,
    flag: bool,
}

#[derive(Message, Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Kind {
    Ping { seq: u64 },
    Data(Vec<u8>),
    Quit,
}

#[derive(Message, Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Medium {
    name: String,
    values: Vec<u64>,
    kind: Kind,
}

#[derive(Message, Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Large {
    id: u64,
    payload: Bytes,
}

fn small() -> Small {
    Small {
        id: 123_456,
        flag: true,
    }
}

fn medium() -> Medium {
    Medium {
        name: "a medium-sized message".into(),
        values: (0..16).map(|i| i * 1_000_003).collect(),
        kind: Kind::Ping { seq: 42 },
    }
}

fn large() -> Large {
    Large {
        id: 7,
        payload: Bytes::from(vec![0xab; 64 * 1024]),
    }
}

macro_rules! pair {
    ($module:ident, $make:ident, $ty:ty) => {
        mod $module {
            use super::*;

            #[divan::bench]
            fn encode_pea2pea(b: Bencher) {
                let msg = $make();
                b.bench(|| black_box(&msg).to_bytes());
            }

            #[divan::bench]
            fn encode_postcard(b: Bencher) {
                let msg = $make();
                b.bench(|| postcard::to_allocvec(black_box(&msg)).unwrap());
            }

            #[divan::bench]
            fn decode_pea2pea(b: Bencher) {
                // A codec hands the decoder an owned frame (split off its buffer), so the
                // frame's clone is made outside the timed part; its drop is timed.
                let frame = $make().to_bytes();
                b.with_inputs(|| frame.clone())
                    .bench_values(|frame| <$ty>::from_bytes(black_box(frame)).unwrap());
            }

            #[divan::bench]
            fn decode_pea2pea_slice(b: Bencher) {
                // The same input as postcard's: borrowed bytes (`Bytes` fields are copied).
                let frame = $make().to_bytes();
                b.bench(|| <$ty>::from_slice(black_box(&frame)).unwrap());
            }

            #[divan::bench]
            fn decode_postcard(b: Bencher) {
                let frame = postcard::to_allocvec(&$make()).unwrap();
                b.bench(|| postcard::from_bytes::<$ty>(black_box(&frame)).unwrap());
            }
        }
    };
}

pair!(small, small, Small);
pair!(medium, medium, Medium);
pair!(large, large, Large);
