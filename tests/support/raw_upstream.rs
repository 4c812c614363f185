//! A raw-TCP upstream that records the exact bytes the gateway sends it.
//!
//! Owns: a listener on 127.0.0.1:0; for every connection, the raw bytes
//! received, and the requests it could frame out of them with a small,
//! strict HTTP/1.1 reader written here (not hyper, so that what hyper's
//! client emits is judged by an independent parser). Each complete request
//! gets `200 OK` with body `ok`.
//!
//! Does not own: anything of the gateway. It is deliberately strict: a
//! request with both `Content-Length` and `Transfer-Encoding`, a repeated or
//! non-numeric `Content-Length`, a `Transfer-Encoding` other than `chunked`,
//! or a malformed chunk is recorded as [`Framing::Ambiguous`] and the
//! connection is closed; a connection that ends in the middle of a request
//! is recorded as [`Framing::Incomplete`].
//!
//! Tests use it to state what the upstream received: how many complete
//! requests, with which method, target and body, and that no byte stream
//! ever carried a second, smuggled request line.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head the reader accepts.
const MAX_HEAD: usize = 256 * 1024;

/// How a request's framing looked to the strict reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length: n` (or no body at all: n = 0).
    Length(usize),
    /// `Transfer-Encoding: chunked`, well formed.
    Chunked,
    /// Both CL and TE, several CL, a bad CL or TE, or a bad chunk.
    Ambiguous(String),
    /// The connection ended before the request did.
    Incomplete,
}

/// One request as the raw upstream saw it.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub framing: Framing,
}

impl RawRequest {
    /// All values of a header (name compared case-insensitively).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Complete and unambiguously framed.
    pub fn is_complete(&self) -> bool {
        matches!(self.framing, Framing::Length(_) | Framing::Chunked)
    }
}

#[derive(Default)]
struct Log {
    /// Raw bytes, one entry per connection.
    connections: Vec<Vec<u8>>,
    requests: Vec<RawRequest>,
}

#[derive(Clone)]
pub struct RawUpstream {
    pub addr: std::net::SocketAddr,
    log: Arc<Mutex<Log>>,
}

impl RawUpstream {
    pub async fn start() -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let accept_log = log.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let index = {
                    let mut l = accept_log.lock().unwrap();
                    l.connections.push(Vec::new());
                    l.connections.len() - 1
                };
                tokio::spawn(serve(stream, index, accept_log.clone()));
            }
        });
        RawUpstream { addr, log }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request seen (complete or not), in order.
    pub fn requests(&self) -> Vec<RawRequest> {
        self.log.lock().unwrap().requests.clone()
    }

    /// Complete, unambiguous requests only.
    pub fn complete(&self) -> Vec<RawRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.is_complete())
            .collect()
    }

    /// All bytes received, every connection concatenated.
    pub fn bytes(&self) -> Vec<u8> {
        self.log.lock().unwrap().connections.concat()
    }

    /// How many times `needle` occurs in the bytes of any one connection.
    pub fn occurrences(&self, needle: &[u8]) -> usize {
        self.log
            .lock()
            .unwrap()
            .connections
            .iter()
            .map(|c| c.windows(needle.len()).filter(|w| *w == needle).count())
            .sum()
    }
}

/// Buffered reads that also append every byte to the connection's log.
struct Reader {
    stream: TcpStream,
    buf: Vec<u8>,
    index: usize,
    log: Arc<Mutex<Log>>,
}

impl Reader {
    /// Reads more bytes; false at end of stream.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                self.log.lock().unwrap().connections[self.index].extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next line ending in CRLF (without it); None at end of stream or
    /// when a line ends in a bare LF (recorded by the caller as ambiguous).
    async fn line(&mut self) -> Option<Result<Vec<u8>, String>> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.pop() != Some(b'\r') {
                    return Some(Err("bare LF".into()));
                }
                return Some(Ok(line));
            }
            if self.buf.len() > MAX_HEAD || !self.fill().await {
                return None;
            }
        }
    }

    async fn exact(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill().await {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }
}

async fn serve(stream: TcpStream, index: usize, log: Arc<Mutex<Log>>) {
    let mut r = Reader {
        stream,
        buf: Vec::new(),
        index,
        log: log.clone(),
    };
    loop {
        let Some(req) = read_request(&mut r).await else {
            return;
        };
        let complete = req.is_complete();
        log.lock().unwrap().requests.push(req);
        if !complete {
            return;
        }
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok";
        if r.stream.write_all(answer).await.is_err() {
            return;
        }
    }
}

/// Reads one request; None when the connection ended cleanly between requests.
async fn read_request(r: &mut Reader) -> Option<RawRequest> {
    let first = loop {
        match r.line().await? {
            Ok(l) if l.is_empty() => continue,
            Ok(l) => break l,
            Err(_) => return None,
        }
    };
    let first = String::from_utf8_lossy(&first).into_owned();
    let mut parts = first.splitn(3, ' ');
    let mut req = RawRequest {
        method: parts.next().unwrap_or("").to_string(),
        target: parts.next().unwrap_or("").to_string(),
        version: parts.next().unwrap_or("").to_string(),
        headers: Vec::new(),
        body: Vec::new(),
        framing: Framing::Incomplete,
    };
    loop {
        match r.line().await {
            None => return Some(req),
            Some(Err(e)) => {
                req.framing = Framing::Ambiguous(e);
                return Some(req);
            }
            Some(Ok(l)) if l.is_empty() => break,
            Some(Ok(l)) => {
                let text = String::from_utf8_lossy(&l).into_owned();
                match text.split_once(':') {
                    Some((k, v)) if !k.is_empty() && !k.ends_with([' ', '\t']) => {
                        req.headers.push((k.to_string(), v.trim().to_string()))
                    }
                    _ => {
                        req.framing = Framing::Ambiguous(format!("bad header line {text:?}"));
                        return Some(req);
                    }
                }
            }
        }
    }
    let cl = req.all("content-length");
    let te = req.all("transfer-encoding");
    req.framing = match (cl.as_slice(), te.as_slice()) {
        ([], []) => Framing::Length(0),
        ([n], []) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            match n.parse::<usize>() {
                Ok(n) => match r.exact(n).await {
                    Some(body) => {
                        req.body = body;
                        Framing::Length(n)
                    }
                    None => Framing::Incomplete,
                },
                Err(_) => Framing::Ambiguous(format!("content-length {n:?}")),
            }
        }
        ([], [t]) if t.eq_ignore_ascii_case("chunked") => match read_chunked(r).await {
            Ok(Some(body)) => {
                req.body = body;
                Framing::Chunked
            }
            Ok(None) => Framing::Incomplete,
            Err(e) => Framing::Ambiguous(e),
        },
        _ => Framing::Ambiguous(format!("content-length {cl:?}, transfer-encoding {te:?}")),
    };
    Some(req)
}

/// A strict chunked body: hex sizes without extensions, CRLF everywhere,
/// no trailers. Ok(None) when the connection ends first.
async fn read_chunked(r: &mut Reader) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let line = match r.line().await {
            None => return Ok(None),
            Some(l) => l?,
        };
        let text = String::from_utf8_lossy(&line).into_owned();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("chunk size {text:?}"));
        }
        let size = usize::from_str_radix(&text, 16).map_err(|e| e.to_string())?;
        if size == 0 {
            return match r.line().await {
                None => Ok(None),
                Some(Ok(l)) if l.is_empty() => Ok(Some(body)),
                Some(Ok(_)) => Err("trailers".into()),
                Some(Err(e)) => Err(e),
            };
        }
        let Some(data) = r.exact(size + 2).await else {
            return Ok(None);
        };
        if !data.ends_with(b"\r\n") {
            return Err("chunk not followed by CRLF".into());
        }
        body.extend_from_slice(&data[..size]);
    }
}
