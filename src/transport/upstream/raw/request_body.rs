//! A streamed request body on its way over a raw connection: written
//! after the head, frame by frame as the client's side yields it, while
//! the socket is watched for an answer that comes before the body is all
//! written (the upstream then gets no more of it, and the connection is
//! not reused).

use bytes::BytesMut;
use http::Method;
use hyper::body::Body as HttpBody;
use tokio::net::TcpStream;

use super::{next_head, ExchangeError, Head, READ_HEAD};

/// Writes a streamed request body, frame by frame as it comes, while
/// watching for an answer: one whose head arrives before the body is all
/// written ends the writing, and is returned with the connection marked
/// not to be reused (the upstream has not read the rest). `None` when the
/// body was written whole.
pub(super) async fn write(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    mut body: crate::body::Body,
    method: &Method,
) -> Result<Option<Head>, ExchangeError> {
    use http_body_util::BodyExt as _;
    let io = |answered: bool| move |error| ExchangeError::Io { error, answered };
    // Bytes still to write, by the body's own count: the head carries the
    // same `Content-Length`, which the own loop read it by.
    let mut left = body.size_hint().exact();
    loop {
        let frame = tokio::select! {
            biased;
            frame = body.frame() => frame,
            ready = stream.readable() => {
                ready.map_err(io(false))?;
                if let Some(head) = read_early(stream, buf, method)? {
                    return Ok(Some(head));
                }
                continue;
            }
        };
        let data = match frame {
            None => break,
            Some(Err(e)) => return Err(ExchangeError::ClientBody(e)),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
        };
        if let Some(n) = left.as_mut() {
            *n = n.saturating_sub(data.len() as u64);
        }
        let mut written = 0;
        while written < data.len() {
            tokio::select! {
                biased;
                ready = stream.writable() => {
                    ready.map_err(io(false))?;
                    match stream.try_write(&data[written..]) {
                        Ok(0) => return Err(io(false)(std::io::ErrorKind::WriteZero.into())),
                        Ok(n) => written += n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        // The upstream may have answered and closed: its
                        // answer, if there is one, counts.
                        Err(e) => {
                            return match read_early(stream, buf, method)? {
                                Some(head) => Ok(Some(head)),
                                None => Err(io(!buf.is_empty())(e)),
                            }
                        }
                    }
                }
                ready = stream.readable() => {
                    ready.map_err(io(false))?;
                    if let Some(head) = read_early(stream, buf, method)? {
                        return Ok(Some(head));
                    }
                }
            }
        }
    }
    if left.is_some_and(|n| n > 0) {
        return Err(ExchangeError::ClientBody(
            "the body ended before its Content-Length".into(),
        ));
    }
    Ok(None)
}

/// Reads what the upstream has sent while the body is still being
/// written; its answer's head if that is complete (the connection then
/// not to be reused).
fn read_early(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    method: &Method,
) -> Result<Option<Head>, ExchangeError> {
    let mut closed = false;
    loop {
        buf.reserve(READ_HEAD);
        match stream.try_read_buf(buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => {
                if buf.is_empty() {
                    return Err(ExchangeError::Io {
                        error: e,
                        answered: false,
                    });
                }
                break;
            }
        }
    }
    match next_head(buf, method)? {
        Some((parts, framing, _)) => Ok(Some((parts, framing, false))),
        // Closed without a whole answer: nothing more will come.
        None if closed => Err(ExchangeError::Io {
            error: std::io::ErrorKind::UnexpectedEof.into(),
            answered: !buf.is_empty(),
        }),
        None => Ok(None),
    }
}
