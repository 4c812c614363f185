//! Everything that touches bytes on a socket, and nothing else.
//!
//! - [`downstream`]: the listeners, the TLS handshake, the own HTTP/1.1
//!   loop for body-less requests and the hand-over to hyper (with the bytes
//!   already read), the CL+TE watch, shutdown.
//! - [`upstream`]: [`Upstream::send`], the one way a request reaches an
//!   application: it picks the raw client or hyper's, owns the worker's
//!   pool and its one reuse rule, cleans the answer once, and reports one
//!   [`UpstreamError`].
//! - [`codec`]: what both directions share on the wire (head spans,
//!   `Date`).
//! - [`admin`]: the probes' own listener (`[admin] listen`).
//!
//! The hub ([`crate::app`]) sees only a [`ConnInfo`] and an [`Upstream`]
//! handle, through [`Handler`]: it never touches a socket, a pool or a
//! framing flag. The transport never decides who may pass.
//!
//! `[server] fast_path = false` turns the own loop and the raw client off:
//! hyper then serves and sends every request.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response};

use crate::body::{Body, RequestBody};
use crate::config::Limits;

pub mod admin;
pub mod codec;
pub mod downstream;
pub mod upstream;

pub use downstream::{run_workers, serve, tls, Listeners, StdListeners};
pub use upstream::{Fault, Outgoing, SessionEnds, To, Upstream, UpstreamError};

/// How one connection reached the gateway (axum's `ConnectInfo`).
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
}

/// Why the transport answers a request without handing it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// An HTTP/1 request with both `Content-Length` and
    /// `Transfer-Encoding` (RFC 9112 §6.3; see [`downstream::framing`]).
    AmbiguousFraming,
}

/// What the transport serves: the gateway's request hub.
pub trait Handler: Send + Sync + 'static {
    /// The answer to one request. `upstream` is the worker's way to the
    /// applications.
    fn handle(
        self: &Arc<Self>,
        req: Request<RequestBody>,
        conn: &ConnInfo,
        upstream: &Upstream,
    ) -> impl Future<Output = Response<Body>> + Send;

    /// The answer to a request the transport refuses itself.
    fn refuse(&self, req: &Request<RequestBody>, conn: &ConnInfo, why: Refusal) -> Response<Body>;

    /// Connection settings, read once at start.
    fn limits(&self) -> Limits;
}
