//! Shared helpers for pea2pea's integration tests.
