//! HTTP/1.1 connections, plain or TLS: a loop of our own serves the
//! requests that make up nearly all traffic, hyper serves everything else.
//!
//! A request is served here when its head parses (with httparse, the parser
//! hyper itself uses) as HTTP/1.1 with nothing to negotiate: no
//! `Transfer-Encoding`, no `Upgrade`, no `Expect`, not `CONNECT`, at most
//! [`MAX_HEADERS`] headers in at most [`MAX_HEAD`] bytes, and either no
//! body or one `Content-Length`, written as a plain decimal number without
//! leading zeros, of at most [`MAX_STREAMED`] bytes. A body of at most
//! [`MAX_BODY`] bytes that is already here whole with the head (a form
//! post, a JSON call) comes with the request; any other is read off the
//! connection while the request is handled ([`pump`]: exactly its length,
//! no byte more, a chunk at a time as the handler takes them), and a body
//! not read to its end closes the connection after the answer. Anything
//! else (chunked bodies, an upgrade, HTTP/1.0, the HTTP/2 preface, a
//! malformed or oversized head) hands the connection over, with the bytes
//! read so far ([`Handover`]), to hyper for the rest of its life: its
//! limits, its error answers (400, 414, 431), its body timeouts and the
//! CL+TE watch of [`super::framing`] apply there exactly as before.
//!
//! Why: hyper's server keeps an 8 KiB read and an 8 KiB write buffer for
//! the whole life of each connection and spends about 12,000 instructions
//! on a request. Here an idle connection holds no buffer (it waits for the
//! socket to become readable before it takes one), and the request head is
//! parsed in place: header values share the read buffer.
//!
//! Over TLS ([`Wire`] for rustls's stream) the loop is the same; the head
//! and the body's first frames still go out in one write, so in one TLS
//! record. HTTP/2 (chosen by ALPN) always goes to hyper.
//!
//! What stays as with hyper: `header_read_timeout` counts from the moment
//! the connection waits for a head, idle keep-alive included (then it is
//! closed without an answer, as hyper does; a head still incomplete at
//! [`MAX_HEAD`] bytes goes to hyper, whose own timer then starts, so such a
//! head has at most twice the timeout in all); `Connection: close` from
//! either side ends the connection after the answer; an answer is framed by
//! its `Content-Length` when it has one or its body's length is known, else
//! chunked; HEAD, 1xx, 204 and 304 answers carry no body; `Date` is added
//! when the answer has none; a body that ends early, runs long or fails
//! closes the connection; on shutdown an idle connection closes at once and
//! a busy one after its answer, and a request that has reached an idle
//! connection's socket by then is still read and answered, with
//! `Connection: close`.

use std::io::Write as _;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Body as HttpBody;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::Conn;
use crate::body::{Body, RequestBody};
use crate::config::Limits;
use crate::headers;
use crate::transport::codec::{DateCache, Span};
use crate::transport::Handler;

/// Largest request head served here; a longer one goes to hyper (whose
/// limits then answer it).
pub const MAX_HEAD: usize = 32 * 1024;
/// Most headers in a request served here; more go to hyper.
pub const MAX_HEADERS: usize = 64;
/// Largest request body read whole with the head; a longer one (or one not
/// all here with its head) is streamed ([`pump`]).
pub const MAX_BODY: usize = 16 * 1024;
/// Largest `Content-Length` served here (15 digits); a longer one goes to
/// hyper.
pub const MAX_STREAMED: u64 = 999_999_999_999_999;
/// Room taken for each read of a streamed body.
const BODY_READ: usize = 64 * 1024;
/// Room taken for a request head when the socket has bytes to read.
const FIRST_READ: usize = 4 * 1024;
/// Body bytes gathered behind the answer's head into one write.
const COALESCE: usize = 16 * 1024;

/// A connection hyper must take over: the stream and the bytes already
/// read from it (the start of a request head), to be read again first.
pub struct Handover<S> {
    pub stream: S,
    pub read: Bytes,
}

/// What the loop needs of a connection's stream beyond reading and
/// writing: plain TCP, or TLS over TCP.
pub(crate) trait Wire: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The TCP socket underneath.
    fn tcp(&self) -> &TcpStream;

    /// Reads what has arrived, taking room for it only once there is
    /// something to read: an idle connection holds no buffer.
    fn read_some<'a>(
        &'a mut self,
        buf: &'a mut BytesMut,
    ) -> impl std::future::Future<Output = std::io::Result<usize>> + Send + 'a;

    /// Shutting down while idle: whether a request may already have
    /// reached the connection, so that it must still be read and answered.
    /// Bytes read to find out are left in `buf`.
    fn arrived(&mut self, buf: &mut BytesMut) -> bool;
}

impl Wire for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }

    fn read_some<'a>(
        &'a mut self,
        buf: &'a mut BytesMut,
    ) -> impl std::future::Future<Output = std::io::Result<usize>> + Send + 'a {
        read_some(self, buf)
    }

    fn arrived(&mut self, buf: &mut BytesMut) -> bool {
        read_arrived(self, buf)
    }
}

impl Wire for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }

    fn read_some<'a>(
        &'a mut self,
        buf: &'a mut BytesMut,
    ) -> impl std::future::Future<Output = std::io::Result<usize>> + Send + 'a {
        read_some_tls(self, buf)
    }

    /// Bytes at the socket count (they are encrypted: only reading through
    /// rustls tells what they hold), and so does plaintext rustls already
    /// holds (a request pipelined behind the last one).
    fn arrived(&mut self, buf: &mut BytesMut) -> bool {
        let waiting = !crate::transport::codec::quiet(self.tcp());
        buf.reserve(FIRST_READ);
        let held = matches!(self.read_buf(buf).now_or_never(), Some(Ok(n)) if n > 0);
        waiting || held
    }
}

/// Serves requests on `stream` until the connection ends (`None`) or a
/// request needs hyper (`Some`).
pub(crate) async fn serve<H: Handler, S: Wire>(
    mut stream: S,
    conn: &Conn,
    app: &Arc<H>,
    limits: &Limits,
    stop: &mut watch::Receiver<bool>,
) -> Option<Handover<S>> {
    let mut buf = BytesMut::new();
    let mut date = DateCache::default();
    let max_headers = limits.max_header_count.clamp(1, MAX_HEADERS);
    // One timer for the connection's life, moved on for each head: moving
    // a registered timer later is a store, while a new one each time goes
    // into tokio's timer wheel and often wakes the driver (a syscall).
    let timer = tokio::time::sleep(limits.header_read_timeout);
    tokio::pin!(timer);
    // Likewise one wait for the server's stop for the connection's life
    // (on a receiver of its own, so `stop` can still be read): a new one
    // for each request would join and leave the channel's waiter list.
    let mut stop_wait = stop.clone();
    let stopped = stop_wait.wait_for(|stopping| *stopping);
    tokio::pin!(stopped);
    // Set once `stopped` has fired (a finished future is not polled again).
    let mut stopping = false;
    loop {
        timer
            .as_mut()
            .reset(Instant::now() + limits.header_read_timeout);
        let (req, wants_close, feed) = loop {
            if !buf.is_empty() {
                match take_request(&mut buf, max_headers) {
                    Taken::Request(req, close, feed) => break (req, close, feed),
                    Taken::Partial if buf.len() < MAX_HEAD => {}
                    Taken::Partial | Taken::NotOurs => {
                        return Some(Handover {
                            stream,
                            read: buf.freeze(),
                        })
                    }
                }
            }
            let idle = buf.is_empty();
            tokio::select! {
                read = stream.read_some(&mut buf) => match read {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                },
                _ = &mut timer => return None,
                _ = &mut stopped, if idle && !stopping => {
                    // Shutting down while idle. A request that has already
                    // reached the socket is read and answered (with
                    // `Connection: close`); tokio may not know of it yet,
                    // so the socket itself is asked.
                    stopping = true;
                    if !stream.arrived(&mut buf) {
                        return None;
                    }
                }
            }
        };
        let is_head = req.method() == Method::HEAD;
        // Boxed: the connection's task stays small while it is idle.
        let handling = Box::pin(app.handle(req, &conn.info, &conn.upstream));
        let (resp, body_read) = match feed {
            None => (handling.await, true),
            // Boxed: the connection's task stays as small for the requests
            // without a streamed body.
            Some(feed) => Box::pin(feeding(handling, pump(&mut stream, &mut buf, feed))).await,
        };
        let keep_alive = body_read && !wants_close && !*stop.borrow();
        match write_response(&mut stream, resp, is_head, keep_alive, &mut date).await {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                let _ = stream.shutdown().await;
                return None;
            }
        }
        if buf.is_empty() {
            // Nothing pipelined: give the buffer back while idle.
            buf = BytesMut::new();
        }
    }
}

/// Runs `handling` while `pumping` feeds its body; the answer, and whether
/// the body was read to its end (if not, the rest is still on the
/// connection, which then closes after the answer).
async fn feeding<R>(
    handling: impl std::future::Future<Output = R>,
    pumping: impl std::future::Future<Output = bool>,
) -> (R, bool) {
    tokio::pin!(handling);
    tokio::pin!(pumping);
    let mut read = None;
    loop {
        tokio::select! {
            biased;
            whole = &mut pumping, if read.is_none() => read = Some(whole),
            resp = &mut handling => return (resp, read == Some(true)),
        }
    }
}

/// Feeds a streamed body ([`Feed`]) to its request: first the bytes of it
/// already in `buf`, then reads of the socket, never past the body's end
/// (a request pipelined behind it stays where it is). Each chunk is sent
/// once the last was taken. Whether the whole body was read; a connection
/// that ends first is an error for the body's reader.
async fn pump<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut BytesMut, feed: Feed) -> bool {
    let Feed { tx, mut left } = feed;
    let here = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
    if here > 0 {
        left -= here as u64;
        if tx.send(Ok(buf.split_to(here).freeze())).await.is_err() {
            return false;
        }
    }
    // One allocation reused for the body's reads once the reader is done
    // with the chunks split off it.
    let mut room = BytesMut::new();
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(BODY_READ);
        room.reserve(want);
        let read = {
            let mut limited = (&mut *stream).take(want as u64);
            limited.read_buf(&mut room).await
        };
        match read {
            Ok(0) => {
                let _ = tx.send(Err(std::io::ErrorKind::UnexpectedEof.into())).await;
                return false;
            }
            Ok(n) => {
                left -= n as u64;
                if tx.send(Ok(room.split().freeze())).await.is_err() {
                    return false;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return false;
            }
        }
    }
    true
}

/// Reads what the socket has, taking room for it only once it is readable.
///
/// The read goes through `poll_read`, which notes a short read as "drained"
/// (tokio's `try_read` does not), so the next wait is a real one; when the
/// socket turns out to have nothing after all, an empty buffer is given
/// back before waiting again. Either way an idle connection holds none.
async fn read_some(stream: &mut TcpStream, buf: &mut BytesMut) -> std::io::Result<usize> {
    loop {
        stream.readable().await?;
        if buf.capacity() - buf.len() < 512 {
            buf.reserve(buf.len().max(FIRST_READ));
        }
        match stream.read_buf(buf).now_or_never() {
            Some(read) => return read,
            None if buf.is_empty() => *buf = BytesMut::new(),
            None => {}
        }
    }
}

/// [`read_some`] over TLS. rustls may already hold plaintext (requests
/// that came in the same record as the last one, or with the handshake's
/// end), which the socket's readiness knows nothing of: so the stream is
/// read first, and the socket waited for only when that finds nothing.
async fn read_some_tls(
    stream: &mut tokio_rustls::server::TlsStream<TcpStream>,
    buf: &mut BytesMut,
) -> std::io::Result<usize> {
    loop {
        if buf.capacity() - buf.len() < 512 {
            buf.reserve(buf.len().max(FIRST_READ));
        }
        match stream.read_buf(buf).now_or_never() {
            Some(read) => return read,
            None if buf.is_empty() => *buf = BytesMut::new(),
            None => {}
        }
        stream.get_ref().0.readable().await?;
    }
}

/// Reads, without waiting, the bytes that have already reached the socket
/// (at most [`MAX_HEAD`]); whether there were any. Through a duplicate of
/// the descriptor: tokio's `try_read` answers from the readiness it last
/// saw, which does not include bytes that arrived since its driver last
/// ran, and those are exactly the requests a shutdown must not drop.
fn read_arrived(stream: &TcpStream, buf: &mut BytesMut) -> bool {
    let before = buf.len();
    #[cfg(unix)]
    {
        use std::io::Read as _;
        use std::os::fd::AsFd as _;
        // The duplicate shares the socket's non-blocking flag.
        let Ok(fd) = stream.as_fd().try_clone_to_owned() else {
            return false;
        };
        let mut socket = std::net::TcpStream::from(fd);
        let mut chunk = [0u8; 4096];
        while buf.len() < MAX_HEAD {
            match socket.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let mut chunk = [0u8; 4096];
        while buf.len() < MAX_HEAD {
            match stream.try_read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
    buf.len() > before
}

/// What the front of the read buffer holds.
#[allow(clippy::large_enum_variant)] // returned by value once, never stored
pub enum Taken {
    /// A request served here (and whether it asked to close), its head
    /// taken off the buffer; with the [`Feed`] of its body when that is
    /// streamed (still to be taken off the buffer and the connection).
    Request(Request<RequestBody>, bool, Option<Feed>),
    /// Not a whole head yet.
    Partial,
    /// A head for hyper; the buffer is as it was.
    NotOurs,
}

/// What a streamed body's reader is fed from: its sender, and the body's
/// length.
pub struct Feed {
    pub tx: crate::body::StreamedFeed,
    pub left: u64,
}

/// Takes a request off the front of `buf` when there is one to serve here.
/// Not async: the parsed head (a kilobyte of offsets) lives on the stack
/// for a moment, never in a connection's task.
pub fn take_request(buf: &mut BytesMut, max_headers: usize) -> Taken {
    // Where each header is, filled in place (a kilobyte: not moved around
    // inside the parsed head).
    let mut spans = [(0, 0, 0, 0); MAX_HEADERS];
    match parse(buf, max_headers, &mut spans) {
        Parsed::Head(head) => match head.into_request(buf, &spans) {
            Some((req, close, feed)) => Taken::Request(req, close, feed),
            None => Taken::NotOurs,
        },
        Parsed::Partial => Taken::Partial,
        Parsed::NotOurs => Taken::NotOurs,
    }
}

enum Parsed {
    Head(Head),
    Partial,
    NotOurs,
}

/// A parsed request head, as offsets into the read buffer; the headers'
/// are in the [`Span`]s that [`parse`] filled.
struct Head {
    len: usize,
    method: Method,
    target: (u32, u32),
    count: usize,
    close: bool,
    /// The `Content-Length`, when there is one.
    body: Option<u64>,
}

fn parse(buf: &[u8], max_headers: usize, spans: &mut [Span; MAX_HEADERS]) -> Parsed {
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut slots[..max_headers]) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::NotOurs,
    };
    if req.version != Some(1) {
        return Parsed::NotOurs;
    }
    let method = match req.method.map(|m| Method::from_bytes(m.as_bytes())) {
        Some(Ok(m)) if m != Method::CONNECT => m,
        _ => return Parsed::NotOurs,
    };
    let Some(path) = req.path else {
        return Parsed::NotOurs;
    };
    let mut head = Head {
        len,
        method,
        target: crate::transport::codec::offsets(buf, path.as_bytes()),
        count: req.headers.len(),
        close: false,
        body: None,
    };
    for (slot, h) in spans.iter_mut().zip(req.headers.iter()) {
        let name = h.name.as_bytes();
        let refused: &[&[u8]] = &[b"transfer-encoding", b"upgrade", b"expect"];
        if refused.iter().any(|r| name.eq_ignore_ascii_case(r)) {
            return Parsed::NotOurs;
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            match (head.body, body_length(h.value)) {
                (None, Some(n)) => head.body = Some(n),
                // A second one (even an equal one), or one not written
                // plainly, or a long body: hyper's.
                _ => return Parsed::NotOurs,
            }
        }
        if name.eq_ignore_ascii_case(b"connection")
            && headers::tokens(h.value).any(|t| t.eq_ignore_ascii_case(b"close"))
        {
            head.close = true;
        }
        *slot = crate::transport::codec::span(buf, name, h.value);
    }
    Parsed::Head(head)
}

/// A `Content-Length` value served here: 1 to 15 digits, no leading zero
/// (but `0` itself): at most [`MAX_STREAMED`].
fn body_length(value: &[u8]) -> Option<u64> {
    let plain = match value {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.len() < 15 && rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !plain {
        return None;
    }
    Some(value.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

impl Head {
    /// The request, its head (and a whole body) taken off the front of
    /// `buf` (header values share it), with its body's [`Feed`] when that
    /// is streamed. `None` leaves `buf` as it was (a name or target that
    /// httparse takes and http does not): hyper answers such a request.
    fn into_request(
        self,
        buf: &mut BytesMut,
        spans: &[Span; MAX_HEADERS],
    ) -> Option<(Request<RequestBody>, bool, Option<Feed>)> {
        let body_len = self.body.unwrap_or(0);
        let whole = body_len <= MAX_BODY as u64 && (buf.len() - self.len) as u64 >= body_len;
        let bytes = buf.split_to(self.len).freeze();
        let Some(headers) = crate::transport::codec::map_from_spans(&bytes, &spans[..self.count])
        else {
            restore(buf, &bytes);
            return None;
        };
        let target = self.target.0 as usize..self.target.1 as usize;
        let Ok(uri) = Uri::from_maybe_shared(bytes.slice(target)) else {
            restore(buf, &bytes);
            return None;
        };
        let mut feed = None;
        let body = if body_len == 0 {
            RequestBody::Empty
        } else if whole {
            RequestBody::Whole(buf.split_to(body_len as usize).freeze())
        } else {
            let (body, tx) = crate::body::Streamed::channel(body_len);
            feed = Some(Feed { tx, left: body_len });
            RequestBody::Streamed(body)
        };
        let mut req = Request::new(body);
        *req.method_mut() = self.method;
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = headers;
        Some((req, self.close, feed))
    }
}

/// Puts a head taken off `buf` back in front of it.
fn restore(buf: &mut BytesMut, head: &[u8]) {
    let mut whole = BytesMut::with_capacity(head.len() + buf.len());
    whole.extend_from_slice(head);
    whole.extend_from_slice(buf);
    *buf = whole;
}

/// How the answer's body goes on the wire.
enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// Writes the answer; `Ok(true)` when the connection can take another
/// request.
async fn write_response<S: Wire>(
    stream: &mut S,
    resp: Response<Body>,
    is_head: bool,
    keep_alive: bool,
    date: &mut DateCache,
) -> std::io::Result<bool> {
    let (parts, mut body) = resp.into_parts();
    let status = parts.status;
    let mut headers = parts.headers;
    let mut keep = keep_alive
        && !crate::headers::connection_tokens(&headers).any(|t| t.eq_ignore_ascii_case(b"close"));
    headers.remove(header::TRANSFER_ENCODING);
    let no_body_status = status.is_informational() || status == StatusCode::NO_CONTENT;
    if no_body_status {
        headers.remove(header::CONTENT_LENGTH);
    }
    let framing = if is_head || no_body_status || status == StatusCode::NOT_MODIFIED {
        Framing::None
    } else {
        let mut lengths = headers.get_all(header::CONTENT_LENGTH).iter();
        let declared = match (lengths.next(), lengths.next()) {
            (None, _) => None,
            (Some(v), None) => Some(
                std::str::from_utf8(v.as_bytes())
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok()),
            ),
            (Some(_), Some(_)) => Some(None),
        };
        match declared {
            Some(Some(n)) => Framing::Length(n),
            unknown => {
                if unknown.is_some() {
                    headers.remove(header::CONTENT_LENGTH);
                }
                match body.size_hint().exact() {
                    Some(n) => {
                        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
                        Framing::Length(n)
                    }
                    None => {
                        headers.insert(
                            header::TRANSFER_ENCODING,
                            HeaderValue::from_static("chunked"),
                        );
                        Framing::Chunked
                    }
                }
            }
        }
    };
    if !keep {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }

    let size: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    let mut out = Vec::with_capacity(size + 64 + if is_head { 0 } else { 1024 });
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !headers.contains_key(header::DATE) {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(date.now());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");

    let mut left = match framing {
        Framing::None => {
            stream.write_all(&out).await?;
            stream.flush().await?;
            return Ok(keep);
        }
        Framing::Length(n) => n,
        Framing::Chunked => u64::MAX,
    };
    let chunked = matches!(framing, Framing::Chunked);
    loop {
        // Frames the body has ready go out with the head, in one write.
        let next = match body.frame().now_or_never() {
            Some(next) => next,
            None => {
                if !out.is_empty() {
                    stream.write_all(&out).await?;
                    out.clear();
                }
                body.frame().await
            }
        };
        let data = match next {
            None => break,
            Some(Err(_)) => {
                // Too late for another status: cut the connection.
                keep = false;
                left = 0;
                break;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue, // trailers are not passed on
            },
        };
        if data.is_empty() {
            continue;
        }
        let mut data = data;
        if chunked {
            let _ = write!(out, "{:x}\r\n", data.len());
        } else {
            if data.len() as u64 > left {
                // More than the declared length: send what was declared.
                data.truncate(left as usize);
                keep = false;
            }
            left -= data.len() as u64;
        }
        if out.len() + data.len() <= COALESCE {
            out.extend_from_slice(&data);
        } else {
            stream.write_all(&out).await?;
            out.clear();
            stream.write_all(&data).await?;
        }
        if chunked {
            out.extend_from_slice(b"\r\n");
        } else if left == 0 {
            break;
        }
    }
    if chunked && keep {
        out.extend_from_slice(b"0\r\n\r\n");
    } else if !chunked && left > 0 {
        // The body ended before its declared length.
        keep = false;
    }
    if !out.is_empty() {
        stream.write_all(&out).await?;
    }
    // A no-op on TCP; over TLS, what rustls still holds goes out.
    stream.flush().await?;
    Ok(keep)
}

pin_project_lite::pin_project! {
    /// The socket of a [`Handover`] for hyper: the bytes already read come
    /// first, then the socket's own.
    pub struct Replay<S> {
        read: Bytes,
        #[pin]
        stream: S,
    }
}

impl<S> Replay<S> {
    pub fn new(handover: Handover<S>) -> Replay<S> {
        Replay {
            read: handover.read,
            stream: handover.stream,
        }
    }
}

impl<S: AsyncRead> AsyncRead for Replay<S> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.project();
        if !this.read.is_empty() {
            let n = this.read.len().min(out.remaining());
            out.put_slice(&this.read.split_to(n));
            return std::task::Poll::Ready(Ok(()));
        }
        this.stream.poll_read(cx, out)
    }
}

impl<S: AsyncWrite> AsyncWrite for Replay<S> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.project().stream.poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.project().stream.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.project().stream.poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.project().stream.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
