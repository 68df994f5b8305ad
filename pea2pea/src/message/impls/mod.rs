//! `Message` for the standard types, grouped by kind.

mod collections;
mod net;
mod pointers;
mod primitives;
mod text;
mod tuples;

/// The schema of a std container: its name and its type parameters' schemas.
macro_rules! container_schema {
    ($name:expr $(, $param:ty)*) => {
        &$crate::message::Schema {
            name: $name,
            kind: $crate::message::SchemaKind::Opaque,
            params: &[$($crate::message::schema_of::<$param>),*],
        }
    };
}

/// Fails the build of a decoder that would read an open-ended value where its end is unknown
/// (an element of a sequence, a map or an array, a tuple element before the last). Evaluated
/// when the decoder is compiled for a concrete type, so the error names that type.
macro_rules! refuse_open_ended {
    ($open:expr, $place:literal) => {
        const {
            if $open {
                ::core::panic!(concat!(
                    "an open-ended message (with `#[message(default)]` fields, `#[message(extensible)]` or a `#[message(other)]` variant) cannot be ",
                    $place,
                    ": its decoder would not know where it ends; wrap it in `pea2pea::message::Delimited`"
                ));
            }
        }
    };
}

use container_schema;
use refuse_open_ended;
