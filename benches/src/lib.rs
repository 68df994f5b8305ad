//! Benchmark workloads shared by the `engine` bench and the published-crate comparison
//! (`benches/published`, which compiles the same files against the published crate).

pub mod workloads;
