//! The own HTTP/1.1 loop's request parser (`h1::take_request`) against
//! hyper's server, the reference: for generated requests (methods,
//! targets, `Content-Length` spellings, several lengths, `Transfer-Encoding`,
//! bodies cut short or running on into a pipelined request, bare LF, odd
//! header names), every request the own loop takes must be the one hyper
//! reads from the same bytes: method, target, headers and body (a body
//! the loop streams is read as its pump reads it: that many bytes after
//! the head), and the request after it must start where hyper's does. What the own loop does
//! not take goes to hyper in the gateway, so it needs no comparison.
//!
//! `H1_DIFF_CASES=N` runs N cases (default 3,000; run it for minutes with
//! 1,000,000 before changing the parser), `H1_DIFF_SEED` picks the start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support {
    pub mod rng;
}

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use portcullis::body::RequestBody;
use portcullis::transport::downstream::h1::{take_request, Taken, MAX_HEADERS};
use support::rng::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A request as both sides are compared: method, target, the headers as
/// (name, value) pairs in order within each name, and the body.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

fn seen(parts: &http::request::Parts, body: Vec<u8>) -> Seen {
    let mut headers: Vec<(String, Vec<u8>)> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
        .collect();
    // HeaderMap keeps each name's values in order; across names the order
    // is its own. Sorting by name only (stable) compares like with like.
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    Seen {
        method: parts.method.to_string(),
        target: parts.uri.to_string(),
        headers,
        body,
    }
}

/// One generated request (or two, pipelined), as bytes on the wire.
fn generate(rng: &mut Rng) -> Vec<u8> {
    let eol = if rng.below(12) == 0 { "\n" } else { "\r\n" };
    let method = rng.pick(&[
        "GET", "GET", "POST", "POST", "PUT", "HEAD", "DELETE", "PATCH", "OPTIONS", "CONNECT",
        "get", "M-SEARCH",
    ]);
    let target = rng.pick(&[
        "/",
        "/a?b=c",
        "/x%20y",
        "*",
        "http://a.test/b",
        "/p/../q",
        "/ä",
        "//double",
        "/a b",
    ]);
    let version = if rng.below(8) == 0 {
        rng.pick(&["HTTP/1.0", "HTTP/1.2", "HTTP/2.0", "http/1.1"])
    } else {
        "HTTP/1.1"
    };
    let mut out = format!("{method} {target} {version}{eol}");
    if rng.below(10) != 0 {
        out += &format!("Host: a.test{eol}");
    }
    let lengths = [
        "0",
        "1",
        "5",
        "12",
        "05",
        "+5",
        " 5",
        "5 ",
        "5,5",
        "5, 5",
        "16384",
        "16385",
        "20000",
        "70000",
        "999999999999999",
        "1000000000000000",
        "-1",
        "abc",
        "0x5",
        "99999999999999999999",
        "",
    ];
    let mut declared: Option<usize> = None;
    let count = [0, 0, 0, 1, 1, 1, 1, 1, 2, 3][rng.below(10)];
    for _ in 0..count {
        let v = if rng.below(2) == 0 {
            rng.pick(&["0", "1", "5", "12", "300", "16384"])
        } else {
            rng.pick(&lengths)
        };
        let name = rng.pick(&[
            "Content-Length",
            "content-length",
            "CONTENT-LENGTH",
            "Content-Length ",
        ]);
        out += &format!("{name}:{v}{eol}");
        if declared.is_none() {
            declared = v.trim().parse().ok();
        }
    }
    for _ in 0..rng.below(4) {
        out += match rng.below(16) {
            0 => "Transfer-Encoding: chunked",
            1 => "Connection: close",
            2 => "Expect: 100-continue",
            3 => "X-Folded: a\r\n b",
            4 => "Bad Name: x",
            5 => "Upgrade: websocket",
            6 => "Transfer-Encoding: identity",
            7 | 8 => "X-Empty:",
            9 | 10 => "Cookie: a=b; c=d",
            11 | 12 => "Connection: keep-alive",
            _ => "X-Thing:  spaced value  ",
        };
        out += eol;
    }
    out += eol;
    let mut bytes = out.into_bytes();
    let want = declared.unwrap_or(0).min(80_000);
    let len = match rng.below(5) {
        0 => want.saturating_sub(1 + rng.below(3)),
        1 => want + rng.below(3),
        _ => want,
    };
    bytes.extend((0..len).map(|i| b"hello world\r\n"[i % 13]));
    if rng.below(3) == 0 {
        bytes.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: a.test\r\n\r\n");
    }
    bytes
}

/// What the own loop takes off the front of `data`, request after request
/// (up to one that asks to close).
fn own(data: &[u8]) -> Vec<Seen> {
    let mut buf = BytesMut::from(data);
    let mut out = Vec::new();
    while let Taken::Request(req, close, feed) = take_request(&mut buf, MAX_HEADERS) {
        let (parts, body) = req.into_parts();
        let body = match (body, feed) {
            (RequestBody::Whole(b), None) => b.to_vec(),
            (RequestBody::Empty, None) => Vec::new(),
            // Streamed: the pump takes the body's bytes off the front of
            // what follows the head; when the input ends first, the body
            // is cut short (an error for its reader, hyper's too), and the
            // loop reads no more.
            (RequestBody::Streamed(_), Some(feed)) => {
                let left = usize::try_from(feed.left).unwrap_or(usize::MAX);
                if buf.len() < left {
                    break;
                }
                buf.split_to(left).to_vec()
            }
            _ => panic!("a body the own loop should not make"),
        };
        out.push(seen(&parts, body));
        if close {
            // The loop answers with `Connection: close` and reads no more.
            break;
        }
    }
    out
}

/// The requests hyper's HTTP/1 server reads from `data` (then the end of
/// the input), in order.
async fn hyper_reads(data: Vec<u8>) -> Vec<Seen> {
    let (mut client, server) = tokio::io::duplex(1 << 20);
    let got = Arc::new(Mutex::new(Vec::new()));
    let log = got.clone();
    let svc = service_fn(move |req: Request<Incoming>| {
        let log = log.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|c| c.to_bytes().to_vec())
                .unwrap_or_else(|_| b"<body error>".to_vec());
            log.lock().unwrap().push(seen(&parts, body));
            Ok::<_, std::convert::Infallible>(Response::new(Empty::<Bytes>::new()))
        }
    });
    let serve = tokio::spawn(async move {
        let _ = hyper::server::conn::http1::Builder::new()
            .half_close(true)
            .serve_connection(TokioIo::new(server), svc)
            .await;
    });
    client.write_all(&data).await.unwrap();
    client.shutdown().await.unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut sink)).await;
    serve.abort();
    let out = std::mem::take(&mut *got.lock().unwrap());
    out
}

#[tokio::test]
async fn requests_the_own_loop_takes_are_the_ones_hyper_reads() {
    let cases: usize = std::env::var("H1_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let seed: u64 = std::env::var("H1_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_1234_abcd_0001);
    let mut rng = Rng(seed);
    let (mut taken, mut with_body) = (0usize, 0usize);
    for case in 0..cases {
        let data = generate(&mut rng);
        let ours = own(&data);
        if ours.is_empty() {
            continue;
        }
        taken += 1;
        with_body += usize::from(!ours[0].body.is_empty());
        let theirs = hyper_reads(data.clone()).await;
        assert!(
            theirs.len() >= ours.len(),
            "case {case}: hyper read {} requests, the own loop took {}: {:?}\n{:?}",
            theirs.len(),
            ours.len(),
            String::from_utf8_lossy(&data),
            ours
        );
        for (i, (o, h)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(
                o,
                h,
                "case {case}, request {i}: {:?}",
                String::from_utf8_lossy(&data)
            );
        }
    }
    eprintln!("{cases} cases, {taken} taken by the own loop, {with_body} with a body");
    // The generator must reach both kinds, or the comparison says little.
    assert!(taken > cases / 10, "only {taken} of {cases} taken");
    assert!(
        with_body > cases / 50,
        "only {with_body} of {cases} with a body"
    );
}
