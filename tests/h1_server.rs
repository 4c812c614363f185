//! The gateway's own HTTP/1.1 loop for plain-TCP connections
//! (src/transport/downstream/h1.rs): keep-alive, pipelining, the handover to hyper in the
//! middle of a connection, the framing of answers it writes (length,
//! chunked, none for HEAD and 204), `Connection: close`, `Date`, and
//! shutdown. Everything over raw TCP against a real gateway, with an
//! upstream written here that answers canned bytes per path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::gateway::TestGateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long a test waits for bytes or a close.
const WAIT: Duration = Duration::from_secs(3);

/// An upstream answering by path: `/chunked` (chunked body "hello world"),
/// `/empty` (204), `/echo` (the request's body), `/sleep` (answers after 300 ms), anything else
/// `200` with body `<METHOD> <target> <body length>` framed by length.
struct Canned {
    url: String,
    /// Request lines seen, in order.
    seen: Arc<Mutex<Vec<String>>>,
}

impl Canned {
    async fn start() -> Canned {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve_canned(s, log.clone()));
            }
        });
        Canned { url, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve_canned(mut s: TcpStream, log: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let length = support::client::content_length(&head);
        while buf.len() < end + 4 + length {
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..end + 4 + length).skip(end + 4).collect();
        let line = head.lines().next().unwrap_or("").to_string();
        log.lock().unwrap().push(line.clone());
        let mut parts = line.split(' ');
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let answer = match target.as_str() {
            "/chunked" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".to_string(),
            "/empty" => "HTTP/1.1 204 No Content\r\n\r\n".to_string(),
            "/echo" => format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}",
                body.len(),
                String::from_utf8_lossy(&body)
            ),
            _ => {
                if target == "/sleep" {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                let body = format!("{method} {target} {length}");
                let body = if method == "HEAD" { String::new() } else { body };
                let declared = if method == "HEAD" { 5 } else { body.len() };
                format!("HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\n\r\n{body}")
            }
        };
        if s.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn setup() -> (TestGateway, Canned) {
    let up = Canned::start().await;
    let gw = TestGateway::start(&format!(
        r#"
[server]
listen = "127.0.0.1:$PORT"
public_url = "http://127.0.0.1:$PORT"
shutdown_timeout = "10s"

[session]
secret_env = "PORTCULLIS_SECRET"

[[route]]
path = "/"
upstream = "{}"
access = "public"
"#,
        up.url
    ))
    .await;
    (gw, up)
}

/// One answer read off a connection: status, headers (lowercase names),
/// body (de-chunked when chunked).
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads answers from one connection, keeping bytes that belong to the next.
struct Reader {
    s: support::client::Stream,
    buf: Vec<u8>,
}

impl Reader {
    async fn connect(gw: &TestGateway) -> Reader {
        Reader {
            s: support::client::connect(gw.addr).await,
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout(WAIT, self.s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => false,
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(_) => panic!("no bytes within {WAIT:?}; have {:?}", self.buf),
        }
    }

    async fn need(&mut self, n: usize) {
        while self.buf.len() < n {
            assert!(self.fill().await, "closed early: {:?}", self.buf);
        }
    }

    async fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return line;
            }
            assert!(self.fill().await, "closed early: {:?}", self.buf);
        }
    }

    /// One answer; `head` means the request was HEAD (no body follows).
    async fn answer(&mut self, head: bool) -> Answer {
        let status_line = self.line().await;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let l = self.line().await;
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap();
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let mut a = Answer {
            status,
            headers,
            body: Vec::new(),
        };
        if head || status == 204 || status == 304 {
            return a;
        }
        if a.header("transfer-encoding") == Some("chunked") {
            loop {
                let size = usize::from_str_radix(&self.line().await, 16).unwrap();
                self.need(size + 2).await;
                a.body.extend_from_slice(&self.buf[..size]);
                assert_eq!(&self.buf[size..size + 2], b"\r\n");
                self.buf.drain(..size + 2);
                if size == 0 {
                    return a;
                }
            }
        }
        let n: usize = a.header("content-length").unwrap().parse().unwrap();
        self.need(n).await;
        a.body = self.buf.drain(..n).collect();
        a
    }

    /// Whether the gateway closes the connection (with nothing more sent).
    async fn closes(&mut self) -> bool {
        let mut chunk = [0u8; 1024];
        match tokio::time::timeout(WAIT, self.s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => self.buf.is_empty(),
            Ok(Ok(n)) => panic!("more bytes: {:?}", &chunk[..n]),
            Err(_) => false,
        }
    }
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x.test\r\n\r\n").into_bytes()
}

#[tokio::test]
async fn one_connection_serves_many_requests() {
    let (gw, up) = setup().await;
    let mut c = Reader::connect(&gw).await;
    for i in 0..5 {
        c.send(&get(&format!("/n{i}"))).await;
        let a = c.answer(false).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.text(), format!("GET /n{i} 0"));
        assert_eq!(a.header("connection"), None);
    }
    assert_eq!(up.seen().len(), 5);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let (gw, _up) = setup().await;
    let mut c = Reader::connect(&gw).await;
    let mut all = Vec::new();
    for p in ["/a", "/b", "/c"] {
        all.extend_from_slice(&get(p));
    }
    c.send(&all).await;
    for p in ["/a", "/b", "/c"] {
        assert_eq!(c.answer(false).await.text(), format!("GET {p} 0"));
    }
}

#[tokio::test]
async fn a_request_for_hyper_moves_the_connection_to_hyper() {
    // GET (served here), then an HTTP/1.0 keep-alive POST on the same
    // connection (handed to hyper with the bytes already read), then a
    // GET (hyper's now), all in one write.
    let (gw, up) = setup().await;
    let mut c = Reader::connect(&gw).await;
    let mut all = get("/first");
    all.extend_from_slice(
        b"POST /form HTTP/1.0\r\nHost: x.test\r\nConnection: keep-alive\r\nContent-Length: 20000\r\n\r\n",
    );
    all.extend_from_slice(&[b'x'; 20000]);
    all.extend_from_slice(&get("/third"));
    c.send(&all).await;
    assert_eq!(c.answer(false).await.text(), "GET /first 0");
    assert_eq!(c.answer(false).await.text(), "POST /form 20000");
    assert_eq!(c.answer(false).await.text(), "GET /third 0");
    assert_eq!(
        up.seen(),
        [
            "GET /first HTTP/1.1",
            "POST /form HTTP/1.1",
            "GET /third HTTP/1.1"
        ]
    );
}

/// A body longer than the loop reads whole with its head is streamed in
/// place: every byte reaches the upstream once, and the request after it
/// is read from the right place, on the same connection.
#[tokio::test]
async fn a_long_body_between_two_gets_is_streamed_in_place() {
    let (gw, up) = setup().await;
    let mut c = Reader::connect(&gw).await;
    let mut all = get("/first");
    let body: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    all.extend_from_slice(b"POST /echo HTTP/1.1\r\nHost: x.test\r\nContent-Length: 200000\r\n\r\n");
    all.extend_from_slice(&body);
    all.extend_from_slice(&get("/third"));
    c.send(&all).await;
    assert_eq!(c.answer(false).await.text(), "GET /first 0");
    assert_eq!(c.answer(false).await.body, body);
    assert_eq!(c.answer(false).await.text(), "GET /third 0");
    assert_eq!(
        up.seen(),
        [
            "GET /first HTTP/1.1",
            "POST /echo HTTP/1.1",
            "GET /third HTTP/1.1"
        ]
    );
}

/// A small body that came whole with its head is served by the own loop
/// (and sent on by the raw client in the head's write): every byte reaches
/// the upstream once, and the requests after it on the connection are read
/// from the right place.
#[tokio::test]
async fn small_whole_bodies_reach_the_upstream_exactly() {
    let (gw, up) = setup().await;
    let mut c = Reader::connect(&gw).await;
    let mut all = Vec::new();
    all.extend_from_slice(
        b"POST /echo HTTP/1.1\r\nHost: x.test\r\nContent-Length: 12\r\n\r\nhello\r\n\r\nGET",
    );
    all.extend_from_slice(b"PUT /echo HTTP/1.1\r\nHost: x.test\r\nContent-Length: 0\r\n\r\n");
    let form = "a=".to_string() + &"b".repeat(16 * 1024 - 2);
    all.extend_from_slice(
        format!(
            "POST /echo HTTP/1.1\r\nHost: x.test\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    );
    all.extend_from_slice(&get("/last"));
    c.send(&all).await;
    assert_eq!(c.answer(false).await.text(), "hello\r\n\r\nGET");
    assert_eq!(c.answer(false).await.text(), "");
    assert_eq!(c.answer(false).await.text(), form);
    assert_eq!(c.answer(false).await.text(), "GET /last 0");
    assert_eq!(
        up.seen(),
        [
            "POST /echo HTTP/1.1",
            "PUT /echo HTTP/1.1",
            "POST /echo HTTP/1.1",
            "GET /last HTTP/1.1"
        ]
    );
}

/// A body still on its way when its head is read is streamed (with the
/// body timeout); the bytes arrive the same either way.
#[tokio::test]
async fn a_body_sent_after_its_head_arrives_whole() {
    let (gw, up) = setup().await;
    let mut c = Reader::connect(&gw).await;
    c.send(b"POST /echo HTTP/1.1\r\nHost: x.test\r\nContent-Length: 5\r\n\r\nhe")
        .await;
    // No signal says the gateway has read the first part; the outcome is
    // the same whichever loop reads it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.send(b"llo").await;
    assert_eq!(c.answer(false).await.text(), "hello");
    c.send(&get("/after")).await;
    assert_eq!(c.answer(false).await.text(), "GET /after 0");
    assert_eq!(up.seen(), ["POST /echo HTTP/1.1", "GET /after HTTP/1.1"]);
}

#[tokio::test]
async fn connection_close_is_honoured() {
    let (gw, _up) = setup().await;
    let mut c = Reader::connect(&gw).await;
    c.send(b"GET /bye HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n")
        .await;
    let a = c.answer(false).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("connection"), Some("close"));
    assert!(c.closes().await, "still open after Connection: close");
}

#[tokio::test]
async fn head_keeps_the_length_and_sends_no_body() {
    let (gw, _up) = setup().await;
    let mut c = Reader::connect(&gw).await;
    c.send(b"HEAD /h HTTP/1.1\r\nHost: x.test\r\n\r\n").await;
    let a = c.answer(true).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-length"), Some("5"));
    // Were a body sent, it would be read as the next answer's status line.
    c.send(&get("/after")).await;
    assert_eq!(c.answer(false).await.text(), "GET /after 0");
}

#[tokio::test]
async fn a_chunked_answer_is_chunked_again() {
    let (gw, _up) = setup().await;
    let mut c = Reader::connect(&gw).await;
    c.send(&get("/chunked")).await;
    let a = c.answer(false).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("transfer-encoding"), Some("chunked"));
    assert_eq!(a.header("content-length"), None);
    assert_eq!(a.text(), "hello world");
    c.send(&get("/after")).await;
    assert_eq!(c.answer(false).await.text(), "GET /after 0");
}

#[tokio::test]
async fn no_content_has_no_framing_headers() {
    let (gw, _up) = setup().await;
    let mut c = Reader::connect(&gw).await;
    c.send(&get("/empty")).await;
    let a = c.answer(false).await;
    assert_eq!(a.status, 204);
    assert_eq!(a.header("content-length"), None);
    assert_eq!(a.header("transfer-encoding"), None);
    c.send(&get("/after")).await;
    assert_eq!(c.answer(false).await.text(), "GET /after 0");
}

#[tokio::test]
async fn gateway_pages_carry_a_date() {
    let (gw, _up) = setup().await;
    let mut c = Reader::connect(&gw).await;
    c.send(&get("/.portcullis/login")).await;
    let a = c.answer(false).await;
    assert_eq!(a.status, 200);
    let date = a.header("date").expect("a Date header");
    assert_eq!(date.len(), 29, "{date}");
    assert!(date.ends_with(" GMT"), "{date}");
    assert_eq!(
        a.header("content-length")
            .map(|v| v.parse::<usize>().unwrap()),
        Some(a.body.len())
    );
}

#[tokio::test]
async fn http10_is_served_by_hyper() {
    let (gw, _up) = setup().await;
    let mut c = Reader::connect(&gw).await;
    c.send(b"GET /old HTTP/1.0\r\nHost: x.test\r\n\r\n").await;
    let a = c.answer(false).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.text(), "GET /old 0");
    assert!(c.closes().await, "HTTP/1.0 without keep-alive stays open");
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_finishes_busy_ones() {
    let (gw, _up) = setup().await;
    let mut idle = Reader::connect(&gw).await;
    idle.send(&get("/one")).await;
    assert_eq!(idle.answer(false).await.status, 200);
    let mut busy = Reader::connect(&gw).await;
    busy.send(&get("/sleep")).await;
    // The request is in flight at the upstream when the shutdown begins.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let stopping = tokio::spawn(gw.stop());
    assert!(
        idle.closes().await,
        "an idle connection outlived the shutdown"
    );
    let a = busy.answer(false).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.text(), "GET /sleep 0");
    assert_eq!(a.header("connection"), Some("close"));
    assert!(busy.closes().await);
    stopping.await.unwrap();
    // Well under shutdown_timeout (10 s): nothing waited for it.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// Requests (GETs served by the own loop, POSTs by hyper) that reach idle
/// keep-alive connections at the moment the shutdown starts: the bytes
/// are in each socket before the stop is sent,
/// and the gateway (on this test's runtime) has not run since, so none of
/// them has been read yet. Every one is answered in full, with
/// `Connection: close`, and then the connection closes.
#[tokio::test]
async fn shutdown_answers_requests_that_already_arrived() {
    const CONNECTIONS: usize = 50;
    let (gw, up) = setup().await;
    let mut conns = Vec::new();
    for i in 0..CONNECTIONS {
        let mut c = Reader::connect(&gw).await;
        c.send(&get(&format!("/warm{i}"))).await;
        assert_eq!(c.answer(false).await.status, 200);
        conns.push(c);
    }
    // Written without yielding to the runtime: each write either goes to
    // the socket whole or the test fails.
    // Every other one a POST with a body (served by hyper, which this
    // connection is handed to in the middle of the shutdown).
    let post = |i: usize| {
        format!("POST /late{i} HTTP/1.1\r\nHost: x.test\r\nContent-Length: 5\r\n\r\nhello")
            .into_bytes()
    };
    for (i, c) in conns.iter_mut().enumerate() {
        let req = if i % 2 == 0 {
            get(&format!("/late{i}"))
        } else {
            post(i)
        };
        assert_eq!(c.s.try_write_now(&req).unwrap(), req.len());
    }
    let stopping = tokio::spawn(gw.stop());
    let (mut answered, mut dropped) = (0, 0);
    for (i, c) in conns.iter_mut().enumerate() {
        if !c.fill().await {
            // Closed with not a byte of an answer.
            dropped += 1;
            continue;
        }
        let a = c.answer(false).await;
        assert_eq!(a.status, 200);
        let expected = if i % 2 == 0 { "GET" } else { "POST" };
        let length = if i % 2 == 0 { 0 } else { 5 };
        assert_eq!(a.text(), format!("{expected} /late{i} {length}"));
        assert_eq!(a.header("connection"), Some("close"));
        assert!(c.closes().await, "connection {i} stayed open");
        answered += 1;
    }
    assert_eq!((answered, dropped), (CONNECTIONS, 0));
    stopping.await.unwrap();
    assert_eq!(up.seen().len(), 2 * CONNECTIONS);
}
