//! A misbehaving upstream for fault tests: a raw TCP server on 127.0.0.1
//! whose behaviour can be switched while it runs, and which can stop and
//! start listening on the same port (so "connection refused" and the
//! recovery after it need no new configuration).
//!
//! Owns: the accept loop, one [`Mode`] shared by all connections (read when
//! a request head has arrived), a count of request heads seen, and the
//! connections it holds open on purpose ([`Mode::Hang`]).
//!
//! Does not own: any HTTP parsing beyond finding the end of the request
//! head; request bodies are not read (fault tests send GETs).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the upstream does once it has read a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `200` with the body [`HEALTHY_BODY`] (keep-alive).
    Healthy,
    /// Closes the connection (FIN) without answering.
    CloseBeforeHead,
    /// Resets the connection (RST) without answering.
    ResetBeforeHead,
    /// Writes something that is not HTTP, then closes.
    Garbage,
    /// Never answers and never closes.
    Hang,
    /// `200` with `Content-Length: 1000`, 500 bytes of body, then FIN.
    HalfBody,
    /// `200` chunked, one 500-byte chunk, then FIN without the last chunk.
    HalfChunked,
    /// `200` with `Content-Length: 1000`, 500 bytes of body, then RST.
    ResetMidBody,
}

pub const HEALTHY_BODY: &str = "healthy upstream";
/// The length the broken answers announce, and how much they send.
pub const ANNOUNCED: usize = 1000;
pub const SENT: usize = 500;

struct Shared {
    mode: Mutex<Mode>,
    heads: AtomicUsize,
    /// Each request head in order: whether it was a health check
    /// ([`HEALTH_PATH`]).
    log: Mutex<Vec<bool>>,
    accepted: AtomicUsize,
    held: Mutex<Vec<TcpStream>>,
    /// Connection tasks, aborted by [`FaultyUpstream::stop_listening`].
    conns: Mutex<Vec<tokio::task::AbortHandle>>,
}

pub struct FaultyUpstream {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl FaultyUpstream {
    /// Starts listening on a port from the OS, in `mode`.
    pub async fn start(mode: Mode) -> FaultyUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            mode: Mutex::new(mode),
            heads: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            accepted: AtomicUsize::new(0),
            held: Mutex::new(Vec::new()),
            conns: Mutex::new(Vec::new()),
        });
        let up = FaultyUpstream {
            addr,
            shared,
            accept: Mutex::new(None),
        };
        up.serve(listener);
        up
    }

    fn serve(&self, listener: TcpListener) {
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                let task = tokio::spawn(connection(stream, shared.clone()));
                let mut conns = shared.conns.lock().unwrap();
                conns.retain(|c| !c.is_finished());
                conns.push(task.abort_handle());
            }
        });
        *self.accept.lock().unwrap() = Some(task);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Request heads read so far.
    pub fn heads(&self) -> usize {
        self.shared.heads.load(Ordering::SeqCst)
    }

    /// Every request head so far, in order: `true` for a health check
    /// (`GET` [`HEALTH_PATH`]).
    pub fn log(&self) -> Vec<bool> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Requests so far that were not health checks.
    pub fn requests(&self) -> usize {
        self.log().iter().filter(|h| !**h).count()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Closes the listening socket: new connections are refused. Existing
    /// connections are closed too (the gateway must not reuse them).
    pub async fn stop_listening(&self) {
        let task = self.accept.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        for conn in self.shared.conns.lock().unwrap().drain(..) {
            conn.abort();
        }
        self.shared.held.lock().unwrap().clear();
    }

    /// Listens again on the same port.
    pub async fn listen_again(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

impl Drop for FaultyUpstream {
    fn drop(&mut self) {
        if let Some(task) = self.accept.lock().unwrap().take() {
            task.abort();
        }
    }
}

/// The path whose requests [`FaultyUpstream::log`] counts as health checks.
pub const HEALTH_PATH: &str = "/healthz";

/// Reads one request head: `None` if the peer closed first, else whether
/// it was a health check.
async fn read_head(stream: &mut TcpStream) -> Option<bool> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    return Some(seen.starts_with(format!("GET {HEALTH_PATH} ").as_bytes()));
                }
            }
        }
    }
}

/// Closes with RST instead of FIN (SO_LINGER 0).
#[allow(deprecated)]
fn reset(stream: TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn connection(mut stream: TcpStream, shared: Arc<Shared>) {
    loop {
        let Some(health) = read_head(&mut stream).await else {
            return;
        };
        shared.log.lock().unwrap().push(health);
        shared.heads.fetch_add(1, Ordering::SeqCst);
        let mode = *shared.mode.lock().unwrap();
        let body = vec![b'x'; SENT];
        match mode {
            Mode::Healthy => {
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{HEALTHY_BODY}",
                    HEALTHY_BODY.len()
                );
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
            Mode::CloseBeforeHead => return,
            Mode::ResetBeforeHead => return reset(stream),
            Mode::Garbage => {
                let _ = stream.write_all(b"HELLO THERE\r\n\r\n").await;
                return;
            }
            Mode::Hang => {
                shared.held.lock().unwrap().push(stream);
                return;
            }
            Mode::HalfBody | Mode::ResetMidBody => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {ANNOUNCED}\r\n\r\n"
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
                let _ = stream.flush().await;
                if mode == Mode::ResetMidBody {
                    return reset(stream);
                }
                return;
            }
            Mode::HalfChunked => {
                let head =
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n";
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream
                    .write_all(format!("{:x}\r\n", body.len()).as_bytes())
                    .await;
                let _ = stream.write_all(&body).await;
                let _ = stream.write_all(b"\r\n").await;
                let _ = stream.flush().await;
                return;
            }
        }
    }
}
