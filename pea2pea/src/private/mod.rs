//! What the macros' generated code names, and nothing else: not part of the public API. The
//! version in the module's name changes with each release that changes what is in it, so that
//! nobody depends on it by accident and a mismatched `pea2pea-macros` fails to compile rather
//! than misbehave. Only the macros name it (through `crate = path` when pea2pea is renamed).

pub mod checked;
pub mod derive;
pub mod rt;
pub mod undeclared;
pub mod unhandled;
