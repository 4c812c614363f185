//! Listeners and connections: the accept loops, the TLS handshake (with a
//! timeout), hyper's HTTP/1.1 and HTTP/2 connection settings (limits and
//! timers), and graceful shutdown. HTTP/1.1 connections, plain or TLS,
//! start in [`h1`] (the own loop) and move to hyper when a request needs
//! it; HTTP/2 connections, and every connection when `[server] fast_path`
//! is off, are hyper's. A request with both framing headers ([`framing`]) is refused
//! here. Knows nothing about routes or sign-in: every request goes to the
//! [`Handler`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::body::RequestBody;
use crate::config::Limits;
use crate::transport::{codec, ConnInfo, Handler, Refusal, Upstream};
use framing::{Flag, Watched};
use h1::{Replay, Wire};

pub mod framing;
pub mod h1;
pub mod tls;

/// One connection as the transport keeps it: how it reached us, the
/// worker's way upstream, and the connection's CL+TE flag.
#[derive(Clone)]
pub(crate) struct Conn {
    pub info: ConnInfo,
    /// The upstream pool of the worker thread this connection lives on.
    pub upstream: Upstream,
    /// Raised when an HTTP/1 request on this connection carried both
    /// `Content-Length` and `Transfer-Encoding` (see [`framing`]).
    pub framing: Arc<Flag>,
}

/// The sockets to serve on; made by the caller (so tests can bind
/// `127.0.0.1:0` and read the port).
pub struct Listeners {
    pub plain: Option<TcpListener>,
    pub tls: Option<(TcpListener, Arc<rustls::ServerConfig>)>,
}

fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_header_count)
        .max_buf_size(
            // Room for hyper's own 64 KiB URI limit (so a longer target is
            // 414, not 431) and our header limit; memory is taken only as
            // a request needs it.
            limits.max_header_bytes + 65_536 + 1024,
        )
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .max_header_list_size((limits.max_header_bytes + limits.max_uri_bytes) as u32)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    b
}

/// Serves until `shutdown` resolves, then stops accepting, lets requests
/// in flight finish (at most `limits.shutdown_timeout`) and returns. One
/// worker: every connection is served on the calling runtime.
pub async fn serve<H: Handler>(
    listeners: Listeners,
    app: Arc<H>,
    shutdown: impl Future<Output = ()>,
) {
    let tls = listeners.tls.as_ref().map(|(_, cfg)| cfg.clone());
    let worker = Worker::new(app, tls, Loads::new(1), 0);
    worker
        .run(listeners, Dispatch::default(), None, shutdown)
        .await;
}

/// Open connections per worker, for [`Dispatch`] to pick the least loaded.
#[derive(Clone)]
struct Loads(Arc<Vec<AtomicUsize>>);

impl Loads {
    fn new(workers: usize) -> Loads {
        Loads(Arc::new(
            (0..workers).map(|_| AtomicUsize::new(0)).collect(),
        ))
    }
}

/// Counts a connection against its worker for as long as it lives.
struct Counted(Loads, usize);

impl Counted {
    fn new(loads: &Loads, worker: usize) -> Counted {
        if let Some(n) = loads.0.get(worker) {
            n.fetch_add(1, Ordering::Relaxed);
        }
        Counted(loads.clone(), worker)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(n) = self.0 .0.get(self.1) {
            n.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A connection accepted on worker 0 for another worker to serve.
struct Handed {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    tls: bool,
    counted: Counted,
}

/// Where a new connection goes: the worker with the fewest open ones.
/// Worker 0 accepts for all; when every worker accepted on the shared
/// socket itself, a burst of new connections went to whichever thread was
/// awake, and one core served them all while the other idled.
#[derive(Default)]
struct Dispatch {
    /// Worker `i` (from 1) is `others[i - 1]`.
    others: Vec<mpsc::UnboundedSender<Handed>>,
}

/// One worker's share of the server: its runtime's upstream pool, hyper's
/// settings, the shutdown signal its connections watch, and its load.
struct Worker<H> {
    app: Arc<H>,
    upstream: Upstream,
    builder: Arc<auto::Builder<TokioExecutor>>,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    loads: Loads,
    index: usize,
    /// Every connection holds a receiver; shutdown sends `true` and waits
    /// until all of them are gone.
    stopping: watch::Sender<bool>,
}

impl<H: Handler> Worker<H> {
    fn new(
        app: Arc<H>,
        tls: Option<Arc<rustls::ServerConfig>>,
        loads: Loads,
        index: usize,
    ) -> Worker<H> {
        let limits = app.limits();
        Worker {
            upstream: Upstream::new(limits.fast_path),
            builder: Arc::new(builder(&limits)),
            tls: tls.map(TlsAcceptor::from),
            limits,
            loads,
            index,
            stopping: watch::channel(false).0,
            app,
        }
    }

    /// Accepts on `listeners` (handing connections to `dispatch`) and serves
    /// those `handed` here, until `shutdown`; then drains.
    async fn run(
        &self,
        listeners: Listeners,
        dispatch: Dispatch,
        handed: Option<mpsc::UnboundedReceiver<Handed>>,
        shutdown: impl Future<Output = ()>,
    ) {
        let plain = self.accept_loop(listeners.plain, false, &dispatch);
        let tls = self.accept_loop(listeners.tls.map(|(l, _)| l), true, &dispatch);
        let handed = async {
            let Some(mut rx) = handed else {
                return std::future::pending().await;
            };
            while let Some(h) = rx.recv().await {
                match TcpStream::from_std(h.stream) {
                    Ok(stream) => self.spawn(stream, h.peer, h.tls, h.counted),
                    Err(e) => tracing::warn!(error = %e, "a handed connection was lost"),
                }
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            _ = plain => {}
            _ = tls => {}
            _ = handed => {}
            _ = shutdown => {}
        }
        if self.index == 0 {
            tracing::info!("shutting down: no new connections, waiting for requests in flight");
        }
        let _ = self.stopping.send(true);
        match tokio::time::timeout(self.limits.shutdown_timeout, self.stopping.closed()).await {
            Ok(()) => tracing::debug!(worker = self.index, "all connections closed"),
            Err(_) => tracing::warn!("shutdown timeout reached with connections still open"),
        }
    }

    async fn accept_loop(&self, listener: Option<TcpListener>, tls: bool, dispatch: &Dispatch) {
        let Some(listener) = listener else {
            return std::future::pending().await;
        };
        let mut failures = AcceptFailures::default();
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: back off a
                    // little instead of spinning, and say so at most once
                    // a second.
                    if let Some(count) = failures.failed(std::time::Instant::now()) {
                        tracing::warn!(error = %e, count, "accept failed (count: failures since the last such line)");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let loads = &self.loads.0;
            let target = (0..loads.len())
                .min_by_key(|&i| loads[i].load(Ordering::Relaxed))
                .unwrap_or(self.index);
            // Counted now, so that the next choice sees it.
            let counted = Counted::new(&self.loads, target);
            let Some(tx) = target.checked_sub(1).and_then(|i| dispatch.others.get(i)) else {
                self.spawn(stream, peer, tls, counted);
                continue;
            };
            match stream.into_std() {
                Ok(stream) => {
                    let handed = Handed {
                        stream,
                        peer,
                        tls,
                        counted,
                    };
                    if tx.send(handed).is_err() {
                        tracing::warn!(worker = target, "a worker is gone; connection dropped");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not hand a connection over"),
            }
        }
    }

    /// Serves one connection on this worker's runtime.
    fn spawn(&self, stream: TcpStream, peer: SocketAddr, tls: bool, counted: Counted) {
        let tls = if tls { self.tls.clone() } else { None };
        let app = self.app.clone();
        let upstream = self.upstream.clone();
        let builder = self.builder.clone();
        let stop = self.stopping.subscribe();
        let limits = self.limits;
        tokio::spawn(async move {
            let _counted = counted;
            handle_connection(stream, peer, tls, app, upstream, builder, stop, limits).await;
        });
    }
}

#[allow(clippy::too_many_arguments)]
async fn handle_connection<H: Handler>(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    app: Arc<H>,
    upstream: Upstream,
    builder: Arc<auto::Builder<TokioExecutor>>,
    stop: watch::Receiver<bool>,
    limits: Limits,
) {
    let framing = Arc::new(Flag::default());
    match tls {
        None => {
            let conn = Conn {
                info: ConnInfo { peer, tls: false },
                upstream,
                framing,
            };
            serve_plain(stream, conn, app, &builder, stop, &limits).await;
        }
        // Boxed, like hyper's part of a plain connection: a task is as
        // large as the largest state of its future, and these states
        // (rustls, hyper) would make every idle plain connection pay for
        // them.
        Some(acceptor) => {
            let conn = Conn {
                info: ConnInfo { peer, tls: true },
                upstream,
                framing,
            };
            Box::pin(serve_tls(
                stream, acceptor, conn, app, &builder, stop, &limits,
            ))
            .await;
        }
    }
}

/// A plain-TCP connection: [`h1`] first (unless `fast_path` is off), then
/// hyper.
async fn serve_plain<H: Handler>(
    stream: TcpStream,
    conn: Conn,
    app: Arc<H>,
    builder: &auto::Builder<TokioExecutor>,
    stop: watch::Receiver<bool>,
    limits: &Limits,
) {
    if !limits.fast_path {
        let probe = probe_of(&stream);
        let stream = Watched::new(stream, conn.framing.clone());
        Box::pin(serve_io(stream, probe, conn, app, builder, stop, limits)).await;
        return;
    }
    serve_h1(stream, conn, app, builder, stop, limits).await;
}

/// An HTTP/1.1 connection, plain or TLS: [`h1`] serves it until a request
/// needs hyper, which then takes it over (with the bytes already read) for
/// the rest of its life.
async fn serve_h1<S: Wire, H: Handler>(
    stream: S,
    conn: Conn,
    app: Arc<H>,
    builder: &auto::Builder<TokioExecutor>,
    mut stop: watch::Receiver<bool>,
    limits: &Limits,
) {
    let Some(handover) = h1::serve(stream, &conn, &app, limits, &mut stop).await else {
        return;
    };
    let probe = probe_of(handover.stream.tcp());
    let stream = Watched::new(Replay::new(handover), conn.framing.clone());
    if *stop.borrow() {
        // Handed over during the shutdown (a request with a body reached
        // an idle connection as it began): hyper's graceful shutdown would
        // close a connection that has not started a request yet, so it
        // serves this one without keep-alive instead (`Connection:
        // close`), still within `shutdown_timeout`.
        let mut once = builder.clone();
        once.http1().keep_alive(false);
        let (_held, never) = watch::channel(false);
        Box::pin(serve_io(stream, probe, conn, app, &once, never, limits)).await;
        return;
    }
    Box::pin(serve_io(stream, probe, conn, app, builder, stop, limits)).await;
}

/// A TLS connection: the handshake (with its timeout), then HTTP/2 with
/// hyper, or HTTP/1.1 as on a plain connection.
async fn serve_tls<H: Handler>(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    conn: Conn,
    app: Arc<H>,
    builder: &auto::Builder<TokioExecutor>,
    stop: watch::Receiver<bool>,
    limits: &Limits,
) {
    let peer = conn.info.peer;
    let stream =
        match tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(stream)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        };
    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        // HTTP/2 frames its own messages; there is no Content-Length
        // against Transfer-Encoding to watch for.
        let probe = probe_of(stream.get_ref().0);
        serve_io(stream, probe, conn, app, builder, stop, limits).await;
    } else if limits.fast_path {
        serve_h1(stream, conn, app, builder, stop, limits).await;
    } else {
        let probe = probe_of(stream.get_ref().0);
        let framing = conn.framing.clone();
        serve_io(
            Watched::new(stream, framing),
            probe,
            conn,
            app,
            builder,
            stop,
            limits,
        )
        .await;
    }
}

/// Serves HTTP/1.1 or HTTP/2 (and upgrades) on one plain or TLS stream.
async fn serve_io<I, H: Handler>(
    io: I,
    probe: Option<socket2::Socket>,
    conn: Conn,
    app: Arc<H>,
    builder: &auto::Builder<TokioExecutor>,
    mut stop: watch::Receiver<bool>,
    limits: &Limits,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // Counts the requests hyper has taken on this connection, and says so.
    let taken = Arc::new((AtomicUsize::new(0), tokio::sync::Notify::new()));
    let counter = taken.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        counter.0.fetch_add(1, Ordering::Relaxed);
        counter.1.notify_waiters();
        let app = app.clone();
        let conn = conn.clone();
        // Boxed: hyper keeps one future slot per connection, idle ones
        // included; a box keeps that slot pointer-sized.
        Box::pin(async move {
            let req = req.map(RequestBody::Hyper);
            if conn.framing.raised() {
                return Ok::<_, std::convert::Infallible>(app.refuse(
                    &req,
                    &conn.info,
                    Refusal::AmbiguousFraming,
                ));
            }
            Ok(app.handle(req, &conn.info, &conn.upstream).await)
        })
    });
    let c = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    let mut c = std::pin::pin!(c);
    tokio::select! {
        _ = c.as_mut() => return,
        _ = stop.wait_for(|stopping| *stopping) => {}
    }
    // Shutting down. hyper closes a connection it sees idle at once, even
    // when a request has already reached its socket; so while bytes wait
    // there, hyper reads on until it has taken a request (or the header
    // timeout passes), and that request is answered with `Connection:
    // close`, as on the own loop.
    if probe.as_ref().is_some_and(|p| !codec::quiet(p)) {
        let before = taken.0.load(Ordering::Relaxed);
        let deadline = tokio::time::sleep(limits.header_read_timeout);
        tokio::pin!(deadline);
        loop {
            let notified = taken.1.notified();
            if taken.0.load(Ordering::Relaxed) != before {
                break;
            }
            tokio::select! {
                _ = c.as_mut() => return,
                _ = &mut deadline => break,
                _ = notified => {}
            }
        }
    }
    // Finish the request in flight, take no more.
    c.as_mut().graceful_shutdown();
    let _ = c.await;
}

/// A second handle on a connection's socket, to peek at it while hyper
/// owns the stream.
fn probe_of(stream: &TcpStream) -> Option<socket2::Socket> {
    socket2::SockRef::from(stream).try_clone().ok()
}

/// Accept failures come in floods (out of file descriptors: every retry
/// fails until a connection closes); they are logged at most once per
/// [`AcceptFailures::EVERY`], with the number of failures since the last
/// line.
#[derive(Debug, Default)]
struct AcceptFailures {
    /// When the last line was written.
    logged: Option<std::time::Instant>,
    /// Failures since then, not yet in a line.
    unlogged: u64,
}

impl AcceptFailures {
    const EVERY: Duration = Duration::from_secs(1);

    /// Counts one failure at `now`; `Some(count)` when a line is due, with
    /// the failures it reports (this one included).
    fn failed(&mut self, now: std::time::Instant) -> Option<u64> {
        self.unlogged += 1;
        if let Some(last) = self.logged {
            if now.saturating_duration_since(last) < Self::EVERY {
                return None;
            }
        }
        self.logged = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

/// Bound sockets, before any runtime owns them.
pub struct StdListeners {
    pub plain: Option<std::net::TcpListener>,
    pub tls: Option<(std::net::TcpListener, Arc<rustls::ServerConfig>)>,
}

impl StdListeners {
    /// Hands the sockets to the runtime of the calling thread.
    fn into_tokio(self) -> std::io::Result<Listeners> {
        let convert = |l: std::net::TcpListener| {
            l.set_nonblocking(true)?;
            TcpListener::from_std(l)
        };
        Ok(Listeners {
            plain: self.plain.map(convert).transpose()?,
            tls: match self.tls {
                Some((l, cfg)) => Some((convert(l)?, cfg)),
                None => None,
            },
        })
    }
}

/// Serves with `threads` workers, each a current-thread runtime on its own
/// OS thread with its own upstream pools (so a request, its pooled
/// upstream connection and their tasks never cross threads). The calling
/// runtime is worker 0: it accepts every connection and hands each to the
/// worker with the fewest open ([`Dispatch`]), and it also runs the shared
/// tasks (store, mailer). Returns when `shutdown` turns true and every
/// worker has drained.
pub async fn run_workers<H: Handler>(
    threads: usize,
    listeners: StdListeners,
    app: Arc<H>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let threads = threads.max(1);
    let loads = Loads::new(threads);
    let tls = listeners.tls.as_ref().map(|(_, cfg)| cfg.clone());
    let mut dispatch = Dispatch::default();
    let mut handles = Vec::new();
    for i in 1..threads {
        let (tx, rx) = mpsc::unbounded_channel();
        dispatch.others.push(tx);
        let app = app.clone();
        let tls = tls.clone();
        let loads = loads.clone();
        let mut stop = shutdown.clone();
        let handle = std::thread::Builder::new()
            .name(format!("portcullis-{i}"))
            .spawn(move || -> std::io::Result<()> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    let worker = Worker::new(app, tls, loads, i);
                    let none = Listeners {
                        plain: None,
                        tls: None,
                    };
                    worker
                        .run(none, Dispatch::default(), Some(rx), async move {
                            let _ = stop.wait_for(|v| *v).await;
                        })
                        .await;
                    Ok(())
                })
            })?;
        handles.push(handle);
    }
    let own = listeners.into_tokio()?;
    let mut stop = shutdown;
    let worker = Worker::new(app, tls, loads, 0);
    worker
        .run(own, dispatch, None, async move {
            let _ = stop.wait_for(|v| *v).await;
        })
        .await;
    for h in handles {
        let joined = tokio::task::spawn_blocking(move || h.join()).await;
        if let Ok(Ok(Err(e))) = joined {
            tracing::warn!(error = %e, "a worker thread ended with an error");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn accept_failures_are_logged_once_a_second_with_their_count() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut f = AcceptFailures::default();
        // The first failure is told at once.
        assert_eq!(f.failed(at(0)), Some(1));
        // Every 50 ms for the next second: silent.
        for ms in (50..1000).step_by(50) {
            assert_eq!(f.failed(at(ms)), None, "at {ms} ms");
        }
        // A second after the first line: one line for the 19 silent ones
        // and this.
        assert_eq!(f.failed(at(1000)), Some(20));
        assert_eq!(f.failed(at(1500)), None);
        // After a quiet spell, the next failure is told at once with the
        // one left unlogged before it.
        assert_eq!(f.failed(at(9000)), Some(2));
        assert_eq!(f.failed(at(9001)), None);
    }
}
