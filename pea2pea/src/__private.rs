//! Items the macros' generated code names. Not part of the public API: no semver guarantees.

pub use bytes;
pub use tokio;
pub use tokio_util;
pub use tracing;

/// The DSL runtime: everything `protocol!` and `#[node]` expansions name.
pub use crate::dsl::rt;
