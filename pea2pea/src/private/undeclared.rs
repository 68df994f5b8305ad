//! Stand-ins for the methods a protocol does not declare. `protocol!` gives a node that writes
//! nothing a `send` (and friends), and a node without `rpc` lines a `call`, whose only bound is
//! one of these traits: they have no implementations, so a use is one compile error whose
//! message says what to declare, instead of rustc's "no method named `call`" and its guesses.

/// Bound of the `send` methods of a node whose protocol declares no outbound messages.
#[diagnostic::on_unimplemented(
    message = "`{N}` cannot send: its protocol! declares no messages to write",
    label = "`{N}`'s protocol only reads",
    note = "declare what it writes in protocol!: `{N} reads ..., writes {Self}`, or `{N} speaks {Self}` to read and write one type"
)]
pub trait NoWritesDeclared<N> {
    /// Never called: there is no implementation.
    fn undeclared(&self) -> !;
}

/// Bound of the `call` of a node whose protocol declares no `rpc` line.
#[diagnostic::on_unimplemented(
    message = "`{N}` cannot call: its protocol! declares no rpc",
    label = "`{N}`'s protocol has no `rpc` line",
    note = "declare the request in protocol!: `rpc {Self} -> Response` to call it, or `rpc {Self} -> Response => handler` to serve it too"
)]
pub trait NoRpcDeclared<N> {
    /// Never called: there is no implementation.
    fn undeclared(&self) -> !;
}
