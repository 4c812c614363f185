//! A model of reading one upstream answer without a socket: the same
//! state machine the raw client runs ([`super::next_head`],
//! [`super::Decoder`], [`super::reusable`]) fed with given reads, and the
//! verdict on the connection. For the `h1_answer` fuzz target and the
//! property tests; the gateway itself never calls it.

use bytes::BytesMut;
use http::{HeaderMap, Method};

use super::{next_head, reusable, Decoded, Decoder};

/// What became of one answer read by [`read_answer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Read to its end; the connection may carry another request.
    Reuse,
    /// Read to its end; the connection is closed.
    Close,
    /// The head is not an answer this client accepts (502).
    Refused,
    /// The body is malformed, or the upstream closed in its middle.
    Broken,
    /// Not over yet: more bytes are needed.
    Waiting,
}

/// One answer as [`read_answer`] read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: Option<u16>,
    pub body: Vec<u8>,
    pub trailers: Option<HeaderMap>,
    pub verdict: Verdict,
}

/// Reads the answer to a `method` request from `reads` (what successive
/// reads of the socket returned; empty ones are skipped) with the same
/// state machine the socket code runs ([`next_head`], [`Decoder`],
/// [`reusable`]), and says what becomes of the connection. `closed`: the
/// upstream closed the connection after the last read. Reads the answer
/// did not need stay "on the socket", as they would, and count as late
/// bytes when the connection is handed out again. No I/O: for the fuzz
/// target and the property tests.
pub fn read_answer(method: &Method, reads: &[&[u8]], closed: bool) -> Answer {
    let mut reads = reads.iter().filter(|r| !r.is_empty());
    let mut buf = BytesMut::new();
    let mut answer = Answer {
        status: None,
        body: Vec::new(),
        trailers: None,
        verdict: Verdict::Waiting,
    };
    // What the socket does when the buffer holds too little.
    let at_end = |answer: &mut Answer| {
        answer.verdict = if closed {
            Verdict::Broken
        } else {
            Verdict::Waiting
        };
    };
    let (parts, framing, keep_alive) = loop {
        match next_head(&mut buf, method) {
            Err(_) => {
                answer.verdict = Verdict::Refused;
                return answer;
            }
            Ok(Some(head)) => break head,
            Ok(None) => match reads.next() {
                Some(read) => buf.extend_from_slice(read),
                None => {
                    at_end(&mut answer);
                    return answer;
                }
            },
        }
    };
    answer.status = Some(parts.status.as_u16());
    let mut decoder = Decoder::new(framing);
    loop {
        match decoder.decode(&mut buf) {
            Ok(Decoded::Frame(frame)) => match frame.into_data() {
                Ok(data) => answer.body.extend_from_slice(&data),
                Err(frame) => answer.trailers = frame.into_trailers().ok(),
            },
            Ok(Decoded::End) => break,
            Ok(Decoded::NeedMore) => match reads.next() {
                Some(read) => buf.extend_from_slice(read),
                None if closed => match decoder.eof() {
                    Ok(()) => break,
                    Err(_) => {
                        answer.verdict = Verdict::Broken;
                        return answer;
                    }
                },
                None => {
                    answer.verdict = Verdict::Waiting;
                    return answer;
                }
            },
            Err(_) => {
                answer.verdict = Verdict::Broken;
                return answer;
            }
        }
    }
    let late = closed || reads.next().is_some();
    answer.verdict = if reusable(keep_alive, &buf, late) {
        Verdict::Reuse
    } else {
        Verdict::Close
    };
    answer
}
