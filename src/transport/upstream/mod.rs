//! The one way a request reaches an application: [`Upstream::send`].
//!
//! It picks the path: a request without a body (nearly every page load),
//! or with a small one the own loop read whole, goes over a raw connection
//! ([`raw`], in the task that serves the client); one whose body is still
//! streaming in, or a WebSocket upgrade, goes through hyper's client. `[server] fast_path = false` sends everything through hyper.
//! Both paths share the worker's [`pool`] and its one reuse rule (a
//! connection with any byte readable after its answer is never reused),
//! and both answers are cleaned by one function ([`clean_answer`]): an
//! answer with both `Content-Length` and `Transfer-Encoding` is 502, the
//! status line is HTTP/1.1 whatever the upstream spoke, hop-by-hop headers
//! and the gateway's own cookies never reach the client. Every failure is
//! one [`UpstreamError`] whose [`Fault`] decides 502 or 504 in one place
//! ([`crate::error`]).
//!
//! An answer whose body breaks off (a reset, a close, garbled framing) is
//! logged as a warning naming the route ([`CutShort`]): its access-log
//! line, written when the head went out, says 200.
//!
//! A route with several addresses or an `https://` upstream is a
//! [`To::Set`]: [`balance`] picks the address, TLS is [`tls`], and the
//! request goes over hyper's client (a refused connection hands the
//! request back, and it goes once to another address). A single plain
//! address ([`To::One`]) takes the paths above unchanged.
//!
//! Which request headers go upstream is policy, not transport: the caller
//! hands [`crate::outgoing::Added`] in the [`Outgoing`], and the head is
//! written from it here, once, in the form the chosen path needs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::uri::{Authority, PathAndQuery};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;

use crate::body::{self, Body, RequestBody};
use crate::config::Backends;
use crate::headers;
use crate::outgoing::{self, Added};
use crate::routes::Route;

pub mod balance;
pub mod health;
pub mod pool;
pub mod raw;
pub mod tls;

use pool::{Pool, SendError};

/// The worker's way to the applications: a handle on its pool.
#[derive(Clone)]
pub struct Upstream {
    pool: Arc<Pool>,
}

/// Resolves when the session behind a signed-in WebSocket ends (logout,
/// revocation, expiry): its tunnel is closed then.
pub type SessionEnds = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where a request goes.
#[derive(Clone, Copy)]
pub enum To<'a> {
    /// One plain `http://` address: nearly all traffic.
    One(&'a Authority),
    /// An `https://` upstream or several addresses ([`balance`]).
    Set(&'a Backends),
}

/// One request on its way to an application.
pub struct Outgoing<'a> {
    /// The client's request head (method, headers, its URI as it came).
    pub head: http::request::Parts,
    pub body: RequestBody,
    pub to: To<'a>,
    /// `preserve_host = false` on a [`To::Set`]: `Host` is the chosen
    /// address's own.
    pub host_from_target: bool,
    /// The canonical target, sent in origin form.
    pub path_and_query: PathAndQuery,
    /// Which client headers pass and what the gateway adds.
    pub added: Added<'a>,
    /// The wait for the answer's head (connecting included).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// The longest wait for the next bytes of the request body.
    pub body_read_timeout: Duration,
    /// `Some` for a WebSocket upgrade: when the tunnel must close.
    pub tunnel: Option<Option<SessionEnds>>,
    /// The route, for the warning about an answer cut short.
    pub route: &'a Arc<Route>,
}

/// What went wrong on the way to the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// No connection, or no answer's head, in time: 504.
    Timeout,
    /// Refused, reset, closed or garbled: 502.
    Failed,
    /// The client's body stalled past `body_read_timeout`: 408.
    ClientBodyStalled,
    /// The client's body was malformed or cut off: 400.
    ClientBodyBroken,
}

/// Why no answer came from the application.
#[derive(Debug)]
pub struct UpstreamError {
    pub fault: Fault,
    /// For the log line; never shown to the client.
    pub detail: String,
}

impl UpstreamError {
    fn new(fault: Fault, detail: impl Into<String>) -> UpstreamError {
        UpstreamError {
            fault,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl Upstream {
    pub fn new(fast_path: bool) -> Upstream {
        Upstream {
            pool: Arc::new(Pool::new(fast_path)),
        }
    }

    /// Sends `out` and returns the answer to give the client.
    pub async fn send(&self, out: Outgoing<'_>) -> Result<Response<Body>, UpstreamError> {
        let Outgoing {
            head: mut parts,
            body: incoming,
            to,
            host_from_target,
            path_and_query,
            mut added,
            timeout,
            connect_timeout,
            body_read_timeout,
            tunnel,
            route,
        } = out;
        let websocket = tunnel.is_some();
        added.websocket = websocket;
        let client_upgrade = if websocket {
            let mut probe = Request::from_parts(parts, ());
            let on = hyper::upgrade::on(&mut probe);
            parts = probe.into_parts().0;
            Some(on)
        } else {
            None
        };
        let gateway_cookies = added.gateway_cookies;
        let authority = match to {
            To::One(authority) => authority,
            To::Set(set) => {
                let attempt = Attempt {
                    parts,
                    body: incoming,
                    path_and_query,
                    added,
                    host_from_target,
                    timeout,
                    connect_timeout,
                    body_read_timeout,
                    websocket,
                };
                // Boxed: only routes with several or https upstreams take
                // this way, and the one-address future stays as small.
                let (resp, streamed, raw) =
                    Box::pin(self.send_balanced(set, route, attempt)).await?;
                return answer(
                    resp,
                    streamed,
                    raw,
                    gateway_cookies,
                    websocket,
                    client_upgrade,
                    tunnel,
                    route,
                );
            }
        };
        // The raw client takes the own loop's bodies: a small one here
        // whole goes out in the head's write, a streamed one after it.
        let raw = self.pool.fast_path()
            && !websocket
            && (incoming.whole().is_some() || incoming.is_streamed());
        // The route timeout bounds the wait for the answer's head: the raw
        // connection keeps a timer of its own for that (see `raw::RawConn`).
        let sent = if raw {
            // The head is written straight from the client's headers: no
            // second header map.
            let mut head = outgoing::head(
                &parts.method,
                path_and_query.as_str(),
                &parts.headers,
                parts.uri.authority(),
                &added,
            );
            // Its `Content-Length` is the client's, which the own loop
            // checked against these bytes; no rule may change it.
            let streamed = match incoming.whole() {
                Some(whole) => {
                    head.extend_from_slice(whole);
                    None
                }
                None => Some(body::client_body(incoming, body_read_timeout)),
            };
            self.pool
                .send_direct(
                    authority,
                    connect_timeout,
                    timeout,
                    &head,
                    &parts.method,
                    streamed,
                )
                .await
        } else {
            parts.headers = outgoing::map(&parts.headers, parts.uri.authority(), &added);
            // Origin-form, as HTTP/1.1 sends it to a server (the host is in Host).
            parts.uri = Uri::from(path_and_query);
            parts.version = Version::HTTP_11;
            let req = Request::from_parts(parts, body::client_body(incoming, body_read_timeout));
            // Boxed: hyper's client future is large, and only requests with a
            // body or an upgrade take this way.
            let sending = Box::pin(self.pool.send(authority, connect_timeout, req, websocket));
            match tokio::time::timeout(timeout, sending).await {
                Err(_) => return Err(UpstreamError::new(Fault::Timeout, "no answer in time")),
                Ok(sent) => sent.map(|resp| {
                    let streamed = !hyper::body::Body::is_end_stream(resp.body());
                    (resp, streamed)
                }),
            }
        };
        let (resp, streamed) = sent.map_err(classify)?;
        answer(
            resp,
            streamed,
            raw,
            gateway_cookies,
            websocket,
            client_upgrade,
            tunnel,
            route,
        )
    }
}

/// The answer's head as the client gets it: cleaned once, a WebSocket
/// tunnel spliced after a 101, a streamed body watched for a cut.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn answer(
    mut resp: Response<Body>,
    streamed: bool,
    raw: bool,
    gateway_cookies: &[&str],
    websocket: bool,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    tunnel: Option<Option<SessionEnds>>,
    route: &Arc<Route>,
) -> Result<Response<Body>, UpstreamError> {
    clean_answer(&mut resp, gateway_cookies, websocket, raw)?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let (Some(client_upgrade), Some(session_ends)) = (client_upgrade, tunnel) else {
            return Err(UpstreamError::new(
                Fault::Failed,
                "upgrade that was not asked for",
            ));
        };
        let (rparts, rbody) = resp.into_parts();
        let mut probe = Response::from_parts(rparts, rbody);
        let upstream_upgrade = hyper::upgrade::on(&mut probe);
        let (rparts, _) = probe.into_parts();
        tokio::spawn(splice(client_upgrade, upstream_upgrade, session_ends));
        return Ok(Response::from_parts(rparts, body::empty()));
    }
    if !streamed {
        return Ok(resp);
    }
    Ok(resp.map(|inner| {
        http_body_util::BodyExt::boxed(CutShort {
            inner,
            route: Arc::clone(route),
            failed: None,
        })
    }))
}

/// A request for [`Upstream::send_balanced`], as [`Outgoing`] had it.
struct Attempt<'a> {
    parts: http::request::Parts,
    body: RequestBody,
    path_and_query: PathAndQuery,
    added: Added<'a>,
    host_from_target: bool,
    timeout: Duration,
    connect_timeout: Duration,
    body_read_timeout: Duration,
    websocket: bool,
}

impl Upstream {
    /// Sends to one of `set`'s addresses ([`balance::pick`]). A connection
    /// refused, or reset before any byte of an answer, takes the address
    /// out of rotation; a request that met a refused connection (so was
    /// not sent) goes once to another address. Returns the
    /// answer, whether its body is still to be read, and whether it came
    /// over the raw client (never: see below).
    async fn send_balanced(
        &self,
        set: &Backends,
        route: &Route,
        a: Attempt<'_>,
    ) -> Result<(Response<Body>, bool, bool), UpstreamError> {
        let Attempt {
            mut parts,
            body: incoming,
            path_and_query,
            added,
            host_from_target,
            timeout,
            connect_timeout,
            body_read_timeout,
            websocket,
        } = a;
        // Over hyper's client, body or not: the raw client's
        // `send_direct` keeps one caller, the one-address path, where it is
        // inlined (a second caller cost every request a copy of its
        // future: +300 instructions in scripts/callgrind.sh).
        let deadline = tokio::time::Instant::now() + timeout;
        let idempotent = raw::idempotent(&parts.method);
        let all_down = || {
            UpstreamError::new(
                Fault::Failed,
                "no address of the route is in rotation (all refused or failed their health checks)",
            )
        };
        let mut at = balance::pick(set, None).ok_or_else(all_down)?;
        // One more address after a refused connection.
        let mut again = true;
        parts.headers = outgoing::map(&parts.headers, parts.uri.authority(), &added);
        parts.uri = Uri::from(path_and_query);
        parts.version = Version::HTTP_11;
        let mut req = Request::from_parts(parts, body::client_body(incoming, body_read_timeout));
        loop {
            let t = &set.targets[at];
            if host_from_target {
                if let Ok(v) = http::HeaderValue::from_str(t.authority.as_str()) {
                    req.headers_mut().insert(http::header::HOST, v);
                }
            }
            let tls = match (&set.tls, &t.server_name) {
                (Some(tls), Some(name)) => Some(tls::TlsTo {
                    config: &tls.config,
                    name,
                }),
                _ => None,
            };
            let dest = pool::Dest {
                authority: &t.authority,
                tls,
            };
            let flight = balance::Flight::new(t);
            let sending = Box::pin(self.pool.send_to(dest, connect_timeout, req, websocket));
            let sent = tokio::time::timeout_at(deadline, sending).await;
            drop(flight);
            let (e, back) = match sent {
                Err(_) => return Err(UpstreamError::new(Fault::Timeout, "no answer in time")),
                Ok(Ok(resp)) => {
                    let streamed = !hyper::body::Body::is_end_stream(resp.body());
                    return Ok((resp, streamed, false));
                }
                Ok(Err(failed)) => failed,
            };
            match (
                back,
                self.after_failure(set, route, at, &e, again, idempotent),
            ) {
                (Some(back), Some(next)) => {
                    req = back;
                    at = next;
                    again = false;
                }
                _ => return Err(classify(e)),
            }
        }
    }

    /// What a failed attempt on address `at` means: out of rotation if it
    /// refused or reset; the next address to try, if the request may go
    /// again.
    fn after_failure(
        &self,
        set: &Backends,
        route: &Route,
        at: usize,
        e: &SendError,
        again: bool,
        idempotent: bool,
    ) -> Option<usize> {
        let (out, unsent) = balance::refused(e);
        if out && set.targets.len() > 1 {
            let t = &set.targets[at];
            if balance::take_out(set, at) {
                tracing::warn!(
                    route = %route.name(),
                    upstream = %t.authority,
                    error = %DisplaySend(e),
                    "upstream refused or reset a connection: out of rotation"
                );
            }
        }
        if !(again && out && (unsent || idempotent)) {
            return None;
        }
        balance::pick(set, Some(at))
    }
}

/// A [`SendError`] in words, for a log line.
struct DisplaySend<'a>(&'a SendError);

impl std::fmt::Display for DisplaySend<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            SendError::ConnectTimeout => f.write_str("connect timed out"),
            SendError::Connect(e) | SendError::Tls(e) => write!(f, "{e}"),
            SendError::Http(e) => write!(f, "{e}"),
            SendError::Exchange(e) => write!(f, "{e}"),
        }
    }
}

/// The one cleaning of an answer before it goes to the client. The raw
/// client has already refused both framing headers, answered HTTP/1.1 and
/// left out the hop-by-hop headers while it read the head ([`raw`]); hyper's
/// answers get the same here.
fn clean_answer(
    resp: &mut Response<Body>,
    gateway_cookies: &[&str],
    websocket: bool,
    raw: bool,
) -> Result<(), UpstreamError> {
    if !raw {
        // RFC 9112 §6.3: both framing headers are an error; the client
        // talks HTTP/1.1 to us, whatever the upstream spoke.
        let h = resp.headers();
        if h.contains_key(http::header::CONTENT_LENGTH)
            && h.contains_key(http::header::TRANSFER_ENCODING)
        {
            return Err(UpstreamError::new(
                Fault::Failed,
                "malformed answer: both Content-Length and Transfer-Encoding",
            ));
        }
        *resp.version_mut() = Version::HTTP_11;
        headers::remove_hop_by_hop(resp.headers_mut(), websocket);
    }
    crate::cookie_header::strip_upstream_set_cookie(resp.headers_mut(), gateway_cookies);
    Ok(())
}

/// Copies a WebSocket tunnel both ways until either side closes or the
/// session ends.
async fn splice(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    session_ends: Option<SessionEnds>,
) {
    let (Ok(client_io), Ok(upstream_io)) = tokio::join!(client, upstream) else {
        tracing::debug!("websocket upgrade did not complete");
        return;
    };
    let mut a = TokioIo::new(client_io);
    let mut b = TokioIo::new(upstream_io);
    let ends = async move {
        match session_ends {
            Some(ends) => ends.await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut a, &mut b) => {}
        _ = ends => tracing::debug!("websocket closed: the session ended"),
    }
}

fn classify(e: SendError) -> UpstreamError {
    use std::error::Error as _;
    let e = match e {
        SendError::ConnectTimeout => {
            return UpstreamError::new(Fault::Timeout, "connect timed out")
        }
        SendError::Connect(e) => {
            return UpstreamError::new(Fault::Failed, format!("connect failed: {e}"))
        }
        SendError::Tls(e) => {
            return UpstreamError::new(
                Fault::Failed,
                format!("TLS handshake with the upstream failed: {e}"),
            )
        }
        SendError::Exchange(raw::ExchangeError::TimedOut) => {
            return UpstreamError::new(Fault::Timeout, "no answer in time")
        }
        SendError::Exchange(raw::ExchangeError::Io { error, .. })
            if error.kind() == std::io::ErrorKind::TimedOut =>
        {
            return UpstreamError::new(Fault::Timeout, format!("{error}"))
        }
        SendError::Exchange(raw::ExchangeError::ClientBody(e)) => {
            return client_body_fault(&*e)
                .unwrap_or_else(|| UpstreamError::new(Fault::ClientBodyBroken, format!("{e}")))
        }
        SendError::Exchange(e) => {
            return UpstreamError::new(
                Fault::Failed,
                format!("connection closed, reset or garbled: {e}"),
            )
        }
        SendError::Http(e) => e,
    };
    if let Some(fault) = client_body_fault(&e) {
        return fault;
    }
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return UpstreamError::new(Fault::Timeout, format!("{e}"));
            }
        }
        source = s.source();
    }
    UpstreamError::new(Fault::Failed, format!("connection closed or reset: {e}"))
}

/// The fault when `e` or an error under it is the client's body's: it
/// stalled ([`body::ClientBodyTimeout`]) or broke off
/// ([`body::ClientBodyError`]).
fn client_body_fault(e: &(dyn std::error::Error + 'static)) -> Option<UpstreamError> {
    let mut source = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<body::ClientBodyTimeout>().is_some() {
            return Some(UpstreamError::new(Fault::ClientBodyStalled, format!("{e}")));
        }
        if s.downcast_ref::<body::ClientBodyError>().is_some() {
            return Some(UpstreamError::new(Fault::ClientBodyBroken, format!("{e}")));
        }
        source = s.source();
    }
    None
}

/// An answer's body on its way to the client. A failure in its middle
/// (the upstream reset or closed the connection, or broke the framing)
/// cuts the client's answer short: logged here as what it is, since the
/// access-log line already went out with the status of the head.
///
/// The error reaches the server one poll late: first the body says
/// "not yet" (and asks to be polled again), so that hyper's server writes
/// out the head and the bytes it has framed so far, as the own loop does;
/// given at once, the error made hyper drop them unwritten and the client
/// got nothing at all.
struct CutShort {
    inner: Body,
    route: Arc<Route>,
    /// The upstream's error, held for one poll.
    failed: Option<body::BoxError>,
}

impl hyper::body::Body for CutShort {
    type Data = bytes::Bytes;
    type Error = body::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, body::BoxError>>> {
        if let Some(e) = self.failed.take() {
            return std::task::Poll::Ready(Some(Err(e)));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            std::task::Poll::Ready(Some(Err(e))) => {
                tracing::warn!(
                    route = %self.route.name(),
                    error = %e,
                    "the upstream broke off its answer in the middle of the body (reset, close or bad framing): the client's answer was cut short"
                );
                self.failed = Some(e);
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
            polled => polled,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
