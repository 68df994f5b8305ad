//! The decoders of derived messages over arbitrary bytes: no panic, and whatever decodes
//! re-encodes to bytes that decode to the same value (byte for byte, or shorter for overlong
//! varints, for the types without maps or sets; a fixpoint after one re-encoding for the
//! evolvable type, whose defaults and skipped bytes change the length).
#![no_main]

#[path = "../../tests/src/fuzz_types.rs"]
#[allow(dead_code)]
mod types;

use libfuzzer_sys::fuzz_target;
use types::{Command, Envelope, Evolving, Record, Tree, check_decoder, check_evolvable_decoder};

fuzz_target!(|data: &[u8]| {
    check_decoder::<Envelope>(data, false);
    check_decoder::<Record>(data, false);
    check_decoder::<Tree>(data, true);
    check_decoder::<Command>(data, true);
    check_evolvable_decoder::<Evolving>(data);
});
