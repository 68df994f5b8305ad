//! The node's inherent methods: `start`, `enable_protocols`, `connect_if_needed`, the sends
//! and `call`, or their stand-ins when the protocol does not declare what they need.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::{checked, if_clone, through, usize_lit};
use crate::protocol::check::{CheckedFraming, HandshakeKind, Model};

pub(super) fn expand_api(model: &Model, rt: &TokenStream) -> TokenStream {
    let node = &model.node;
    let if_clone = if_clone(model, rt);
    let enables = enables(model, rt);
    let sending = sends(model, rt).unwrap_or_else(|| undeclared_sends(rt));
    let call = call(model, rt).unwrap_or_else(|| undeclared_call(rt));
    let handshake_ms = match model.handshake {
        HandshakeKind::None => quote!(0u64),
        _ => quote!(<Self as #rt::Handshake>::TIMEOUT_MS),
    };
    let start_doc = "Enables the declared protocols (as `enable_protocols` does) and starts listening on the configured address, unless the node is already listening (`Node::start_listening`); returns the address it listens on. Calling it again, even concurrently, returns the same address.";
    quote! {
        impl #node #if_clone {
            #[doc = #start_doc]
            pub async fn start(&self) -> #rt::io::Result<#rt::SocketAddr> {
                Self::enable_protocols(self).await;
                #rt::Node::start_listening(#rt::Pea2Pea::node(self)).await
            }

            /// Enables exactly the declared protocols, in the engine's order (handshake,
            /// reading, writing, on_connect, on_disconnect), without listening: for a node
            /// that only dials out. Calling it again does nothing.
            pub async fn enable_protocols(&self) {
                if #rt::first_enable(#rt::Pea2Pea::node(self)) {
                    #(#enables)*
                }
            }

            /// Returns the address of a connection to the node that listens at `addr`,
            /// dialling it only if there is none: a connection this node dialled to `addr`, or,
            /// with `handshake = fingerprint`, one the peer dialled from another port (the
            /// handshake told its listening address); and a dial on its way (another task's, or
            /// the peer's) is waited for. Two nodes that call it for each other at once end with
            /// one connection: the one dialled by the lower listening address. Send to, and
            /// call, the address it returns. Fails with the dial's error, or `TimedOut` after
            /// twice the connection and handshake timeouts.
            pub async fn connect_if_needed(
                &self,
                addr: #rt::SocketAddr,
            ) -> #rt::io::Result<#rt::SocketAddr> {
                #rt::connect_if_needed(#rt::Pea2Pea::node(self), addr, #handshake_ms).await
            }

            #sending
            #call
        }
    }
}

/// The `enable_*` calls of the declared protocols, in the engine's order.
fn enables(model: &Model, rt: &TokenStream) -> Vec<TokenStream> {
    let mut enables = Vec::new();
    if model.handshake != HandshakeKind::None {
        enables.push(quote!(#rt::Handshake::enable_handshake(self).await;));
    }
    if model.inbound.is_some() {
        enables.push(quote!(#rt::Reading::enable_reading(self).await;));
    }
    if model.outbound.is_some() {
        enables.push(quote!(#rt::Writing::enable_writing(self).await;));
    }
    if model.on_connect.is_some() {
        enables.push(quote!(#rt::OnConnect::enable_on_connect(self).await;));
    }
    if model.on_disconnect.is_some() {
        enables.push(quote!(#rt::OnDisconnect::enable_on_disconnect(self).await;));
    }
    enables
}

/// `send`, `send_fast`, `send_to_many` and `send_to_many_with`, for a node that writes.
fn sends(model: &Model, rt: &TokenStream) -> Option<TokenStream> {
    let written = model.outbound.as_ref()?;
    let out = checked(written, rt);
    // `&` too carries the type's span: the reference type's span is where it would be reported
    let out_ref = quote_spanned!(written.span()=> &#out);
    let to_many = match model.framing {
        CheckedFraming::Custom(_) => quote!(#rt::send_to_many_cloned::<Self, #out>),
        CheckedFraming::LengthDelimited { .. } => {
            let send = through(written, rt, "send_to_many_encoded");
            quote!(#send::<Self>)
        }
    };
    let how = match model.framing {
        CheckedFraming::Custom(_) => {
            "Queues a clone of `message` for each of `addrs` (the protocol's codec encodes each one)"
        }
        CheckedFraming::LengthDelimited { .. } => {
            "Encodes `message` once and queues the same bytes for each of `addrs`"
        }
    };
    let to_many_doc = format!(
        "{how}, first for every peer whose outbound queue has room, then for the others at the same time, waiting for room in each (`WhenFull::Wait`, for at most the write timeout): a peer that keeps up never loses a message, and the slowest one sets the pace. It does not wait for the writes. Returns what happened at each peer (`SendReport`: queued, or failed with `NotConnected`, `TimedOut`, the connection's failure, or the encoder's error). `send_to_many_with` chooses another policy for full peers."
    );
    let to_many_with_doc = format!(
        "{how}, and treats each peer whose outbound queue is full as `when_full` says: wait for room (`WhenFull::Wait`, as `send_to_many`), skip it for this message (`WhenFull::Drop`, counted in `dsl::messages_dropped`), or disconnect it (`WhenFull::Disconnect`, counted in `dsl::slow_peers_disconnected`). The message is queued for the peers with room first, so a full peer never delays them. Returns what happened at each peer."
    );
    Some(quote! {
        /// Queues `message` for the peer at `addr`, waiting for room if its outbound queue
        /// is full, then waits until it is written to the socket (not until the peer has
        /// read it). It fails with `NotConnected` (no connection to `addr`), the encoder's
        /// error, `TimedOut` (no room in the queue, or the write not done, within the
        /// protocol's write timeout: the peer stopped reading), `ConnectionAborted` or
        /// `BrokenPipe` (the connection closed before the message was written), the write's
        /// own error, or the node's `ShuttingDown` error.
        #[must_use = "the message is not sent unless this future is awaited"]
        pub fn send(
            &self,
            addr: #rt::SocketAddr,
            message: #out,
        ) -> impl #rt::Future<Output = #rt::io::Result<()>> + '_ {
            #rt::send(self, addr, #rt::From::from(message))
        }

        /// Queues `message` for the peer at `addr` and returns at once, without waiting for
        /// room or for the write. It fails with `QuotaExceeded` when the peer's outbound
        /// queue is full (the message is not sent; retry later or use `send`), with
        /// `NotConnected`, with `BrokenPipe` when the connection is closing, or with the
        /// encoder's error. A queued message that is never written ends its connection.
        pub fn send_fast(
            &self,
            addr: #rt::SocketAddr,
            message: #out,
        ) -> #rt::io::Result<()> {
            #rt::send_fast(self, addr, #rt::From::from(message))
        }

        #[doc = #to_many_doc]
        pub async fn send_to_many(
            &self,
            addrs: impl #rt::IntoIterator<Item = #rt::SocketAddr>,
            message: #out_ref,
        ) -> #rt::SendReport {
            #to_many(self, addrs, message, #rt::WhenFull::Wait).await
        }

        #[doc = #to_many_with_doc]
        pub async fn send_to_many_with(
            &self,
            addrs: impl #rt::IntoIterator<Item = #rt::SocketAddr>,
            message: #out_ref,
            when_full: #rt::WhenFull,
        ) -> #rt::SendReport {
            #to_many(self, addrs, message, when_full).await
        }
    })
}

/// `call`, for a node with `rpc` lines.
fn call(model: &Model, rt: &TokenStream) -> Option<TokenStream> {
    if model.rpcs.is_empty() {
        return None;
    }
    let timeout = model.call_timeout_ms;
    let max = usize_lit(model.max_calls);
    let doc = format!(
        "Sends `request` to the peer at `addr` (waiting for room in its outbound queue if it is full) and waits for its response, for at most {timeout} ms in all. Fails with `TimedOut` then, with `NotConnected` if there is no connection to `addr`, with `ConnectionAborted` as soon as that connection closes before the answer, with `QuotaExceeded` when {} calls to that peer are already in flight, with the peer's reason when it cannot answer (`Other`: no handler for the request, or \"busy\" when it is serving its `max_calls` of this node's calls), or with `InvalidData` when the answer does not decode. The peer serves calls side by side, so its answers may come in any order.",
        model.max_calls
    );
    Some(quote! {
        #[doc = #doc]
        pub fn call<__Pea2peaRequest>(
            &self,
            addr: #rt::SocketAddr,
            request: __Pea2peaRequest,
        ) -> #rt::Call<'_, Self, __Pea2peaRequest> {
            #rt::Call::new(self, addr, request, #timeout, #max)
        }
    })
}

/// A node that writes nothing still gets the send methods, each bound by a trait without
/// implementations, so that using one is a single error saying to declare `writes`.
fn undeclared_sends(rt: &TokenStream) -> TokenStream {
    let bound = quote!(#rt::NoWritesDeclared<Self>);
    quote! {
        /// Not available: the protocol declares no messages to write (see the compile error).
        pub fn send<__Pea2peaMessage: #bound>(
            &self,
            _addr: #rt::SocketAddr,
            message: __Pea2peaMessage,
        ) -> #rt::Ready<#rt::io::Result<()>> {
            <__Pea2peaMessage as #bound>::undeclared(&message)
        }

        /// Not available: the protocol declares no messages to write (see the compile error).
        pub fn send_fast<__Pea2peaMessage: #bound>(
            &self,
            _addr: #rt::SocketAddr,
            message: __Pea2peaMessage,
        ) -> #rt::io::Result<()> {
            <__Pea2peaMessage as #bound>::undeclared(&message)
        }

        /// Not available: the protocol declares no messages to write (see the compile error).
        pub fn send_to_many<__Pea2peaMessage: #bound>(
            &self,
            _addrs: impl #rt::IntoIterator<Item = #rt::SocketAddr>,
            message: &__Pea2peaMessage,
        ) -> #rt::Ready<#rt::SendReport> {
            <__Pea2peaMessage as #bound>::undeclared(message)
        }

        /// Not available: the protocol declares no messages to write (see the compile error).
        pub fn send_to_many_with<__Pea2peaMessage: #bound>(
            &self,
            _addrs: impl #rt::IntoIterator<Item = #rt::SocketAddr>,
            message: &__Pea2peaMessage,
            _when_full: #rt::WhenFull,
        ) -> #rt::Ready<#rt::SendReport> {
            <__Pea2peaMessage as #bound>::undeclared(message)
        }
    }
}

/// A node without `rpc` lines still gets a `call`, bound by a trait without implementations,
/// so that using it is a single error saying to declare `rpc Request -> Response`. Its output
/// type is left to inference, so the error is not followed by type mismatches.
fn undeclared_call(rt: &TokenStream) -> TokenStream {
    quote! {
        /// Not available: the protocol declares no `rpc` line (see the compile error).
        pub fn call<__Pea2peaRequest: #rt::NoRpcDeclared<Self>, __Pea2peaResponse>(
            &self,
            _addr: #rt::SocketAddr,
            request: __Pea2peaRequest,
        ) -> #rt::Ready<#rt::io::Result<__Pea2peaResponse>> {
            <__Pea2peaRequest as #rt::NoRpcDeclared<Self>>::undeclared(&request)
        }
    }
}
