//! Upstream HTTP/1.1 connections of one worker thread: connecting (with the
//! route's connect timeout), sending one request on a connection, and
//! keeping idle keep-alive connections for the next request. A request
//! without a body goes over a raw connection with [`super::raw`] in the
//! task that serves the client; one with a body (or a WebSocket upgrade)
//! over a connection driven by hyper's client.
//!
//! A connection goes back to the pool only when the upstream's answer has
//! been read to its end (the body wrapper [`Pooled`] does that), so a
//! connection in the pool never has a response in flight. An answer that
//! is dropped half-read closes its connection instead. Idle connections
//! are reused newest first and dropped after [`IDLE_TIMEOUT`]; a request
//! that a closing connection never took is sent again on a fresh one.
//!
//! A connection on which any byte arrived after its answer (or which the
//! upstream closed) is never reused: such bytes would be read as the next
//! request's answer, and that request may be another client's. A raw
//! connection is checked with one peek at its socket when it is put back
//! and again when it is taken ([`h1::quiet`]). On hyper's path the task
//! driving the connection reads it while idle: a byte left after an answer
//! or arriving later is an error to hyper ("unexpected message"), which
//! closes the connection at once, and `SendRequest::is_closed` keeps it
//! out of the pool; as that task may not have run yet when the connection
//! is taken, the pool also peeks at its socket, through a duplicate of the
//! descriptor, when it is put back and taken, as for a raw one.
//! `tests/upstream_reuse.rs` checks both paths.
//!
//! An `https://` upstream's connections are hyper's, over TLS
//! ([`super::tls`]); idle lists are keyed by the address and the route's
//! TLS client configuration (by identity), so a connection verified for
//! one route is never handed to another with other trust. The reuse rule
//! is the same: the peek is at the TCP socket, where any TLS record that
//! arrives after an answer also counts as a byte nobody asked for.
//!
//! Each worker thread (one current-thread runtime per core) has its own
//! pool, so a request, its upstream connection and the task driving that
//! connection stay on one thread; the lock is never contended.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::Authority;
use http::{Method, Request, Response};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::raw::{self as h1, RawConn};
use super::tls::TlsTo;
use crate::body::{Body, BoxError};

/// How long an idle upstream connection is kept.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per upstream.
const MAX_IDLE: usize = 1024;

/// Why no answer came from the upstream.
#[derive(Debug)]
pub enum SendError {
    /// No connection within the connect timeout.
    ConnectTimeout,
    /// The connection was refused (or could not be made).
    Connect(std::io::Error),
    /// The TLS handshake failed: most often the upstream's certificate
    /// did not verify.
    Tls(std::io::Error),
    /// The connection broke while the request or the answer's head was on
    /// its way.
    Http(hyper::Error),
    /// The same, on a raw connection, or the answer's head was not HTTP.
    Exchange(h1::ExchangeError),
}

/// Where a connection goes: an address, and TLS to it for an `https://`
/// upstream ([`super::tls`]).
#[derive(Clone, Copy)]
pub struct Dest<'a> {
    pub authority: &'a Authority,
    pub tls: Option<TlsTo<'a>>,
}

/// The key of a list of idle connections: the address, and the TLS client
/// configuration they were made with (compared by identity: a connection
/// verified with one route's CA is never handed to a route with another).
struct Key {
    authority: Authority,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Key {
    fn is(&self, upstream: &Authority, tls: Option<&Arc<rustls::ClientConfig>>) -> bool {
        same(&self.authority, upstream)
            && match (&self.tls, tls) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

/// Idle connections of one kind, by upstream (a short list: a gateway has
/// a handful of upstreams, and comparing two authorities is cheaper than
/// hashing one), oldest first.
struct IdleList<T> {
    lists: Mutex<Vec<(Key, Vec<Idle<T>>)>>,
}

/// An idle connection and since when it waits.
type Idle<T> = (T, Instant);

impl<T> Default for IdleList<T> {
    fn default() -> Self {
        IdleList {
            lists: Mutex::new(Vec::new()),
        }
    }
}

/// A connection that can tell it has closed while it waited.
trait Reusable {
    fn is_closed(&self) -> bool;
}

/// A connection driven by hyper's client, with a second handle on its
/// socket so that the pool can look at it as it does at a raw one.
struct HyperConn {
    sender: SendRequest<Body>,
    /// A duplicate of the socket's descriptor (it shares the socket and its
    /// non-blocking flag). hyper notices bytes that arrive on an idle
    /// connection only when its task next runs, and on a busy worker that
    /// can be after the connection is taken for another request; a peek
    /// sees them at once. `None` when the descriptor could not be
    /// duplicated: such a connection is never reused.
    probe: Option<socket2::Socket>,
}

impl Reusable for HyperConn {
    fn is_closed(&self) -> bool {
        self.sender.is_closed() || !self.probe.as_ref().is_some_and(h1::quiet)
    }
}

impl Reusable for RawConn {
    /// Closed by the upstream, or holding bytes nobody asked for (the rest
    /// of an answer longer than its framing said): checked on the socket
    /// when the connection is taken ([`h1::quiet`]).
    fn is_closed(&self) -> bool {
        !self.is_quiet()
    }
}

/// Whether two upstream authorities are the same: byte for byte (the pool
/// is always asked with the route's own value), else as `http` compares
/// them (case-insensitively).
fn same(a: &Authority, b: &Authority) -> bool {
    a.as_str() == b.as_str() || a == b
}

impl<T: Reusable> IdleList<T> {
    /// The lists, even after a panic elsewhere held the lock (a poisoned
    /// list is still a valid list of open or closed connections).
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Key, Vec<Idle<T>>)>> {
        match self.lists.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The newest idle connection to `upstream` (made with `tls`) that is
    /// still usable.
    fn take(&self, upstream: &Authority, tls: Option<&Arc<rustls::ClientConfig>>) -> Option<T> {
        let mut lists = self.lock();
        let (_, list) = lists.iter_mut().find(|(k, _)| k.is(upstream, tls))?;
        let now = Instant::now();
        while let Some((c, since)) = list.pop() {
            if !c.is_closed() && now.duration_since(since) < IDLE_TIMEOUT {
                return Some(c);
            }
        }
        None
    }

    fn put(&self, upstream: &Authority, tls: Option<&Arc<rustls::ClientConfig>>, conn: T) {
        if conn.is_closed() {
            return;
        }
        let mut lists = self.lock();
        let now = Instant::now();
        let i = match lists.iter().position(|(k, _)| k.is(upstream, tls)) {
            Some(i) => i,
            None => {
                let key = Key {
                    authority: upstream.clone(),
                    tls: tls.cloned(),
                };
                lists.push((key, Vec::new()));
                lists.len() - 1
            }
        };
        let list = &mut lists[i].1;
        // The oldest are first: drop those that waited too long, and one
        // more when the list is full.
        let stale = list
            .iter()
            .take_while(|(_, since)| now.duration_since(*since) >= IDLE_TIMEOUT)
            .count();
        let over = (list.len() - stale + 1).saturating_sub(MAX_IDLE);
        list.drain(..stale + over);
        list.push((conn, now));
    }
}

/// The idle upstream connections of one worker.
pub struct Pool {
    hyper: IdleList<HyperConn>,
    raw: IdleList<RawConn>,
    /// `[server] fast_path`: body-less requests may go over raw connections.
    fast_path: bool,
}

impl Default for Pool {
    fn default() -> Pool {
        Pool::new(true)
    }
}

impl Pool {
    pub fn new(fast_path: bool) -> Pool {
        Pool {
            hyper: IdleList::default(),
            raw: IdleList::default(),
            fast_path,
        }
    }

    /// Whether body-less requests go over raw connections ([`super::raw`]).
    pub fn fast_path(&self) -> bool {
        self.fast_path
    }

    /// Sends `req` (origin-form URI, `Host` set) to `upstream` and returns
    /// its answer, whose body gives the connection back when read to the
    /// end. `upgrades` keeps the connection open for a WebSocket tunnel
    /// after a 101 (such a connection never returns to the pool).
    pub async fn send(
        self: &Arc<Self>,
        upstream: &Authority,
        connect_timeout: Duration,
        req: Request<Body>,
        upgrades: bool,
    ) -> Result<Response<Body>, SendError> {
        let dest = Dest {
            authority: upstream,
            tls: None,
        };
        self.send_to(dest, connect_timeout, req, upgrades)
            .await
            .map_err(|(e, _)| e)
    }

    /// [`Pool::send`] to `dest` (TLS too); when no connection could be
    /// made, the request comes back with the error, unsent, to go to
    /// another address.
    pub async fn send_to(
        self: &Arc<Self>,
        dest: Dest<'_>,
        connect_timeout: Duration,
        mut req: Request<Body>,
        upgrades: bool,
    ) -> Result<Response<Body>, (SendError, Option<Request<Body>>)> {
        let upstream = dest.authority;
        let tls = dest.tls.map(|t| t.config);
        // A pooled connection may have closed just now; the request it
        // never took goes once more, on a fresh connection.
        let mut fresh = upgrades;
        loop {
            let mut conn = match (fresh, self.hyper.take(upstream, tls)) {
                (false, Some(conn)) => conn,
                _ => {
                    fresh = true;
                    match connect(dest, connect_timeout, upgrades).await {
                        Ok(c) => c,
                        Err(e) => return Err((e, Some(req))),
                    }
                }
            };
            match conn.sender.try_send_request(req).await {
                Ok(resp) => return Ok(self.wrap(dest, conn, resp, upgrades)),
                Err(mut e) => match e.take_message() {
                    Some(again) if !fresh => {
                        req = again;
                        fresh = true;
                    }
                    _ => return Err((SendError::Http(e.into_error()), None)),
                },
            }
        }
    }

    /// Sends the head of a request (see [`crate::outgoing::head`]; a whole
    /// body already in it), and `body` after it when the body is streamed,
    /// over a raw connection ([`super::raw`]). A pooled connection is only
    /// taken when nothing is readable on it (see [`h1::quiet`]); one the
    /// upstream closes after that check costs nothing to a request without
    /// a streamed body: an idempotent one goes again on a fresh connection
    /// (a streamed body cannot be sent twice).
    /// The answer's head must come within `timeout` (connecting
    /// and any second attempt included), else
    /// [`h1::ExchangeError::TimedOut`]. With the answer: whether its body
    /// is still to be read from the upstream (false when it came whole
    /// with the head).
    pub async fn send_direct(
        self: &Arc<Self>,
        upstream: &Authority,
        connect_timeout: Duration,
        timeout: Duration,
        head: &[u8],
        method: &Method,
        mut body: Option<Body>,
    ) -> Result<(Response<Body>, bool), SendError> {
        let idempotent = h1::idempotent(method) && body.is_none();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut fresh = false;
        loop {
            let (conn, reused) = match (fresh, self.raw.take(upstream, None)) {
                (false, Some(mut c)) => {
                    c.set_deadline(deadline);
                    (c, true)
                }
                _ => {
                    let stream =
                        tokio::time::timeout_at(deadline, connect_tcp(upstream, connect_timeout))
                            .await
                            .map_err(|_| SendError::Exchange(h1::ExchangeError::TimedOut))??;
                    (RawConn::new(stream, deadline), false)
                }
            };
            match h1::exchange(conn, head, method, body.take()).await {
                Ok((parts, body)) => {
                    let (body, streamed) = match body.into_whole() {
                        // Already read whole: the connection goes back now.
                        Ok((whole, conn)) => {
                            if let Some(conn) = conn {
                                self.raw.put(upstream, None, conn);
                            }
                            (crate::body::full(whole), false)
                        }
                        // Read as the client takes it; the connection goes
                        // back at its end.
                        Err(mut body) => {
                            let pool = Arc::clone(self);
                            let upstream = upstream.clone();
                            body.on_done(Box::new(move |conn| pool.raw.put(&upstream, None, conn)));
                            (http_body_util::BodyExt::boxed(body), true)
                        }
                    };
                    return Ok((Response::from_parts(parts, body), streamed));
                }
                Err(e) if reused && idempotent && e.unanswered() => fresh = true,
                Err(e) => return Err(SendError::Exchange(e)),
            }
        }
    }

    fn wrap(
        self: &Arc<Self>,
        dest: Dest<'_>,
        conn: HyperConn,
        resp: Response<Incoming>,
        upgrades: bool,
    ) -> Response<Body> {
        let (parts, incoming) = resp.into_parts();
        if upgrades {
            // Whatever the answer, this connection is not reused: a 101
            // turns it into a tunnel, and anything else ends the attempt.
            drop(conn);
            return Response::from_parts(parts, crate::body::incoming(incoming));
        }
        let mut body = Pooled {
            inner: incoming,
            back: Some(GiveBack {
                pool: Arc::clone(self),
                upstream: dest.authority.clone(),
                tls: dest.tls.map(|t| Arc::clone(t.config)),
                conn,
            }),
        };
        if body.inner.is_end_stream() {
            // No body at all (204, 304, HEAD, Content-Length: 0): the
            // server may never poll it, so the connection goes back now.
            body.give_back();
        }
        Response::from_parts(parts, http_body_util::BodyExt::boxed(body))
    }
}

async fn connect_tcp(upstream: &Authority, timeout: Duration) -> Result<TcpStream, SendError> {
    let stream = tokio::time::timeout(timeout, open(upstream))
        .await
        .map_err(|_| SendError::ConnectTimeout)?
        .map_err(SendError::Connect)?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

async fn connect(
    dest: Dest<'_>,
    timeout: Duration,
    upgrades: bool,
) -> Result<HyperConn, SendError> {
    let started = tokio::time::Instant::now();
    let stream = connect_tcp(dest.authority, timeout).await?;
    let probe = socket2::SockRef::from(&stream).try_clone().ok();
    let sender = match dest.tls {
        None => handshake(stream, upgrades).await?,
        Some(tls) => {
            // The connect timeout covers the TLS handshake too.
            let stream =
                tokio::time::timeout_at(started + timeout, super::tls::connect(stream, tls))
                    .await
                    .map_err(|_| SendError::ConnectTimeout)?
                    .map_err(SendError::Tls)?;
            handshake(stream, upgrades).await?
        }
    };
    Ok(HyperConn { sender, probe })
}

/// HTTP/1.1 over `io`, its connection driven by a task of its own.
async fn handshake<T>(io: T, upgrades: bool) -> Result<SendRequest<Body>, SendError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(SendError::Http)?;
    if upgrades {
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
    } else {
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
    }
    Ok(sender)
}

/// A TCP connection to `host:port` (port 80 when the upstream has none);
/// an address literal skips the resolver.
async fn open(upstream: &Authority) -> std::io::Result<TcpStream> {
    let port = upstream.port_u16().unwrap_or(80);
    let host = upstream.host();
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse() {
        return TcpStream::connect(SocketAddr::new(ip, port)).await;
    }
    TcpStream::connect((host, port)).await
}

struct GiveBack {
    pool: Arc<Pool>,
    upstream: Authority,
    tls: Option<Arc<rustls::ClientConfig>>,
    conn: HyperConn,
}

/// The upstream's answer body; gives its connection back to the pool once
/// it has been read to the end.
struct Pooled {
    inner: Incoming,
    back: Option<GiveBack>,
}

impl Pooled {
    fn give_back(&mut self) {
        if let Some(b) = self.back.take() {
            b.pool.hyper.put(&b.upstream, b.tls.as_ref(), b.conn);
        }
    }
}

impl HttpBody for Pooled {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                this.give_back();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                // With a known length the server stops polling after the
                // last bytes, and after trailers (always the last frame of
                // a chunked answer); this is the last chance to give it
                // back.
                if frame.is_trailers() || this.inner.is_end_stream() {
                    this.give_back();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                // A broken answer: the connection is not reused.
                this.back = None;
                Poll::Ready(Some(Err(Box::new(e))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::mpsc;

    /// hyper's task notices late bytes on an idle connection only when it
    /// next runs. Here it cannot run (the worker is blocked, as a busy one
    /// would be) while the upstream sends a second answer on the pooled
    /// connection: the pool must still refuse to hand that connection out.
    #[tokio::test(flavor = "current_thread")]
    async fn late_bytes_on_an_idle_hyper_connection_are_seen_before_its_task_runs() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (sent_tx, sent_rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !got.ends_with(b"\r\n\r\nx") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "the request ended early");
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .unwrap();
            go_rx.recv().unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nwrong")
                .unwrap();
            sent_tx.send(()).unwrap();
            // Keep the socket open until the test is done with it.
            let _ = go_rx.recv();
        });

        let pool = Arc::new(Pool::default());
        let upstream: Authority = addr.to_string().parse().unwrap();
        let req = Request::post("/in")
            .header(http::header::HOST, "up")
            .header(http::header::CONTENT_LENGTH, "1")
            .body(crate::body::full("x"))
            .unwrap();
        let resp = pool
            .send(&upstream, Duration::from_secs(1), req, false)
            .await
            .unwrap();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&body[..], b"ok");
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }

        // From here on the worker does not yield: hyper's task stays idle.
        go_tx.send(()).unwrap();
        sent_rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            pool.hyper.take(&upstream, None).is_none(),
            "a connection with a second answer waiting on it was handed out"
        );
        let _ = go_tx.send(());
    }
}
