//! Just enough HTTP/2 by hand to send frames no well-behaved client would:
//! the client preface, SETTINGS, HEADERS/CONTINUATION with an HPACK block
//! made only of "literal without indexing, new name" fields (RFC 7541
//! §6.2.2, no Huffman), DATA, and a reader that sorts the server's frames.
//!
//! Does not own: any HPACK decoding beyond recognising the static-table
//! `:status: 200` (0x88) at the start of a response block.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::client::Stream;

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const DATA: u8 = 0;
pub const HEADERS: u8 = 1;
pub const RST_STREAM: u8 = 3;
pub const SETTINGS: u8 = 4;
pub const GOAWAY: u8 = 7;
pub const CONTINUATION: u8 = 9;
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

/// One frame: 9-byte header and payload.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// HPACK integer with an `n`-bit prefix (RFC 7541 §5.1), first byte `mask`.
fn integer(out: &mut Vec<u8>, mask: u8, n: u32, value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(mask | value as u8);
        return;
    }
    out.push(mask | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// A header block of literal fields without indexing, new names.
pub fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        integer(&mut out, 0, 7, name.len());
        out.extend_from_slice(name.as_bytes());
        integer(&mut out, 0, 7, value.len());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// The preface and an empty SETTINGS frame.
pub fn start() -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    out
}

/// How the server ended (or answered) stream 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A HEADERS frame on the stream; `true` if it starts with `:status: 200`.
    Answered { ok: bool },
    /// RST_STREAM on the stream, with its error code.
    Reset(u32),
    /// GOAWAY, with its error code.
    GoAway(u32),
    /// The connection closed without any of the above.
    Closed,
    /// Nothing decisive within the wait.
    Silent,
}

/// Reads frames until stream `stream` is answered, reset, or the
/// connection is told to go away or closes.
pub async fn outcome<R: AsyncRead + Unpin>(s: &mut R, stream: u32, wait: Duration) -> Outcome {
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        while buf.len() >= 9 {
            let len =
                (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
            if buf.len() < 9 + len {
                break;
            }
            let kind = buf[3];
            let id = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
            let payload: Vec<u8> = buf[9..9 + len].to_vec();
            buf.drain(..9 + len);
            let code = |at: usize| {
                payload
                    .get(at..at + 4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or(u32::MAX)
            };
            match kind {
                HEADERS if id == stream => {
                    return Outcome::Answered {
                        ok: payload.first() == Some(&0x88),
                    }
                }
                RST_STREAM if id == stream => return Outcome::Reset(code(0)),
                GOAWAY => return Outcome::GoAway(code(4)),
                _ => {}
            }
        }
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Err(_) => return Outcome::Silent,
            Ok(Ok(0)) | Ok(Err(_)) => return Outcome::Closed,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Connects (over TLS with ALPN `h2` on the TLS listener), sends the
/// preface, SETTINGS and `frames`.
pub async fn send(addr: std::net::SocketAddr, frames: &[Vec<u8>]) -> Stream {
    let mut s = super::client::connect_h2(addr).await;
    let mut all = start();
    for f in frames {
        all.extend_from_slice(f);
    }
    let _ = s.write_all(&all).await;
    s
}
