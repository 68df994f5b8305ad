//! `Message` for the standard types, grouped by kind.

mod collections;
mod net;
mod pointers;
mod primitives;
mod text;
mod tuples;
