//! The upstream connection pool and the direct HTTP/1.1 client
//! (`src/transport/upstream/raw.rs`), seen from a raw-TCP upstream that counts the connections
//! it accepts: keep-alive reuse (bodies with a length, chunked with
//! trailers, empty, HEAD, after a 103, requests with a body), answers
//! delimited by the close, a connection the upstream closed after its
//! answer is replaced without an error, an answer the client dropped half
//! way never sends its connection back to the pool, and an answer with
//! both framing headers is 502; request bodies streamed through (several
//! MiB, byte for byte, with a request pipelined behind), an upstream that
//! answers before reading the body, a client that goes away inside it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::gateway::TestGateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the upstream does after each answer.
#[derive(Clone, Copy, PartialEq)]
enum After {
    KeepOpen,
    /// Closes the socket without saying so (no `Connection: close`), as an
    /// upstream whose keep-alive timeout just ran out does.
    Close,
}

struct CountingUpstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    /// Connections the gateway closed (seen as the end of the stream).
    ended: Arc<AtomicUsize>,
}

impl CountingUpstream {
    async fn start(after: After) -> CountingUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let ended = Arc::new(AtomicUsize::new(0));
        let (a, r, e) = (accepted.clone(), requests.clone(), ended.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                a.fetch_add(1, Ordering::SeqCst);
                let (r, e) = (r.clone(), e.clone());
                tokio::spawn(async move {
                    serve(stream, after, r).await;
                    e.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        CountingUpstream {
            addr,
            accepted,
            requests,
            ended,
        }
    }

    /// Waits (up to 5 s) until `n` connections have ended.
    async fn wait_ended(&self, n: usize) -> usize {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while self.ended.load(Ordering::SeqCst) < n && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.ended.load(Ordering::SeqCst)
    }

    /// Waits (up to 5 s) until `n` connections have been accepted.
    async fn wait_accepted(&self, n: usize) -> usize {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while self.connections() < n && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.connections()
    }

    fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads request heads (no bodies: the tests send GET and HEAD only) and
/// answers by path: `/len` a 2-byte body, `/chunked` two chunks, `/empty`
/// 204, `/big` 64 MiB that nobody reads to the end.
async fn serve(mut stream: TcpStream, after: After, requests: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let head_only = head.starts_with("HEAD ");
        let path = head.split(' ').nth(1).unwrap_or("/").to_string();
        if path == "/refuse" {
            // Answers before reading the body, and reads none of it for
            // longer than the test waits: only a gateway that watches for
            // an answer while it sends the body passes it on in time.
            let _ = stream
                .write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 8\r\nconnection: close\r\n\r\ntoo big\n")
                .await;
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        // A request body (the gateway sends a length for these tests).
        let length = support::client::content_length(&head);
        while buf.len() < length {
            let mut chunk = [0u8; 1 << 16];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..length).collect();
        requests.fetch_add(1, Ordering::SeqCst);
        let answer: Vec<u8> = match path.as_str() {
            "/sum" => {
                let text = format!("{} {:016x}", body.len(), fnv1a(&body));
                format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{text}", text.len())
                    .into_bytes()
            }
            "/chunked" => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n3\r\n!!!\r\n0\r\n\r\n".to_vec(),
            "/trailers" => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-sum\r\n\r\n2;name=value\r\nok\r\n0\r\nx-sum: 1\r\nx-more: 2\r\n\r\n".to_vec(),
            "/early" => b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
            "/both" => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n".to_vec(),
            "/http10" => b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
            "/until-close" => {
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end")
                    .await;
                return;
            }
            "/empty" => b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
            "/big" => {
                let len = 64 << 20;
                let _ = stream
                    .write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n").as_bytes())
                    .await;
                let block = vec![b'x'; 1 << 16];
                for _ in 0..(len / block.len()) {
                    if stream.write_all(&block).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            _ if head_only => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n".to_vec(),
            _ => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
        };
        if stream.write_all(&answer).await.is_err() {
            return;
        }
        if after == After::Close {
            return;
        }
    }
}

/// One answer with a `Content-Length` off `r`: its head and its body.
async fn read_answer(r: &mut (impl tokio::io::AsyncRead + Unpin)) -> (String, Vec<u8>) {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(r.read_u8().await.unwrap());
    }
    let head = String::from_utf8(head).unwrap();
    let mut body = vec![0u8; support::client::content_length(&head)];
    r.read_exact(&mut body).await.unwrap();
    (head, body)
}

/// FNV-1a over `bytes`: the upstream's and the test's view of a body.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

async fn gateway(up: &CountingUpstream) -> TestGateway {
    gateway_with(up, "").await
}

async fn gateway_with(up: &CountingUpstream, server: &str) -> TestGateway {
    TestGateway::start(&format!(
        r#"
[server]
listen = "127.0.0.1:$PORT"
public_url = "http://127.0.0.1:$PORT"
{server}
[session]
secret_env = "PORTCULLIS_SECRET"
[[route]]
path = "/"
upstream = "http://{}"
access = "public"
"#,
        up.addr
    ))
    .await
}

/// A POST whose body stops half way: 408 from the gateway after
/// `server.body_read_timeout` of silence (not the route's 30 s), and the
/// upstream connection it held is closed.
#[tokio::test]
async fn a_stalled_request_body_is_408_and_frees_its_upstream_connection() {
    let up = CountingUpstream::start(After::KeepOpen).await;
    let gw = gateway_with(&up, "body_read_timeout = \"300ms\"").await;
    let mut s = support::client::connect(gw.addr).await;
    s.write_all(b"POST /len HTTP/1.1\r\nHost: a.test\r\nContent-Length: 10\r\n\r\nabc")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut text = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut text)).await;
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&text);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text:?}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "answered after {took:?}"
    );
    assert_eq!(up.connections(), 1);
    assert_eq!(
        up.wait_ended(1).await,
        1,
        "the upstream connection stayed open"
    );
    assert_eq!(up.requests(), 0, "the upstream never saw a whole request");
}

/// A body that trickles in faster than `server.body_read_timeout` between
/// reads passes, however long it takes in all.
#[tokio::test]
async fn a_request_body_trickling_faster_than_the_timeout_passes() {
    let up = CountingUpstream::start(After::KeepOpen).await;
    let gw = gateway_with(&up, "body_read_timeout = \"300ms\"").await;
    let mut s = support::client::connect(gw.addr).await;
    s.write_all(
        b"POST /len HTTP/1.1\r\nHost: a.test\r\nContent-Length: 8\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    for b in b"trickled" {
        // The delay between bytes is what is under test.
        tokio::time::sleep(Duration::from_millis(100)).await;
        s.write_all(&[*b]).await.unwrap();
    }
    let mut text = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut text)).await;
    let text = String::from_utf8_lossy(&text);
    assert!(text.starts_with("HTTP/1.1 200 "), "{text:?}");
    assert_eq!(support::client::body_of(&text), "ok");
    assert_eq!(up.requests(), 1);
}

fn client() -> reqwest::Client {
    support::client::for_mode(
        reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(10)),
    )
    .build()
    .unwrap()
}

/// GET `path` through the gateway: status and body.
async fn get(c: &reqwest::Client, gw: &TestGateway, path: &str) -> (u16, String) {
    let r = c.get(gw.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

#[tokio::test]
async fn sequential_requests_share_one_upstream_connection() {
    let up = CountingUpstream::start(After::KeepOpen).await;
    let gw = gateway(&up).await;
    let c = client();
    for path in ["/len", "/chunked", "/empty", "/len", "/chunked", "/empty"] {
        for _ in 0..5 {
            let (status, body) = get(&c, &gw, path).await;
            match path {
                "/len" => assert_eq!((status, body.as_str()), (200, "ok")),
                "/chunked" => assert_eq!((status, body.as_str()), (200, "ok!!!")),
                _ => assert_eq!((status, body.as_str()), (204, "")),
            }
        }
        let r = c.head(gw.url("/len")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    for _ in 0..3 {
        for path in ["/trailers", "/early"] {
            let r = get(&c, &gw, path).await;
            assert_eq!(r, (200, "ok".to_string()), "{path}");
        }
        // A request with a streamed body (over the own loop's 16 KiB for
        // bodies read whole): the own loop streams it over the same raw
        // connection (hyper's server and client without the fast paths).
        let r = c
            .post(gw.url("/len"))
            .body("a body ".repeat(3000))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.text().await.unwrap(), "ok");
    }
    assert_eq!(up.requests(), 45);
    assert_eq!(up.connections(), 1, "one connection for all requests");
}

#[tokio::test]
async fn an_answer_delimited_by_the_close_arrives_whole_and_its_connection_ends() {
    let up = CountingUpstream::start(After::KeepOpen).await;
    let gw = gateway(&up).await;
    let c = client();
    for _ in 0..3 {
        let r = get(&c, &gw, "/until-close").await;
        assert_eq!(r, (200, "until the end".to_string()));
    }
    assert_eq!(up.connections(), 3);
}

#[tokio::test]
async fn an_answer_with_both_framing_headers_is_502() {
    let up = CountingUpstream::start(After::KeepOpen).await;
    let gw = gateway(&up).await;
    let r = get(&client(), &gw, "/both").await;
    assert_eq!(r.0, 502);
    let r = get(&client(), &gw, "/len").await;
    assert_eq!(r, (200, "ok".to_string()));
    assert_eq!(
        up.connections(),
        2,
        "the refused answer's connection is not reused"
    );
}

/// The same answer is 502 on hyper's path too (a request with a body).
#[tokio::test]
async fn an_answer_with_both_framing_headers_is_502_on_both_paths() {
    let up = CountingUpstream::start(After::KeepOpen).await;
    let gw = gateway(&up).await;
    let r = get(&client(), &gw, "/both").await;
    assert_eq!(r.0, 502, "GET (raw client)");
    let r = client()
        .post(gw.url("/both"))
        .body("a body")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 502, "POST (hyper's client)");
    assert_eq!(up.requests(), 2);
}

/// An upstream's HTTP/1.0 status line reaches an HTTP/1.1 client as
/// HTTP/1.1 on both paths.
#[tokio::test]
async fn an_http_1_0_answer_reaches_the_client_as_http_1_1_on_both_paths() {
    let up = CountingUpstream::start(After::KeepOpen).await;
    let gw = gateway(&up).await;
    for request in [
        "GET /http10 HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
        "POST /http10 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    ] {
        let text = support::client::raw(gw.addr, request.as_bytes(), Duration::from_secs(5)).await;
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{request:?}: {text:?}");
        assert_eq!(support::client::body_of(&text), "ok", "{request:?}");
    }
}

#[tokio::test]
async fn a_connection_the_upstream_closed_after_its_answer_is_replaced() {
    let up = CountingUpstream::start(After::Close).await;
    let gw = gateway(&up).await;
    let c = client();
    for i in 0..100 {
        let r = get(&c, &gw, "/len").await;
        assert_eq!(r, (200, "ok".to_string()), "request {i}");
    }
    assert_eq!(up.requests(), 100);
    assert_eq!(up.connections(), 100);
}

#[tokio::test]
async fn an_answer_dropped_half_way_does_not_return_its_connection() {
    let up = CountingUpstream::start(After::KeepOpen).await;
    let gw = gateway(&up).await;
    // Read the head and a little of 64 MiB, then hang up.
    let mut s = support::client::connect(gw.addr).await;
    s.write_all(b"GET /big HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await
        .unwrap();
    let mut got = vec![0u8; 1 << 16];
    let n = s.read(&mut got).await.unwrap();
    assert!(String::from_utf8_lossy(&got[..n]).starts_with("HTTP/1.1 200"));
    drop(s);
    // The next request needs a connection of its own: the first one still
    // has most of an answer in it.
    let r = get(&client(), &gw, "/len").await;
    assert_eq!(r, (200, "ok".to_string()));
    assert_eq!(up.requests(), 2);
    assert_eq!(up.connections(), 2);
}

/// Bodies of several MiB (over the 16 KiB the own loop reads whole with
/// the head: streamed) reach the upstream byte for byte, one after the
/// other on one client connection, with a GET pipelined right behind the
/// last body; all of it over one upstream connection.
#[tokio::test]
async fn streamed_bodies_arrive_whole_and_a_pipelined_request_follows() {
    let up = CountingUpstream::start(After::KeepOpen).await;
    let gw = gateway(&up).await;
    let mut s = support::client::connect(gw.addr).await;
    let mut sent = Vec::new();
    for (i, len) in [3 << 20, 16 * 1024 + 1, 100_000].into_iter().enumerate() {
        let body: Vec<u8> = (0..len).map(|j| ((j * 7 + i) % 251) as u8).collect();
        sent.push(format!("{} {:016x}", body.len(), fnv1a(&body)));
        let mut req =
            format!("POST /sum HTTP/1.1\r\nHost: a.test\r\nContent-Length: {len}\r\n\r\n")
                .into_bytes();
        req.extend_from_slice(&body);
        if i == 2 {
            req.extend_from_slice(
                b"GET /len HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
            );
        }
        // Written while the answers are read: the gateway answers each
        // body only once it has passed it on.
        let (mut r, mut w) = tokio::io::split(s);
        let writing = tokio::spawn(async move {
            w.write_all(&req).await.unwrap();
            w
        });
        let (head, answer) = read_answer(&mut r).await;
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        assert_eq!(String::from_utf8(answer).unwrap(), sent[i], "body {i}");
        s = r.unsplit(writing.await.unwrap());
    }
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    let rest = String::from_utf8_lossy(&rest);
    assert_eq!(support::client::status_of(&rest), 200, "{rest}");
    assert_eq!(support::client::body_of(&rest), "ok");
    assert_eq!(up.requests(), 4);
    assert_eq!(up.connections(), 1);
}

/// An upstream that answers 413 before reading a 32 MiB body (more than
/// the sockets between hold), and then reads nothing: the client gets that
/// answer while the body is still on its way, the upstream connection is
/// not used again, and the next request goes on a new one.
#[tokio::test]
async fn an_answer_before_the_body_is_read_is_passed_on() {
    let up = CountingUpstream::start(After::KeepOpen).await;
    let gw = gateway(&up).await;
    let s = support::client::connect(gw.addr).await;
    let len = 32 << 20;
    let mut req = format!("POST /refuse HTTP/1.1\r\nHost: a.test\r\nContent-Length: {len}\r\n\r\n")
        .into_bytes();
    req.extend(std::iter::repeat_n(b'x', len));
    let (mut r, mut w) = tokio::io::split(s);
    // The gateway may stop reading the body: the write may never finish.
    let writing = tokio::spawn(async move {
        let _ = w.write_all(&req).await;
    });
    let (head, answer) = tokio::time::timeout(Duration::from_secs(10), read_answer(&mut r))
        .await
        .expect("the upstream's early answer never reached the client");
    assert!(head.starts_with("HTTP/1.1 413 "), "{head}");
    assert_eq!(answer, b"too big\n");
    writing.abort();
    let r = get(&client(), &gw, "/len").await;
    assert_eq!(r, (200, "ok".to_string()));
    assert_eq!(up.connections(), 2);
}

/// A client that goes away inside a streamed body: the upstream, which
/// got part of it, never sees a whole request, its connection is closed
/// (never reused with half a body in it), and the next request works.
#[tokio::test]
async fn a_client_gone_inside_a_streamed_body_closes_its_upstream_connection() {
    let up = CountingUpstream::start(After::KeepOpen).await;
    let gw = gateway(&up).await;
    let mut s = support::client::connect(gw.addr).await;
    s.write_all(b"POST /sum HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1000000\r\n\r\n")
        .await
        .unwrap();
    s.write_all(&[b'y'; 200_000]).await.unwrap();
    s.flush().await.unwrap();
    // The upstream has the connection (and some of the body) before the
    // client goes.
    up.wait_accepted(1).await;
    drop(s);
    assert_eq!(
        up.wait_ended(1).await,
        1,
        "the upstream connection stayed open"
    );
    assert_eq!(up.requests(), 0, "the upstream never saw a whole request");
    let r = get(&client(), &gw, "/len").await;
    assert_eq!(r, (200, "ok".to_string()));
    assert_eq!(up.connections(), 2);
}
