//! Items the macros' generated code names. Not part of the public API: no semver guarantees.

pub use bytes;
pub use tokio;
pub use tokio_util;
pub use tracing;
