//! A watch on the HTTP/1 bytes of one client connection, for the one
//! smuggling shape hyper hides from its users: a request with both
//! `Content-Length` and `Transfer-Encoding`. hyper reads such a body as
//! chunked, drops the `Content-Length` before the request reaches the
//! gateway and closes the connection afterwards; RFC 9112 §6.3 says the
//! message "ought to be handled as an error", and so does the security
//! checklist (item 37). [`Watched`] passes every byte through unchanged
//! and raises the connection's [`Flag`]; [`crate::app`] answers 400 and
//! closes.
//!
//! [`Scanner`] follows the request stream as hyper frames it (heads,
//! `Content-Length` bodies, chunked bodies with trailers) so that body
//! bytes are never read as headers. Where it cannot follow (an upgrade, a
//! CONNECT, an HTTP/2 preface, a line it does not understand) it stops
//! watching: hyper stays the judge of what is valid, the watch only adds
//! refusals, never acceptances.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longest line prefix kept (header name and a short value). A framing
/// header longer than this stops the watch.
const KEEP: usize = 128;

/// Set once a request on the connection had both framing headers.
#[derive(Debug, Default)]
pub struct Flag(AtomicBool);

impl Flag {
    pub fn raised(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn raise(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before or inside a request head.
    Head,
    /// `n` more body bytes.
    Fixed(u64),
    /// A chunk-size line.
    ChunkSize,
    /// `n` more bytes of chunk data.
    ChunkData(u64),
    /// The line end after chunk data.
    ChunkEnd,
    /// Trailer lines after the last chunk.
    Trailers,
    /// Not watching any more.
    Off,
}

/// What the head seen so far said about framing.
#[derive(Debug, Default, Clone)]
struct Facts {
    started: bool,
    content_length: Option<u64>,
    lengths: usize,
    transfer_encoding: bool,
    chunked_last: bool,
    /// Upgrade or CONNECT: after this head the stream may stop being HTTP.
    tunnel: bool,
    /// A framing header this scanner could not read.
    unreadable: bool,
}

/// Follows the framing of a stream of HTTP/1 requests.
#[derive(Debug)]
pub struct Scanner {
    state: State,
    facts: Facts,
    line: Vec<u8>,
    /// The current line is longer than [`KEEP`].
    long: bool,
    ambiguous: bool,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            state: State::Head,
            facts: Facts::default(),
            // Most lines are used where they lie in the read; a buffer is
            // made only for one cut by the end of a read.
            line: Vec::new(),
            long: false,
            ambiguous: false,
        }
    }
}

impl Scanner {
    /// True once a request with both `Content-Length` and
    /// `Transfer-Encoding` went by.
    pub fn ambiguous(&self) -> bool {
        self.ambiguous
    }

    /// Whether the scanner still follows the stream.
    pub fn watching(&self) -> bool {
        self.state != State::Off
    }

    /// Takes the next bytes of the stream.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.state {
                State::Off => return,
                State::Fixed(n) | State::ChunkData(n) => {
                    let take = n.min(bytes.len() as u64);
                    bytes = &bytes[take as usize..];
                    let left = n - take;
                    self.state = match (self.state, left) {
                        (State::Fixed(_), 0) => State::Head,
                        (State::Fixed(_), l) => State::Fixed(l),
                        (_, 0) => State::ChunkEnd,
                        (_, l) => State::ChunkData(l),
                    };
                }
                _ => {
                    let Some(end) = memchr::memchr(b'\n', bytes) else {
                        self.keep(bytes);
                        return;
                    };
                    let part = &bytes[..end];
                    bytes = &bytes[end + 1..];
                    if self.line.is_empty() && !self.long {
                        // The whole line is in this read: no copy.
                        let line = part.strip_suffix(b"\r").unwrap_or(part);
                        let long = line.len() > KEEP;
                        self.line_done(&line[..line.len().min(KEEP)], long);
                    } else {
                        self.keep(part);
                        let mut line = std::mem::take(&mut self.line);
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                        // As for a line read whole: longer than KEEP once
                        // its CR is gone.
                        let long = std::mem::replace(&mut self.long, false) || line.len() > KEEP;
                        line.truncate(KEEP);
                        self.line_done(&line, long);
                        line.clear();
                        self.line = line;
                    }
                }
            }
        }
    }

    /// Keeps the start of a line that continues in the next read (one byte
    /// more than [`KEEP`], for the CR that may end it).
    fn keep(&mut self, part: &[u8]) {
        let room = (KEEP + 1).saturating_sub(self.line.len());
        if part.len() > room {
            self.long = true;
        }
        self.line.extend_from_slice(&part[..part.len().min(room)]);
    }

    fn line_done(&mut self, line: &[u8], long: bool) {
        match self.state {
            State::Head => self.head_line(line, long),
            State::ChunkSize => {
                let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
                let size = std::str::from_utf8(&line[..digits])
                    .ok()
                    .and_then(|d| u64::from_str_radix(d, 16).ok());
                self.state = match size {
                    _ if long => State::Off,
                    Some(0) => State::Trailers,
                    Some(n) => State::ChunkData(n),
                    None => State::Off,
                };
            }
            State::ChunkEnd => {
                self.state = if line.is_empty() {
                    State::ChunkSize
                } else {
                    State::Off
                };
            }
            State::Trailers => {
                if line.is_empty() {
                    self.state = State::Head;
                }
            }
            State::Fixed(_) | State::ChunkData(_) | State::Off => {}
        }
    }

    fn head_line(&mut self, line: &[u8], long: bool) {
        let f = &mut self.facts;
        if !f.started {
            // Empty lines before a request line are skipped, as hyper does.
            if line.is_empty() {
                return;
            }
            f.started = true;
            if line.starts_with(b"PRI ") {
                // The HTTP/2 preface: not ours to follow.
                self.state = State::Off;
            } else if line.starts_with(b"CONNECT ") {
                f.tunnel = true;
            }
            return;
        }
        if !line.is_empty() {
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                return;
            };
            let name = &line[..colon];
            let value = line[colon + 1..].trim_ascii();
            if name.eq_ignore_ascii_case(b"content-length") {
                f.lengths += 1;
                let parsed = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok());
                match parsed {
                    Some(n) if !long && f.content_length.is_none_or(|m| m == n) => {
                        f.content_length = Some(n)
                    }
                    _ => f.unreadable = true,
                }
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                f.transfer_encoding = true;
                if long {
                    f.unreadable = true;
                }
                f.chunked_last = value
                    .rsplit(|b| *b == b',')
                    .next()
                    .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case(b"upgrade") {
                f.tunnel = true;
            }
            return;
        }
        // The end of the head: decide how the body is framed.
        let f = std::mem::take(&mut self.facts);
        if f.transfer_encoding && f.lengths > 0 {
            self.ambiguous = true;
            self.state = State::Off;
            return;
        }
        self.state = if f.tunnel || f.unreadable {
            State::Off
        } else if f.transfer_encoding {
            if f.chunked_last {
                State::ChunkSize
            } else {
                State::Off
            }
        } else {
            match f.content_length {
                Some(n) if n > 0 => State::Fixed(n),
                _ => State::Head,
            }
        };
    }
}

/// A client stream whose incoming bytes go through a [`Scanner`].
pub struct Watched<I> {
    io: I,
    scanner: Scanner,
    flag: Arc<Flag>,
}

impl<I> Watched<I> {
    pub fn new(io: I, flag: Arc<Flag>) -> Watched<I> {
        Watched {
            io,
            scanner: Scanner::default(),
            flag,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if this.scanner.watching() {
            this.scanner.feed(&buf.filled()[before..]);
            if this.scanner.ambiguous() {
                this.flag.raise();
            }
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(chunks: &[&[u8]]) -> Scanner {
        let mut s = Scanner::default();
        for c in chunks {
            s.feed(c);
        }
        s
    }

    /// Every split of `input` into two reads gives the same verdict.
    fn verdict(input: &[u8]) -> (bool, bool) {
        let whole = scan(&[input]);
        for i in 0..input.len() {
            let split = scan(&[&input[..i], &input[i..]]);
            assert_eq!(
                (split.ambiguous(), split.watching()),
                (whole.ambiguous(), whole.watching()),
                "split at {i} of {:?}",
                String::from_utf8_lossy(input)
            );
        }
        (whole.ambiguous(), whole.watching())
    }

    #[test]
    fn both_framing_headers_in_either_order_are_ambiguous() {
        for head in [
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 10\r\n\r\n",
            "POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\nCONTENT-LENGTH: 10\r\ntransfer-encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\nContent-Length: 0\nTransfer-Encoding: chunked\n\n",
        ] {
            assert!(verdict(head.as_bytes()).0, "{head:?}");
        }
    }

    #[test]
    fn bodies_are_skipped_not_read_as_heads() {
        // A body that looks like a head with both headers, sent with a
        // length, then chunked, then a clean request: nothing ambiguous.
        let fake = "X: 1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let stream = format!(
            "POST /a HTTP/1.1\r\nContent-Length: {}\r\n\r\n{fake}\
             POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x};ext=1\r\n{fake}\r\n0\r\nTrailer: x\r\n\r\n\
             GET /c HTTP/1.1\r\nHost: a\r\n\r\n",
            fake.len(),
            fake.len()
        );
        assert_eq!(verdict(stream.as_bytes()), (false, true));
        // And after all that, a real ambiguous head is still seen.
        let more = format!(
            "{stream}POST /d HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        assert!(verdict(more.as_bytes()).0);
    }

    #[test]
    fn the_watch_stops_where_it_cannot_follow() {
        for stream in [
            "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            "CONNECT a:443 HTTP/1.1\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert_eq!(verdict(stream.as_bytes()), (false, false), "{stream:?}");
        }
    }

    /// Found by the `framing` fuzz target: a chunk-size line of exactly
    /// KEEP bytes before its CR was "long" only when it came byte by byte.
    #[test]
    fn a_line_of_exactly_keep_bytes_is_not_long_however_it_arrives() {
        let filler = "x".repeat(KEEP - 1);
        let stream = format!(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0{filler}\r\n\r\nGET / HTTP/1.1\r\n\r\n"
        );
        assert_eq!(verdict(stream.as_bytes()), (false, true));
        let longer = stream.replacen(&filler, &format!("{filler}y"), 1);
        assert_eq!(verdict(longer.as_bytes()), (false, false));
    }

    #[test]
    fn a_long_line_is_bounded() {
        let long = format!(
            "GET / HTTP/1.1\r\nX-Pad: {}\r\nContent-Length: 0\r\n\r\n",
            "a".repeat(100_000)
        );
        let s = scan(&[long.as_bytes()]);
        assert!(s.line.capacity() <= 2 * KEEP);
        assert_eq!((s.ambiguous(), s.watching()), (false, true));
    }
}
