//! A real SMTP server for tests, with scripted answers and a tarpit switch.
//!
//! Owns: a `mailin-embedded` server (plain SMTP, no TLS) on an ephemeral
//! 127.0.0.1 port, a record of every message it accepted (envelope sender,
//! recipients, full data), counters of connections and delivery attempts, and
//! a tiny MIME reader so tests can look at the decoded text and HTML parts.
//!
//! Does not own: anything of the crate under test; it only speaks SMTP.
//!
//! # How it is wired
//!
//! mailin runs on its own listener (bound to 127.0.0.1:0 and handed over with
//! `with_tcp_listener`, so there is no port race). Clients connect to a second
//! listener, also on 127.0.0.1:0, that pipes each connection to mailin — or,
//! while the tarpit is on, accepts it and never says a word (no greeting, no
//! close) until the server is dropped at the end of the test process.
//!
//! # Scripts
//!
//! The answer to the `DATA` command decides each delivery attempt:
//! [`Script::Accept`] takes everything, [`Script::TempFailFirst`]`(n)` answers
//! `421` (and closes, as 421 means) to the first `n` attempts and then
//! accepts, [`Script::AlwaysReject`] answers `550` to every attempt.
//!
//! Plain module file for `mod support;` users: it declares no modules.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use mailin_embedded::response::OK;
use mailin_embedded::{Handler, Response, Server, SslConfig};

/// How the server answers delivery attempts (the `DATA` command).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// `250` to everything.
    Accept,
    /// `421` to the first `n` attempts (closing the connection), then `250`.
    TempFailFirst(usize),
    /// `550` to every attempt.
    AlwaysReject,
}

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// Envelope sender (`MAIL FROM`).
    pub from: String,
    /// Envelope recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// The message as received (headers and body, CRLF line ends).
    pub data: Vec<u8>,
}

/// One decoded leaf part of a MIME message.
#[derive(Debug, Clone)]
pub struct Part {
    /// The `Content-Type` value, lowercased, without parameters.
    pub content_type: String,
    /// The body after undoing its `Content-Transfer-Encoding`.
    pub body: String,
}

impl Received {
    /// The raw message as text.
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    /// The first header `name` (case-insensitive) of the message, unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let (head, _) = split_head(&self.raw());
        header_in(&head, name)
    }

    /// All leaf parts, decoded (one part for a non-multipart message).
    pub fn parts(&self) -> Vec<Part> {
        parse_parts(&self.raw())
    }

    /// The decoded body of the first part of type `content_type`.
    pub fn part(&self, content_type: &str) -> Option<String> {
        self.parts()
            .into_iter()
            .find(|p| p.content_type == content_type)
            .map(|p| p.body)
    }

    /// The decoded `text/plain` part.
    pub fn text(&self) -> Option<String> {
        self.part("text/plain")
    }

    /// The decoded `text/html` part.
    pub fn html(&self) -> Option<String> {
        self.part("text/html")
    }
}

struct Shared {
    script: Script,
    attempts: AtomicUsize,
    connections: AtomicUsize,
    tarpit: AtomicBool,
    received: Mutex<Vec<Received>>,
    /// Tarpitted connections, kept open and silent.
    held: Mutex<Vec<TcpStream>>,
}

/// A running test SMTP server. It lives until the test process ends
/// (mailin's `serve` never returns); each test should start its own.
#[derive(Clone)]
pub struct SmtpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl SmtpServer {
    /// Starts a server answering per `script`.
    pub fn start(script: Script) -> SmtpServer {
        let shared = Arc::new(Shared {
            script,
            attempts: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            tarpit: AtomicBool::new(false),
            received: Mutex::new(Vec::new()),
            held: Mutex::new(Vec::new()),
        });

        let backend = TcpListener::bind("127.0.0.1:0").expect("bind mailin listener");
        let backend_addr = backend.local_addr().unwrap();
        let recorder = Recorder {
            shared: Arc::clone(&shared),
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
        };
        let mut server = Server::new(recorder);
        server
            .with_name("smtp.test")
            .with_num_threads(32)
            .with_tcp_listener(backend);
        server.with_ssl(SslConfig::None).expect("no TLS");
        thread::Builder::new()
            .name("test-smtp".into())
            .spawn(move || {
                let _ = server.serve();
            })
            .unwrap();

        let front = TcpListener::bind("127.0.0.1:0").expect("bind front listener");
        let addr = front.local_addr().unwrap();
        let accept_shared = Arc::clone(&shared);
        thread::Builder::new()
            .name("test-smtp-front".into())
            .spawn(move || {
                for conn in front.incoming() {
                    let Ok(conn) = conn else { continue };
                    accept_shared.connections.fetch_add(1, Ordering::SeqCst);
                    if accept_shared.tarpit.load(Ordering::SeqCst) {
                        accept_shared.held.lock().unwrap().push(conn);
                    } else {
                        thread::spawn(move || pipe(conn, backend_addr));
                    }
                }
            })
            .unwrap();

        SmtpServer { addr, shared }
    }

    /// Starts a server whose tarpit is on: it accepts connections and never
    /// greets. [`SmtpServer::set_tarpit`]`(false)` makes it answer normally
    /// (per `Script::Accept`) for new connections.
    pub fn tarpit() -> SmtpServer {
        let server = SmtpServer::start(Script::Accept);
        server.set_tarpit(true);
        server
    }

    /// While on, new connections are accepted and left silent.
    pub fn set_tarpit(&self, on: bool) {
        self.shared.tarpit.store(on, Ordering::SeqCst);
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Delivery attempts seen (`DATA` commands), whatever the answer.
    pub fn attempts(&self) -> usize {
        self.shared.attempts.load(Ordering::SeqCst)
    }

    /// TCP connections accepted (tarpitted ones included).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Messages accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` messages were accepted, polling every 10 ms;
    /// panics after `within`.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let me = self.clone();
        wait_until(within, &format!("{n} message(s) received"), move || {
            me.received().len() >= n
        })
        .await;
        self.received()
    }
}

/// Polls `cond` every 10 ms until it holds; panics with `what` after `within`.
pub async fn wait_until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        if cond() {
            return;
        }
        if start.elapsed() > within {
            panic!("timed out after {within:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Copies bytes both ways between a client and mailin, passing on half-closes.
fn pipe(client: TcpStream, backend: SocketAddr) {
    let Ok(server) = TcpStream::connect(backend) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let upstream = thread::spawn(move || {
        let _ = io::copy(&mut &client2, &mut &server2);
        let _ = server2.shutdown(Shutdown::Write);
    });
    let _ = io::copy(&mut &server, &mut &client);
    let _ = client.shutdown(Shutdown::Write);
    let _ = upstream.join();
}

/// mailin handler: one clone per connection; counts and records.
#[derive(Clone)]
struct Recorder {
    shared: Arc<Shared>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Recorder {
    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        let n = self.shared.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        match self.shared.script {
            Script::TempFailFirst(k) if n <= k => {
                return Response::custom(421, "4.3.2 Try again later".into());
            }
            Script::AlwaysReject => {
                return Response::custom(550, "5.1.1 Mailbox unavailable".into());
            }
            _ => {}
        }
        self.from = from.to_owned();
        self.to = to.to_vec();
        self.data.clear();
        OK
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let message = Received {
            from: std::mem::take(&mut self.from),
            to: std::mem::take(&mut self.to),
            data: std::mem::take(&mut self.data),
        };
        self.shared.received.lock().unwrap().push(message);
        OK
    }
}

// ---- a small MIME reader, enough for what lettre writes ----

/// Splits at the first empty line: (header block, body).
fn split_head(raw: &str) -> (String, String) {
    let raw = raw.replace("\r\n", "\n");
    match raw.split_once("\n\n") {
        Some((head, body)) => (head.to_owned(), body.to_owned()),
        None => (raw, String::new()),
    }
}

/// Finds header `name` in a header block and unfolds it.
fn header_in(head: &str, name: &str) -> Option<String> {
    let mut unfolded: Vec<String> = Vec::new();
    for line in head.lines() {
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(last) = unfolded.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else {
            unfolded.push(line.to_owned());
        }
    }
    unfolded.into_iter().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

/// The value of parameter `param` in a header value such as
/// `multipart/alternative; boundary="abc"`.
fn header_param(value: &str, param: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(param)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn parse_parts(entity: &str) -> Vec<Part> {
    let (head, body) = split_head(entity);
    let content_type = header_in(&head, "Content-Type").unwrap_or_else(|| "text/plain".into());
    let kind = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if kind.starts_with("multipart/") {
        let Some(boundary) = header_param(&content_type, "boundary") else {
            return Vec::new();
        };
        let delimiter = format!("--{boundary}");
        let mut parts = Vec::new();
        for chunk in body.split(&delimiter).skip(1) {
            if chunk.starts_with("--") {
                break; // the closing delimiter
            }
            let chunk = chunk.strip_prefix('\n').unwrap_or(chunk);
            let chunk = chunk.strip_suffix('\n').unwrap_or(chunk);
            parts.extend(parse_parts(chunk));
        }
        return parts;
    }
    let encoding = header_in(&head, "Content-Transfer-Encoding")
        .unwrap_or_else(|| "7bit".into())
        .to_ascii_lowercase();
    let decoded = match encoding.as_str() {
        "quoted-printable" => decode_quoted_printable(&body),
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .expect("valid base64 body");
            String::from_utf8(bytes).expect("utf-8 body")
        }
        _ => body,
    };
    vec![Part {
        content_type: kind,
        body: decoded,
    }]
}

/// Undoes quoted-printable (RFC 2045 §6.7) on text with `\n` line ends.
fn decode_quoted_printable(body: &str) -> String {
    let bytes = body.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if bytes.get(i + 1) == Some(&b'\n') {
                i += 2; // soft line break
                continue;
            }
            if let (Some(h), Some(l)) = (bytes.get(i + 1), bytes.get(i + 2)) {
                let hex = [*h, *l];
                if let Ok(v) = u8::from_str_radix(std::str::from_utf8(&hex).unwrap_or("zz"), 16) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("utf-8 after quoted-printable")
}
