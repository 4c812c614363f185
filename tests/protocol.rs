//! Protocol abuse over raw TCP against a running gateway, with a raw-TCP
//! upstream that records the exact bytes it received (tests/support/
//! raw_upstream.rs). Security checklist items 37-43 and 52; the table in
//! tests/README.md maps each item to its tests.
//!
//! Every refused request must be answered once, with 400 (or the named
//! limit status), on a connection the gateway then closes, and the upstream
//! must have received nothing at all (head-level errors) or no complete
//! request (errors inside a chunked body, found after the head was
//! forwarded). The strict reader in the raw upstream would flag any request
//! the gateway forwarded with both `Content-Length` and `Transfer-Encoding`,
//! a repeated length or a malformed chunk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::client::{connect, connect_h2, status_of, Stream};
use support::gateway::TestGateway;
use support::h2raw;
use support::raw_upstream::{Framing, RawUpstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// header_read_timeout of the gateway under test.
const HEADER_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a test waits for the gateway to close a connection.
const CLOSE_WITHIN: Duration = Duration::from_secs(3);

fn config(upstream: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:$PORT"
public_url = "http://127.0.0.1:$PORT"
header_read_timeout = "500ms"

[session]
secret_env = "PORTCULLIS_SECRET"

[[route]]
path = "/"
upstream = "{upstream}"
access = "public"
timeout = "1s"

[[route]]
path = "/admin"
upstream = "{upstream}"
"#
    )
}

async fn setup() -> (TestGateway, RawUpstream) {
    let up = RawUpstream::start().await;
    let gw = TestGateway::start(&config(&up.url())).await;
    (gw, up)
}

/// What came back on one connection.
struct Exchange {
    text: String,
    /// The gateway closed the connection (EOF or reset) within the wait.
    closed: bool,
}

impl Exchange {
    fn status(&self) -> u16 {
        status_of(&self.text)
    }
    /// How many responses (status lines) came back.
    fn responses(&self) -> usize {
        self.text.matches("HTTP/1.1 ").count() + self.text.matches("HTTP/1.0 ").count()
    }
}

/// Writes `bytes`, then reads until the gateway closes or `wait` passes.
async fn exchange(addr: std::net::SocketAddr, bytes: &[u8], wait: Duration) -> Exchange {
    let mut s = connect(addr).await;
    // The gateway may answer and close before everything is written.
    let _ = s.write_all(bytes).await;
    read_until_closed(&mut s, wait).await
}

async fn read_until_closed(s: &mut Stream, wait: Duration) -> Exchange {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let closed = loop {
        let mut buf = [0u8; 16 * 1024];
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => break false,
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    };
    Exchange {
        text: String::from_utf8_lossy(&out).into_owned(),
        closed,
    }
}

/// A request the gateway must refuse before anything goes upstream.
async fn refused_at_head(payload: &[u8], status: u16) {
    let (gw, up) = setup().await;
    let ex = exchange(gw.addr, payload, CLOSE_WITHIN).await;
    assert_eq!(ex.status(), status, "{}", ex.text);
    assert_eq!(ex.responses(), 1, "{}", ex.text);
    assert!(
        ex.closed,
        "connection left open after {status}: {}",
        ex.text
    );
    assert_eq!(
        up.bytes(),
        b"",
        "the upstream received something: {:?}",
        up.requests()
    );
}

/// A chunked body that goes wrong after the head was accepted: 400, closed,
/// and the upstream has no complete request (it may have seen the head).
async fn refused_in_body(payload: &[u8]) {
    let (gw, up) = setup().await;
    let ex = exchange(gw.addr, payload, CLOSE_WITHIN).await;
    assert!(up.complete().is_empty(), "{:?}", up.requests());
    assert_eq!(up.occurrences(b"/smuggled"), 0);
    assert_eq!(ex.responses(), 1, "{}", ex.text);
    assert!(ex.closed, "connection left open: {}", ex.text);
    assert_eq!(ex.status(), 400, "{}", ex.text);
}

const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: x.test\r\n\r\n";

fn post(headers: &str, body: &str) -> Vec<u8> {
    format!("POST /form HTTP/1.1\r\nHost: x.test\r\n{headers}\r\n{body}").into_bytes()
}

// ---- Item 37: the CL/TE matrix (hyper's role.rs inputs) ----

/// hyper drops the Content-Length before the gateway sees the request;
/// the framing watch on the raw bytes (`src/transport/downstream/framing.rs`) sees both.
#[tokio::test]
async fn g37_cl_then_te_is_400() {
    let body = format!("0\r\n\r\n{SMUGGLED}");
    refused_at_head(
        &post(
            "Content-Length: 10\r\nTransfer-Encoding: chunked\r\n",
            &body,
        ),
        400,
    )
    .await;
}

#[tokio::test]
async fn g37_te_then_cl_is_400() {
    let body = format!("0\r\n\r\n{SMUGGLED}");
    refused_at_head(
        &post(
            "Transfer-Encoding: chunked\r\nContent-Length: 10\r\n",
            &body,
        ),
        400,
    )
    .await;
}

/// What the gateway does today with CL+TE (both orders): hyper reads the
/// body as chunked, drops CL and closes the connection after answering.
/// Whatever the status, the upstream gets one request, framed one way
/// only, and the bytes after the last chunk are never read as a request.
#[tokio::test]
async fn g37_cl_and_te_never_reach_the_upstream_together() {
    for headers in [
        "Content-Length: 10\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 10\r\n",
    ] {
        let (gw, up) = setup().await;
        let body = format!("5\r\nhello\r\n0\r\n\r\n{SMUGGLED}");
        let ex = exchange(gw.addr, &post(headers, &body), CLOSE_WITHIN).await;
        assert!(ex.closed, "{headers:?}: connection kept open: {}", ex.text);
        assert_eq!(ex.responses(), 1, "{}", ex.text);
        let seen = up.requests();
        assert!(seen.len() <= 1, "{seen:?}");
        for r in &seen {
            assert!(r.is_complete(), "{r:?}");
            assert_eq!((r.method.as_str(), r.target.as_str()), ("POST", "/form"));
            assert_eq!(r.body, b"hello");
            assert!(
                r.all("content-length").is_empty() || r.all("transfer-encoding").is_empty(),
                "{r:?}"
            );
        }
        assert_eq!(up.occurrences(b"/smuggled"), 0);
    }
}

#[tokio::test]
async fn g37_te_gzip_cl_te_chunked_is_400() {
    refused_at_head(
        &post(
            "Transfer-Encoding: gzip\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n",
            "0\r\n\r\n",
        ),
        400,
    )
    .await;
}

#[tokio::test]
async fn g37_equal_duplicate_content_length_is_framed_once() {
    // Allowed by RFC 9110 §8.6: one body of 10 bytes, one upstream request
    // with one Content-Length, and the connection stays usable.
    let (gw, up) = setup().await;
    let mut req = post("Content-Length: 10\r\nContent-Length: 10\r\n", "0123456789");
    req.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n");
    let ex = exchange(gw.addr, &req, CLOSE_WITHIN).await;
    assert_eq!(ex.responses(), 2, "{}", ex.text);
    let seen = up.complete();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].target, "/form");
    assert_eq!(seen[0].body, b"0123456789");
    assert_eq!(seen[0].all("content-length"), vec!["10".to_string()]);
    assert_eq!(seen[1].target, "/next");
}

#[tokio::test]
async fn g37_differing_content_lengths_are_400() {
    refused_at_head(
        &post(
            "Content-Length: 10\r\nContent-Length: 11\r\n",
            "0123456789X",
        ),
        400,
    )
    .await;
}

#[tokio::test]
async fn g37_signed_content_length_is_400() {
    refused_at_head(&post("Content-Length: +10\r\n", "0123456789"), 400).await;
}

#[tokio::test]
async fn g37_te_gzip_alone_is_400() {
    refused_at_head(&post("Transfer-Encoding: gzip\r\n", "0\r\n\r\n"), 400).await;
}

#[tokio::test]
async fn g37_te_chunked_then_gzip_is_400() {
    refused_at_head(
        &post("Transfer-Encoding: chunked, gzip\r\n", "0\r\n\r\n"),
        400,
    )
    .await;
}

#[tokio::test]
async fn g37_te_chunked_then_afterlol_is_400() {
    refused_at_head(
        &post(
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: afterlol\r\n",
            "0\r\n\r\n",
        ),
        400,
    )
    .await;
}

#[tokio::test]
async fn g37_http10_with_chunked_is_400() {
    refused_at_head(
        b"POST /form HTTP/1.0\r\nHost: x.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    )
    .await;
}

/// A whole request hidden in a Content-Length body on a keep-alive
/// connection is body, never a second upstream request.
#[tokio::test]
async fn g37_request_hidden_in_a_body_is_not_a_second_request() {
    let (gw, up) = setup().await;
    let hidden = SMUGGLED.to_string();
    let req = post(&format!("Content-Length: {}\r\n", hidden.len()), &hidden);
    let mut s = connect(gw.addr).await;
    s.write_all(&req).await.unwrap();
    // Keep-alive: the connection stays open, with one answer on it.
    let ex = read_until_closed(&mut s, Duration::from_millis(700)).await;
    assert_eq!(ex.responses(), 1, "{}", ex.text);
    assert_eq!(ex.status(), 200, "{}", ex.text);
    let seen = up.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].target, "/form");
    assert_eq!(seen[0].framing, Framing::Length(hidden.len()));
    assert_eq!(seen[0].body, hidden.as_bytes());
    assert!(seen.iter().all(|r| r.target != "/smuggled"));
}

/// Classic TE.CL: the chunked reading wins, and the chunk that spells out
/// a request is delivered as body bytes of the one request.
#[tokio::test]
async fn g37_te_cl_smuggling_gives_one_upstream_request() {
    let (gw, up) = setup().await;
    let inner =
        "GPOST /smuggled HTTP/1.1\r\nHost: x.test\r\nContent-Length: 15\r\n\r\nx=1".to_string();
    let body = format!("{:x}\r\n{inner}\r\n0\r\n\r\n", inner.len());
    let req = post("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", &body);
    let _ = exchange(gw.addr, &req, CLOSE_WITHIN).await;
    let seen = up.requests();
    assert!(seen.len() <= 1, "{seen:?}");
    for r in &seen {
        assert_eq!(r.target, "/form");
        assert_eq!(r.body, inner.as_bytes());
    }
    assert!(seen.iter().all(|r| r.method != "GPOST"));
}

// ---- Item 38: HTTP Garden payloads ----

#[tokio::test]
async fn g38_te_comma_chunked_is_400() {
    refused_at_head(&post("Transfer-Encoding: ,chunked\r\n", "0\r\n\r\n"), 400).await;
}

#[tokio::test]
async fn g38_content_length_hex_is_400() {
    refused_at_head(&post("Content-Length: 0x10\r\n", "0123456789abcdef"), 400).await;
}

#[tokio::test]
async fn g38_content_length_1z_is_400() {
    refused_at_head(&post("Content-Length: 1Z\r\n", "x"), 400).await;
}

#[tokio::test]
async fn g38_space_before_colon_is_400() {
    refused_at_head(&post("Content-Length : 34\r\n", "x"), 400).await;
}

#[tokio::test]
async fn g38_empty_content_length_is_400() {
    refused_at_head(&post("Content-Length: \r\n", ""), 400).await;
}

#[tokio::test]
async fn g38_nul_after_bare_lf_in_a_header_is_400() {
    refused_at_head(
        &post("Content-Length: 0\r\nHeader: v\n\0\ralue\r\n", ""),
        400,
    )
    .await;
}

#[tokio::test]
async fn g38_header_named_colon_is_400() {
    refused_at_head(&post("Content-Length: 0\r\n: value\r\n", ""), 400).await;
}

#[tokio::test]
async fn g38_chunk_size_0_2e_is_400() {
    refused_in_body(&post(
        "Transfer-Encoding: chunked\r\n",
        &format!("0_2e\r\n\r\n{SMUGGLED}"),
    ))
    .await;
}

#[tokio::test]
async fn g38_empty_chunk_size_is_400() {
    refused_in_body(&post(
        "Transfer-Encoding: chunked\r\n",
        &format!("\r\n\r\n{SMUGGLED}"),
    ))
    .await;
}

#[tokio::test]
async fn g38_bare_lf_chunk_terminator_is_400() {
    refused_in_body(&post(
        "Transfer-Encoding: chunked\r\n",
        &format!("5\r\nhello\n0\r\n\r\n{SMUGGLED}"),
    ))
    .await;
}

// ---- Item 39: Host ----

#[tokio::test]
async fn g39_missing_host_is_400() {
    refused_at_head(b"GET / HTTP/1.1\r\n\r\n", 400).await;
}

#[tokio::test]
async fn g39_two_host_lines_are_400() {
    refused_at_head(
        b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
        400,
    )
    .await;
}

#[tokio::test]
async fn g39_host_with_a_path_is_400() {
    refused_at_head(b"GET / HTTP/1.1\r\nHost: a.test/path\r\n\r\n", 400).await;
}

#[tokio::test]
async fn g39_host_with_userinfo_is_400() {
    refused_at_head(b"GET / HTTP/1.1\r\nHost: evil@a.test\r\n\r\n", 400).await;
}

#[tokio::test]
async fn g39_absolute_form_disagreeing_with_host_is_400() {
    refused_at_head(
        b"GET http://public.test/admin HTTP/1.1\r\nHost: admin.test\r\n\r\n",
        400,
    )
    .await;
}

#[tokio::test]
async fn g39_absolute_form_agreeing_with_host_uses_its_path() {
    let (gw, up) = setup().await;
    let ex = exchange(
        gw.addr,
        b"GET http://public.test/page?q=1 HTTP/1.1\r\nHost: PUBLIC.test\r\nConnection: close\r\n\r\n",
        CLOSE_WITHIN,
    )
    .await;
    assert_eq!(ex.status(), 200, "{}", ex.text);
    let seen = up.complete();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].target, "/page?q=1");
    assert_eq!(seen[0].all("host"), vec!["PUBLIC.test".to_string()]);
}

// ---- Items 40 and 41: limits ----

fn get_with(headers: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: x.test\r\n{headers}Connection: close\r\n\r\n").into_bytes()
}

#[tokio::test]
async fn g40_101_headers_are_431_and_100_pass() {
    // Host and Connection count too: 98 + 2 = 100 headers pass, 99 + 2 do not.
    let (gw, up) = setup().await;
    let headers = |n: usize| (0..n).map(|i| format!("X-H{i}: v\r\n")).collect::<String>();
    let ok = exchange(gw.addr, &get_with(&headers(98)), CLOSE_WITHIN).await;
    assert_eq!(ok.status(), 200, "{}", ok.text);
    assert_eq!(up.complete().len(), 1);
    refused_at_head(&get_with(&headers(99)), 431).await;
}

#[tokio::test]
async fn g40_500_kb_header_block_is_431() {
    let big: String = (0..50)
        .map(|i| format!("X-Big{i}: {}\r\n", "b".repeat(10_000)))
        .collect();
    refused_at_head(&get_with(&big), 431).await;
}

#[tokio::test]
async fn g40_10_kb_uri_is_414() {
    let req = format!(
        "GET /{} HTTP/1.1\r\nHost: x.test\r\n\r\n",
        "a".repeat(10_000)
    );
    refused_at_head(req.as_bytes(), 414).await;
}

#[tokio::test]
async fn g40_70_kb_uri_is_414() {
    let req = format!(
        "GET /{} HTTP/1.1\r\nHost: x.test\r\n\r\n",
        "a".repeat(70_000)
    );
    refused_at_head(req.as_bytes(), 414).await;
}

async fn login_post(gw: &TestGateway, head: &str, body: &[u8]) -> Exchange {
    let mut s = connect(gw.addr).await;
    let req = format!(
        "POST /.portcullis/login HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nOrigin: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n{head}\r\n",
        gw.addr.port(),
        gw.origin()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let (mut rd, mut wr) = tokio::io::split(s);
    let body = body.to_vec();
    // Write the body while reading: the gateway may answer before it ends.
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&body).await;
        wr
    });
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + CLOSE_WITHIN;
    let closed = loop {
        let mut buf = [0u8; 16 * 1024];
        match tokio::time::timeout_at(deadline, rd.read(&mut buf)).await {
            Err(_) => break false,
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    };
    writer.abort();
    Exchange {
        text: String::from_utf8_lossy(&out).into_owned(),
        closed,
    }
}

#[tokio::test]
async fn g41_one_megabyte_sign_in_post_is_413() {
    let (gw, up) = setup().await;
    let body = vec![b'a'; 1024 * 1024];
    let ex = login_post(&gw, &format!("Content-Length: {}\r\n", body.len()), &body).await;
    assert_eq!(ex.status(), 413, "{}", ex.text);
    // Without a declared length the body is counted as it arrives.
    let mut chunked = Vec::new();
    for _ in 0..16 {
        chunked.extend_from_slice(format!("{:x}\r\n", 65536).as_bytes());
        chunked.extend_from_slice(&[b'a'; 65536]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let ex = login_post(&gw, "Transfer-Encoding: chunked\r\n", &chunked).await;
    assert_eq!(ex.status(), 413, "{}", ex.text);
    assert_eq!(up.bytes(), b"");
}

// ---- Item 42: slow clients ----

#[tokio::test]
async fn g42_trickled_head_is_closed_by_the_header_timeout() {
    let (gw, up) = setup().await;
    let mut s = connect(gw.addr).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: x.test\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // One byte every 100 ms never completes the head; the timeout counts
    // from the start of the head, so trickling does not extend it.
    let closed_at = loop {
        if s.write_all(b"X").await.is_err() {
            break started.elapsed();
        }
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break started.elapsed(),
            Ok(Ok(_)) => break started.elapsed(),
            Err(_) => {}
        }
        assert!(
            started.elapsed() < CLOSE_WITHIN,
            "still open after {CLOSE_WITHIN:?}"
        );
    };
    assert!(
        closed_at >= HEADER_TIMEOUT - Duration::from_millis(100),
        "{closed_at:?}"
    );
    assert_eq!(up.bytes(), b"");
}

#[tokio::test]
async fn g42_idle_keep_alive_connection_is_closed() {
    let (gw, _up) = setup().await;
    let mut s = connect(gw.addr).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: x.test\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let ex = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert_eq!(ex.status(), 200, "{}", ex.text);
    assert!(ex.closed, "an idle keep-alive connection was kept for 5 s");
    // hyper's header timer starts as soon as the connection waits for the
    // next head, so header_read_timeout is also the keep-alive idle timeout.
    assert!(
        started.elapsed() < HEADER_TIMEOUT * 4,
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn g42_missing_body_on_a_gateway_endpoint_is_408() {
    let (gw, _up) = setup().await;
    let ex = login_post(&gw, "Content-Length: 10\r\n", b"abc").await;
    assert_eq!(ex.status(), 408, "{}", ex.text);
    assert!(ex.closed);
}

#[tokio::test]
async fn g42_missing_body_on_a_proxied_route_ends_at_the_route_timeout() {
    // The route timeout (1 s) bounds the wait: 504, never a hang.
    let (gw, up) = setup().await;
    let mut s = connect(gw.addr).await;
    s.write_all(b"POST /slow HTTP/1.1\r\nHost: x.test\r\nContent-Length: 10\r\n\r\nabc")
        .await
        .unwrap();
    let started = Instant::now();
    let ex = read_until_closed(&mut s, CLOSE_WITHIN).await;
    assert_eq!(ex.status(), 504, "{}", ex.text);
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert!(up.complete().is_empty(), "{:?}", up.requests());
}

// ---- Item 52: only WebSocket upgrades ----

#[tokio::test]
async fn i52_h2c_upgrade_is_not_passed_on() {
    let (gw, up) = setup().await;
    let mut s = connect(gw.addr).await;
    s.write_all(
        b"GET /public HTTP/1.1\r\nHost: x.test\r\nConnection: Upgrade, HTTP2-Settings\r\n\
          Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
    )
    .await
    .unwrap();
    let ex = read_until_closed(&mut s, Duration::from_millis(700)).await;
    assert_eq!(ex.status(), 200, "{}", ex.text);
    assert!(!ex.text.contains(" 101 "), "{}", ex.text);
    // What follows on the connection is read as HTTP/1.1 again, never as
    // an h2 tunnel to the upstream (which also serves /admin).
    let _ = s
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await;
    let _ = read_until_closed(&mut s, Duration::from_millis(700)).await;
    let seen = up.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].target, "/public");
    for gone in ["upgrade", "http2-settings", "connection"] {
        assert!(seen[0].all(gone).is_empty(), "{gone}: {:?}", seen[0]);
    }
    assert_eq!(up.occurrences(b"PRI *"), 0);
}

// ---- Item 43 (partly): HTTP/2 without TLS (prior knowledge; on the TLS
// listener, with ALPN h2) ----

fn h2_request(path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut fields = vec![
        (":method", "POST"),
        (":scheme", support::mode::scheme()),
        (":path", path),
        (":authority", "x.test"),
    ];
    fields.extend_from_slice(extra);
    h2raw::block(&fields)
}

#[tokio::test]
async fn g43_h2_plain_request_is_served_as_http11_upstream() {
    let (gw, up) = setup().await;
    let headers = h2raw::frame(
        h2raw::HEADERS,
        h2raw::END_HEADERS | h2raw::END_STREAM,
        1,
        &h2_request("/h2", &[]),
    );
    let mut s = h2raw::send(gw.addr, &[headers]).await;
    let got = h2raw::outcome(&mut s, 1, CLOSE_WITHIN).await;
    assert_eq!(got, h2raw::Outcome::Answered { ok: true });
    let seen = up.complete();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].target.as_str()),
        ("POST", "/h2")
    );
    assert_eq!(seen[0].version, "HTTP/1.1");
}

async fn h2_refused(extra: &[(&str, &str)], data: Option<&[u8]>) {
    let (gw, up) = setup().await;
    let flags = if data.is_some() {
        h2raw::END_HEADERS
    } else {
        h2raw::END_HEADERS | h2raw::END_STREAM
    };
    let mut frames = vec![h2raw::frame(
        h2raw::HEADERS,
        flags,
        1,
        &h2_request("/h2", extra),
    )];
    if let Some(d) = data {
        frames.push(h2raw::frame(h2raw::DATA, h2raw::END_STREAM, 1, d));
    }
    let mut s = h2raw::send(gw.addr, &frames).await;
    let got = h2raw::outcome(&mut s, 1, CLOSE_WITHIN).await;
    // PROTOCOL_ERROR (1) on the stream or the whole connection.
    assert!(
        matches!(got, h2raw::Outcome::Reset(1) | h2raw::Outcome::GoAway(1)),
        "{extra:?}: {got:?}"
    );
    assert!(up.complete().is_empty(), "{:?}", up.requests());
}

#[tokio::test]
async fn g43_h2_transfer_encoding_is_a_protocol_error() {
    h2_refused(&[("transfer-encoding", "chunked")], None).await;
}

#[tokio::test]
async fn g43_h2_te_gzip_is_a_protocol_error() {
    h2_refused(&[("te", "gzip")], None).await;
}

#[tokio::test]
async fn g43_h2_connection_header_is_a_protocol_error() {
    h2_refused(&[("connection", "keep-alive")], None).await;
}

#[tokio::test]
async fn g43_h2_more_data_than_content_length_is_a_protocol_error() {
    h2_refused(&[("content-length", "5")], Some(b"0123456789")).await;
}

#[tokio::test]
async fn g43_h2_continuation_flood_is_cut_off() {
    // A header block that never ends: HEADERS without END_HEADERS, then
    // CONTINUATION frames of 16 KB each, far past the header list limit.
    let (gw, up) = setup().await;
    let value = "a".repeat(100);
    let fields: Vec<(&str, &str)> = (0..150).map(|_| ("x-a", value.as_str())).collect();
    let piece = h2raw::block(&fields);
    let mut s = connect_h2(gw.addr).await;
    let mut first = h2raw::start();
    first.extend(h2raw::frame(h2raw::HEADERS, 0, 1, &h2_request("/h2", &[])));
    s.write_all(&first).await.unwrap();
    let (mut rd, mut wr) = tokio::io::split(s);
    let writer = tokio::spawn(async move {
        let frame = h2raw::frame(h2raw::CONTINUATION, 0, 1, &piece);
        let mut sent = 0usize;
        for _ in 0..1000 {
            if wr.write_all(&frame).await.is_err() {
                break;
            }
            sent += frame.len();
        }
        sent
    });
    let got = h2raw::outcome(&mut rd, 1, CLOSE_WITHIN).await;
    let sent = writer.await.unwrap();
    // ENHANCE_YOUR_CALM (11) for the whole connection, long before the end.
    assert_eq!(got, h2raw::Outcome::GoAway(11), "after {sent} bytes");
    assert!(sent < 16 * 1024 * 1000, "all {sent} bytes were taken");
    assert!(up.bytes().is_empty(), "{:?}", up.requests());
}

#[tokio::test]
async fn g43_h2_rapid_reset_flood_is_cut_off() {
    // HEADERS then RST_STREAM(CANCEL) on stream after stream (CVE-2023-44487).
    let (gw, up) = setup().await;
    let mut s = connect_h2(gw.addr).await;
    s.write_all(&h2raw::start()).await.unwrap();
    let (mut rd, mut wr) = tokio::io::split(s);
    let block = h2_request("/h2", &[]);
    let writer = tokio::spawn(async move {
        let mut pairs = 0u32;
        for i in 0..5000u32 {
            let id = 2 * i + 1;
            let mut f = h2raw::frame(h2raw::HEADERS, h2raw::END_HEADERS, id, &block);
            f.extend(h2raw::frame(h2raw::RST_STREAM, 0, id, &8u32.to_be_bytes()));
            if wr.write_all(&f).await.is_err() {
                break;
            }
            pairs += 1;
        }
        pairs
    });
    let got = h2raw::outcome(&mut rd, u32::MAX, CLOSE_WITHIN).await;
    let pairs = writer.await.unwrap();
    assert_eq!(got, h2raw::Outcome::GoAway(11), "after {pairs} pairs");
    assert!(pairs < 5000, "the flood was taken whole");
    // At most a handful of streams were accepted before the cut-off.
    assert!(up.requests().len() <= 20, "{}", up.requests().len());
}
