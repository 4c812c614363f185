//! A small HTTP/1.1 client for requests without a body (GET, HEAD and the
//! like: nearly all page loads), with a small one already read whole
//! (sent in the head's write), or with a `Content-Length` body the own
//! loop streams (written after the head, chunk by chunk as it comes), run
//! in the task that serves the client.
//!
//! hyper's client drives each connection from a task of its own and hands
//! requests, answers and body chunks across channels; for a body-less
//! request that costs more than the proxying itself. Here the request head
//! is written and the answer's head read in place, and the body is read
//! from the socket when the server side asks for it ([`RawBody`]), so one
//! request is one task. Requests with hyper's streamed bodies, and
//! WebSocket upgrades, go through hyper's client ([`super::pool`]).
//!
//! A streamed body is written whole before the answer is awaited, unless
//! the answer comes first: an upstream that answers (a 413, a 401) before
//! it has read the body gets no more of it, its answer is passed on, and
//! the connection is closed after it. A body that fails (the client went
//! away, or stalled past `body_read_timeout`) fails the exchange with the
//! body's error, and the connection is closed.
//!
//! Reading follows RFC 9112 §6.3: no body after HEAD, 1xx, 204 and 304;
//! `Transfer-Encoding` ending in `chunked` is decoded (trailers are passed
//! on); any other `Transfer-Encoding`, or neither header, reads to the
//! close; `Content-Length` values must agree. An answer with both
//! `Content-Length` and `Transfer-Encoding`, a malformed head, or a head
//! over [`MAX_HEAD`] is refused (502); interim 1xx answers are skipped. A
//! connection is reused only when its answer was read to the end, framed
//! by length or chunks, without `Connection: close`, with no byte after it
//! (not in the buffer, and not readable on the socket when the pool hands
//! the connection out again: [`quiet`]); anything else closes it. The
//! connection's own headers (hop-by-hop, and any that `Connection` names)
//! are read here and not passed on.
//!
//! The reading itself is a state machine over a buffer ([`next_head`],
//! [`Decoder`], [`reusable`]); the socket code only fills the buffer.
//! [`read_answer`] runs the same machine over a list of reads, so that the
//! reuse verdict can be checked for any bytes and any split into reads
//! (the `h1_answer` fuzz target and `tests/upstream_reuse.rs`).

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode, Version};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::body::BoxError;
use crate::transport::codec::{self, Span};

/// Largest answer head (status line and headers) accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most headers in one answer head.
const MAX_HEADERS: usize = 128;
/// Longest chunk-size or trailer line.
const MAX_LINE: usize = 4096;
/// Room made for the answer's head (most heads and many whole answers fit).
const READ_HEAD: usize = 4 * 1024;
/// Room made for each read of a body.
const READ_BODY: usize = 16 * 1024;

/// One upstream connection and the bytes read from it but not yet used.
pub struct RawConn {
    stream: TcpStream,
    buf: BytesMut,
    /// Until when the current request waits for its answer's head. One
    /// timer for the connection's life, moved on for each request: moving
    /// a registered timer later is one compare-and-swap (tokio files it
    /// again only when its old slot comes due), while a new timer for each
    /// request goes into tokio's timer wheel and out again.
    deadline: Pin<Box<Sleep>>,
}

impl RawConn {
    /// A new connection, its first request's answer due by `deadline`.
    pub fn new(stream: TcpStream, deadline: Instant) -> RawConn {
        RawConn {
            stream,
            buf: BytesMut::new(),
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }

    /// The answer to the next request on this connection is due by `at`.
    pub fn set_deadline(&mut self, at: Instant) {
        self.deadline.as_mut().reset(at);
    }

    /// Whether this idle connection may carry another request: nothing at
    /// all is readable on it (see [`quiet`]).
    pub fn is_quiet(&self) -> bool {
        quiet(&self.stream)
    }
}

pub use crate::transport::codec::quiet;

/// Why an exchange failed.
#[derive(Debug)]
pub enum ExchangeError {
    /// Reading or writing failed; `answered` tells whether any byte of an
    /// answer had arrived (if not, a reused connection may just have been
    /// closed while idle, and an idempotent request can be sent again).
    Io {
        error: std::io::Error,
        answered: bool,
    },
    /// The answer is not HTTP/1.x as this client accepts it.
    Malformed(&'static str),
    /// The answer's head did not come before the connection's deadline
    /// ([`RawConn::set_deadline`]).
    TimedOut,
    /// The client's streamed request body failed (see
    /// [`crate::body::client_body`] for what its error holds).
    ClientBody(BoxError),
}

impl std::fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExchangeError::Io { error, .. } => write!(f, "{error}"),
            ExchangeError::Malformed(what) => write!(f, "malformed answer: {what}"),
            ExchangeError::TimedOut => f.write_str("no answer before the deadline"),
            ExchangeError::ClientBody(e) => write!(f, "{e}"),
        }
    }
}

impl ExchangeError {
    /// A request that got no byte of an answer on a reused connection.
    pub fn unanswered(&self) -> bool {
        matches!(
            self,
            ExchangeError::Io {
                answered: false,
                ..
            }
        )
    }
}

/// Methods that may be sent again when a reused connection turned out to
/// be closed (RFC 9110 §9.2.2).
pub fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// How the answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Writes `head` (and `body`, a streamed one, after it) and reads the
/// answer's head, all by the connection's deadline. On success the
/// connection (with what was read past the head) is inside the returned
/// body.
pub async fn exchange(
    mut conn: RawConn,
    head: &[u8],
    method: &Method,
    body: Option<crate::body::Body>,
) -> Result<(http::response::Parts, RawBody), ExchangeError> {
    let RawConn {
        stream,
        buf,
        deadline,
    } = &mut conn;
    let answer = tokio::select! {
        biased;
        answer = write_and_read_head(stream, buf, head, method, body) => answer?,
        () = deadline.as_mut() => return Err(ExchangeError::TimedOut),
    };
    let (parts, framing, keep_alive) = answer;
    Ok((parts, RawBody::new(conn, framing, keep_alive)))
}

async fn write_and_read_head(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    head: &[u8],
    method: &Method,
    body: Option<crate::body::Body>,
) -> Result<Head, ExchangeError> {
    let io = |answered: bool| move |error| ExchangeError::Io { error, answered };
    stream.write_all(head).await.map_err(io(false))?;
    if let Some(body) = body {
        // Boxed: only streamed bodies take this way, and the future of
        // every other exchange stays as small as before.
        if let Some(early) = Box::pin(request_body::write(stream, buf, body, method)).await? {
            return Ok(early);
        }
    }
    loop {
        if let Some(head) = next_head(buf, method)? {
            return Ok(head);
        }
        buf.reserve(READ_HEAD);
        let answered = !buf.is_empty();
        let n = stream.read_buf(buf).await.map_err(io(answered))?;
        if n == 0 {
            return Err(ExchangeError::Io {
                error: std::io::ErrorKind::UnexpectedEof.into(),
                answered,
            });
        }
    }
}

/// An answer's head: its parts, how its body is framed, and whether the
/// connection may carry another request after it.
type Head = (http::response::Parts, Framing, bool);

/// The final answer's head off the front of `buf` (interim 1xx answers
/// are taken off and skipped); `None` while it is incomplete. What is
/// left in `buf` is what came after the head.
fn next_head(buf: &mut BytesMut, method: &Method) -> Result<Option<Head>, ExchangeError> {
    loop {
        if buf.is_empty() {
            return Ok(None);
        }
        match parse_head(buf, method)? {
            // 100 Continue, 103 Early Hints: the real answer follows.
            Some((parts, ..)) if parts.status.is_informational() => continue,
            Some(head) => return Ok(Some(head)),
            None if buf.len() > MAX_HEAD => return Err(ExchangeError::Malformed("head too large")),
            None => return Ok(None),
        }
    }
}
/// Parses one answer head off the front of `buf`; `None` if incomplete.
fn parse_head(buf: &mut BytesMut, method: &Method) -> Result<Option<Head>, ExchangeError> {
    // Uninitialised slots: filling 128 empty headers per parse costs more
    // than parsing a short head.
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut parsed,
        buf,
        &mut slots,
    ) {
        // Longer than the limit: refused however the bytes arrived (while
        // incomplete, [`next_head`] refuses it past the same limit).
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD => {
            return Err(ExchangeError::Malformed("head too large"))
        }
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ExchangeError::Malformed("too many headers"))
        }
        Err(_) => return Err(ExchangeError::Malformed("unparsable head")),
    };
    let code = parsed.code.ok_or(ExchangeError::Malformed("no status"))?;
    let status = StatusCode::from_u16(code).map_err(|_| ExchangeError::Malformed("status code"))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(ExchangeError::Malformed("an upgrade nobody asked for"));
    }
    let http11 = parsed.version == Some(1);
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    let mut close = !http11;
    // `Connection` names a header besides the hop-by-hop ones.
    let mut names_others = false;
    // Where each name and value is in `buf`: the values are taken as
    // slices of the head once it is split off, not copied one by one.
    let mut spans: [Span; MAX_HEADERS] = [(0, 0, 0, 0); MAX_HEADERS];
    let count = parsed.headers.len();
    for (span, h) in spans.iter_mut().zip(parsed.headers.iter()) {
        let name = h.name.as_bytes();
        let h_value = h.value;
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = std::str::from_utf8(h_value)
                .ok()
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(ExchangeError::Malformed("Content-Length"))?;
            if length.is_some_and(|m| m != n) {
                return Err(ExchangeError::Malformed("differing Content-Length"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encoding = true;
            chunked = h_value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in crate::headers::tokens(h_value) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && !http11 {
                    close = false;
                } else if !crate::headers::token_is_hop_by_hop(token) {
                    names_others = true;
                }
            }
        }
        *span = codec::span(buf, name, h_value);
    }
    if transfer_encoding && length.is_some() {
        return Err(ExchangeError::Malformed(
            "both Content-Length and Transfer-Encoding",
        ));
    }
    // The connection's own headers (RFC 9110 §7.6.1) end here: the
    // hop-by-hop ones and any that `Connection` names.
    let mut kept = 0;
    for i in 0..count {
        let (ns, ne, _, _) = spans[i];
        let name = buf.get(ns as usize..ne as usize).unwrap_or_default();
        let named = names_others
            && parsed
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("connection"))
                .flat_map(|h| crate::headers::tokens(h.value))
                .any(|t| t.eq_ignore_ascii_case(name));
        if !named && !crate::headers::token_is_hop_by_hop(name) {
            spans[kept] = spans[i];
            kept += 1;
        }
    }
    let head = buf.split_to(len).freeze();
    let headers = codec::map_from_spans(&head, &spans[..kept])
        .ok_or(ExchangeError::Malformed("header name or value"))?;
    let framing = if *method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::Empty
    } else if transfer_encoding {
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else {
        match length {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    let keep_alive = !close && framing != Framing::UntilClose;
    let (mut parts, ()) = Response::new(()).into_parts();
    parts.status = status;
    parts.version = Version::HTTP_11;
    parts.headers = headers;
    Ok(Some((parts, framing, keep_alive)))
}

/// Where the chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

/// What the body decoder made of the buffer.
enum Decoded {
    Frame(Frame<Bytes>),
    /// More bytes are needed.
    NeedMore,
    /// The body has ended by its framing.
    End,
}

/// The body decoder: takes the body of one answer off the front of a
/// buffer, as far as the buffer goes, and never a byte past its end.
struct Decoder {
    state: State,
    trailers: Option<HeaderMap>,
}

impl Decoder {
    fn new(framing: Framing) -> Decoder {
        let state = match framing {
            Framing::Empty => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(Chunk::Size),
            Framing::UntilClose => State::UntilClose,
        };
        Decoder {
            state,
            trailers: None,
        }
    }

    fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The next frame from `buf`. After a frame, [`Decoder::is_done`] tells
    /// whether it was the last.
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, BoxError> {
        loop {
            match self.state {
                State::Done => return Ok(Decoded::End),
                State::Length(_) | State::UntilClose if buf.is_empty() => {
                    return Ok(Decoded::NeedMore)
                }
                State::Length(left) => {
                    let take = left.min(buf.len() as u64);
                    let data = buf.split_to(take as usize).freeze();
                    self.state = if take == left {
                        State::Done
                    } else {
                        State::Length(left - take)
                    };
                    return Ok(Decoded::Frame(Frame::data(data)));
                }
                State::UntilClose => return Ok(Decoded::Frame(Frame::data(buf.split().freeze()))),
                State::Chunked(at) => match self.step_chunked(at, buf) {
                    Ok(Some(decoded)) => return Ok(decoded),
                    Ok(None) => continue,
                    Err(e) => {
                        self.state = State::Done;
                        return Err(e);
                    }
                },
            }
        }
    }

    /// The upstream closed the connection: the end of a body read to the
    /// close, else an answer cut short.
    fn eof(&mut self) -> Result<(), BoxError> {
        let state = std::mem::replace(&mut self.state, State::Done);
        match state {
            State::UntilClose | State::Done => Ok(()),
            _ => Err("the upstream closed before the end of its answer".into()),
        }
    }

    /// One step of the chunked decoder over `buf`; `None` when something
    /// was used up and the next step may go on.
    fn step_chunked(&mut self, at: Chunk, buf: &mut BytesMut) -> Result<Option<Decoded>, BoxError> {
        match at {
            Chunk::Size => {
                let Some(line) = take_line(buf)? else {
                    return Ok(Some(Decoded::NeedMore));
                };
                let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
                let rest = &line[digits..];
                if digits == 0
                    || digits > 16
                    || !(rest.is_empty() || rest[0] == b';' || rest[0] == b' ' || rest[0] == b'\t')
                {
                    return Err("bad chunk size".into());
                }
                let size = std::str::from_utf8(&line[..digits])
                    .ok()
                    .and_then(|d| u64::from_str_radix(d, 16).ok())
                    .ok_or("bad chunk size")?;
                self.state = State::Chunked(if size == 0 {
                    Chunk::Trailers
                } else {
                    Chunk::Data(size)
                });
                Ok(None)
            }
            Chunk::Data(_) if buf.is_empty() => Ok(Some(Decoded::NeedMore)),
            Chunk::Data(left) => {
                let take = left.min(buf.len() as u64);
                let data = buf.split_to(take as usize).freeze();
                self.state = State::Chunked(if take == left {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left - take)
                });
                Ok(Some(Decoded::Frame(Frame::data(data))))
            }
            Chunk::DataEnd => {
                let Some(line) = take_line(buf)? else {
                    return Ok(Some(Decoded::NeedMore));
                };
                if !line.is_empty() {
                    return Err("chunk data longer than its size".into());
                }
                self.state = State::Chunked(Chunk::Size);
                Ok(None)
            }
            Chunk::Trailers => {
                let Some(line) = take_line(buf)? else {
                    return Ok(Some(Decoded::NeedMore));
                };
                if line.is_empty() {
                    self.state = State::Done;
                    return Ok(Some(match self.trailers.take() {
                        Some(t) => Decoded::Frame(Frame::trailers(t)),
                        None => Decoded::End,
                    }));
                }
                let Some(colon) = line.iter().position(|b| *b == b':') else {
                    return Err("bad trailer".into());
                };
                let name = HeaderName::from_bytes(&line[..colon]).map_err(|_| "bad trailer")?;
                let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii())
                    .map_err(|_| "bad trailer")?;
                let trailers = self.trailers.get_or_insert_with(HeaderMap::new);
                if trailers.len() >= MAX_HEADERS {
                    return Err("too many trailers".into());
                }
                trailers.append(name, value);
                Ok(None)
            }
        }
    }
}

/// One line (without CRLF) off the front of `buf`, if a whole one is
/// there. A line over [`MAX_LINE`] is refused whether or not its end has
/// arrived yet.
fn take_line(buf: &mut BytesMut) -> Result<Option<Bytes>, BoxError> {
    match memchr::memchr(b'\n', buf) {
        Some(end) if end > MAX_LINE => Err("chunk line too long".into()),
        Some(end) => {
            let mut line = buf.split_to(end + 1).freeze();
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.truncate(end - 1);
            }
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE => Err("chunk line too long".into()),
        None => Ok(None),
    }
}

/// Whether a connection whose answer has ended by its framing may carry
/// another request: the answer allowed it (`keep_alive`), no byte after
/// the answer is buffered (`leftover`), and none was readable (`late`,
/// which the pool checks with [`quiet`] when it hands the connection out).
/// Any byte past an answer means the upstream and the gateway no longer
/// agree where answers end: such a connection is closed, never reused.
pub fn reusable(keep_alive: bool, leftover: &[u8], late: bool) -> bool {
    keep_alive && leftover.is_empty() && !late
}

/// Called with the connection once its answer has been read to the end
/// and it may carry another request.
pub type GiveBack = Box<dyn FnOnce(RawConn) + Send + Sync>;

/// The upstream's answer body, read straight from its connection.
pub struct RawBody {
    conn: Option<RawConn>,
    decoder: Decoder,
    keep_alive: bool,
    give_back: Option<GiveBack>,
}

impl RawBody {
    fn new(conn: RawConn, framing: Framing, keep_alive: bool) -> RawBody {
        RawBody {
            conn: Some(conn),
            decoder: Decoder::new(framing),
            keep_alive,
            give_back: None,
        }
    }

    /// Sets where the connection goes when the body has been read; with no
    /// body at all that happens at once.
    pub fn on_done(&mut self, give_back: GiveBack) {
        self.give_back = Some(give_back);
        if self.decoder.is_done() {
            self.finish();
        }
    }

    /// The whole body and the connection (when it may carry another
    /// request), if the body is framed by length and already buffered: a
    /// short answer usually arrives with its head, and then needs no
    /// reading from the socket and no [`RawBody::on_done`]. Otherwise the
    /// body as it was.
    #[allow(clippy::result_large_err)] // returned by value once, never stored
    pub fn into_whole(mut self) -> Result<(Bytes, Option<RawConn>), RawBody> {
        let State::Length(n) = self.decoder.state else {
            return Err(self);
        };
        let whole = match (usize::try_from(n), self.conn.as_mut()) {
            (Ok(n), Some(conn)) if conn.buf.len() >= n => conn.buf.split_to(n).freeze(),
            _ => return Err(self),
        };
        Ok((whole, self.end()))
    }

    fn finish(&mut self) {
        if let (Some(conn), Some(back)) = (self.end(), self.give_back.take()) {
            back(conn);
        }
    }

    /// The body is over: its connection, if it may carry another request.
    fn end(&mut self) -> Option<RawConn> {
        self.decoder.state = State::Done;
        let mut conn = self.conn.take()?;
        // Bytes past the answer would be a second answer nobody asked for:
        // such a connection is not reused. Bytes that arrive later are
        // seen when the pool hands it out ([`quiet`]).
        if !reusable(self.keep_alive, &conn.buf, false) {
            return None;
        }
        // An idle connection holds no buffer.
        conn.buf = BytesMut::new();
        Some(conn)
    }

    /// Reads more from the socket into the buffer; `Ok(0)` at the close.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        loop {
            conn.buf.reserve(READ_BODY);
            match conn.stream.try_read_buf(&mut conn.buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    ready!(conn.stream.poll_read_ready(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// The body failed: the connection is closed.
    fn fail(&mut self, e: BoxError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.conn = None;
        self.decoder.state = State::Done;
        Poll::Ready(Some(Err(e)))
    }
}

impl HttpBody for RawBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            // No connection: the body ended, failed or was given back.
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match this.decoder.decode(&mut conn.buf) {
                Ok(Decoded::Frame(frame)) => {
                    // With a known length the server stops polling after
                    // the last bytes: the connection goes back now.
                    if this.decoder.is_done() {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Ok(Decoded::End) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Decoded::NeedMore) => {}
                Err(e) => return this.fail(e),
            }
            // Nothing usable is buffered: read more.
            match ready!(this.poll_fill(cx)) {
                Ok(0) => {
                    this.conn = None;
                    return match this.decoder.eof() {
                        Ok(()) => Poll::Ready(None),
                        Err(e) => this.fail(e),
                    };
                }
                Ok(_) => {}
                Err(e) => return this.fail(Box::new(e)),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.state {
            State::Done => SizeHint::with_exact(0),
            State::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

mod answer;
pub use answer::{read_answer, Answer, Verdict};
mod request_body;

#[cfg(test)]
mod tests;
