//! Helpers for the simulation tests.
#![forbid(unsafe_code)]
