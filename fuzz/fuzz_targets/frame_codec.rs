//! MessageCodec over arbitrary bytes, fed whole and in arbitrary chunks (the first input byte
//! says how many chunk sizes follow): no panic, the same messages, error and leftover either
//! way, and every decoded message round-trips.
#![no_main]

#[path = "../../tests/src/fuzz_types.rs"]
#[allow(dead_code)]
mod types;

use libfuzzer_sys::fuzz_target;
use types::{Command, Envelope, check_codec, split_fuzz_input};

fuzz_target!(|data: &[u8]| {
    let (sizes, stream) = split_fuzz_input(data);
    check_codec::<Envelope>(stream, &sizes);
    check_codec::<Command>(stream, &sizes);
});
