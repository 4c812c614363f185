//! The own loop's parsing, body rules and `Date`, without a socket.

use super::*;

fn kind(text: &str) -> &'static str {
    match parse(
        text.as_bytes(),
        MAX_HEADERS,
        &mut [(0, 0, 0, 0); MAX_HEADERS],
    ) {
        Parsed::Head(_) => "ours",
        Parsed::Partial => "partial",
        Parsed::NotOurs => "hyper",
    }
}

/// What `take_request` makes of `text`: the request's body, or why not.
fn take(text: &str) -> Result<(Vec<u8>, Vec<u8>), &'static str> {
    let mut buf = BytesMut::from(text.as_bytes());
    match take_request(&mut buf, MAX_HEADERS) {
        Taken::Request(req, _, feed) => {
            let body = match (req.into_body(), feed) {
                (RequestBody::Whole(b), None) => b.to_vec(),
                (RequestBody::Empty, None) => Vec::new(),
                (RequestBody::Streamed(_), Some(_)) => return Err("streamed"),
                _ => return Err("a body that does not fit its feed"),
            };
            Ok((body, buf.to_vec()))
        }
        Taken::Partial => Err("partial"),
        Taken::NotOurs => Err("hyper"),
    }
}

#[test]
fn only_plain_http11_requests_with_small_whole_bodies_are_ours() {
    assert_eq!(kind("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), "ours");
    assert_eq!(kind("GET / HTTP/1.1\r\nHost: a\r\n"), "partial");
    assert_eq!(kind("GET / HTTP/1.0\r\nHost: a\r\n\r\n"), "hyper");
    assert_eq!(kind("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), "hyper");
    assert_eq!(
        kind("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"),
        "ours"
    );
    for cl in [
        "Content-Length: 3\r\nContent-Length: 3",
        "Content-Length: 03",
        "Content-Length: +3",
        "Content-Length: 3,3",
        "Content-Length: 0x3",
        "Content-Length: 1000000000000000",
        "Content-Length: 99999999999999999999999",
    ] {
        assert_eq!(
            kind(&format!("POST / HTTP/1.1\r\nHost: a\r\n{cl}\r\n\r\nabc")),
            "hyper",
            "{cl}"
        );
    }
    assert_eq!(
        kind("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 16384\r\n\r\n"),
        "ours"
    );
    assert_eq!(
        kind(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        ),
        "hyper"
    );
    assert_eq!(
        kind("POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\n\r\n"),
        "hyper"
    );
    assert_eq!(
        kind("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"),
        "hyper"
    );
    assert_eq!(
        kind("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n"),
        "hyper"
    );
    assert_eq!(kind("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"), "hyper");
    assert_eq!(kind("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), "hyper");
    let many: String = (0..MAX_HEADERS + 1)
        .map(|i| format!("X-{i}: v\r\n"))
        .collect();
    assert_eq!(kind(&format!("GET / HTTP/1.1\r\n{many}\r\n")), "hyper");
}

#[test]
fn head_becomes_a_request_and_leaves_pipelined_bytes() {
    let text = "GET /a?b=c HTTP/1.1\r\nHost: x.test\r\nConnection: keep-alive, Close\r\nX-A: 1\r\nx-a: 2\r\n\r\nGET /next";
    let mut buf = BytesMut::from(text.as_bytes());
    let mut spans = [(0, 0, 0, 0); MAX_HEADERS];
    let Parsed::Head(head) = parse(&buf, MAX_HEADERS, &mut spans) else {
        panic!("not parsed");
    };
    let (req, close, feed) = head.into_request(&mut buf, &spans).unwrap();
    assert!(feed.is_none());
    assert!(close);
    assert_eq!(req.method(), Method::GET);
    assert_eq!(req.uri().path_and_query().unwrap().as_str(), "/a?b=c");
    assert_eq!(req.headers()["host"], "x.test");
    let xa: Vec<_> = req.headers().get_all("x-a").iter().collect();
    assert_eq!(xa, ["1", "2"]);
    assert_eq!(&buf[..], b"GET /next");
}

#[test]
fn a_small_body_is_taken_whole_with_its_head_or_not_at_all() {
    let post = "POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
    assert_eq!(
        take(&format!("{post}hello")),
        Ok((b"hello".to_vec(), Vec::new()))
    );
    assert_eq!(
        take(&format!("{post}helloGET / HTTP/1.1")),
        Ok((b"hello".to_vec(), b"GET / HTTP/1.1".to_vec()))
    );
    // Still on its way: streamed, the bytes here left for the pump.
    assert_eq!(take(&format!("{post}hell")), Err("streamed"));
    assert_eq!(take(post), Err("streamed"));
    assert_eq!(
        take("POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\nGET"),
        Ok((Vec::new(), b"GET".to_vec()))
    );
    let big = "x".repeat(MAX_BODY);
    assert_eq!(
        take(&format!(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {MAX_BODY}\r\n\r\n{big}"
        )),
        Ok((big.into_bytes(), Vec::new()))
    );
    // Longer than a whole body may be: streamed, even when all here.
    let over = "x".repeat(MAX_BODY + 1);
    let text = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{over}",
        MAX_BODY + 1
    );
    let mut buf = BytesMut::from(text.as_bytes());
    let Taken::Request(req, _, Some(feed)) = take_request(&mut buf, MAX_HEADERS) else {
        panic!("not streamed");
    };
    assert_eq!(feed.left, (MAX_BODY + 1) as u64);
    assert_eq!(&buf[..], over.as_bytes(), "the body is left for the pump");
    assert_eq!(
        hyper::body::Body::size_hint(req.body()).exact(),
        Some((MAX_BODY + 1) as u64)
    );
}

/// The pump feeds exactly the body's bytes, the buffered ones first, and
/// leaves what follows the body (a pipelined request) on the connection.
#[tokio::test]
async fn the_pump_reads_the_body_and_not_a_byte_more() {
    use http_body_util::BodyExt as _;
    let (mut client, mut server) = tokio::net::UnixStream::pair().unwrap();
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut buf = BytesMut::from(&body[..1000]);
    let (streamed, tx) = crate::body::Streamed::channel(body.len() as u64);
    let rest = body[1000..].to_vec();
    let writer = tokio::spawn(async move {
        client.write_all(&rest).await.unwrap();
        client
            .write_all(b"GET /next HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        client
    });
    let reading = RequestBody::Streamed(streamed).collect();
    let (read, whole) = feeding(
        reading,
        pump(
            &mut server,
            &mut buf,
            Feed {
                tx,
                left: body.len() as u64,
            },
        ),
    )
    .await;
    assert!(whole);
    assert_eq!(read.unwrap().to_bytes(), body);
    let _client = writer.await.unwrap();
    let mut after = [0u8; 22];
    server.read_exact(&mut after).await.unwrap();
    assert_eq!(&after, b"GET /next HTTP/1.1\r\n\r\n");
}

/// A connection that ends inside the body: its reader gets an error, and
/// the pump says the body was not read whole.
#[tokio::test]
async fn a_body_cut_short_is_an_error_for_its_reader() {
    use http_body_util::BodyExt as _;
    let (mut client, mut server) = tokio::net::UnixStream::pair().unwrap();
    let (streamed, tx) = crate::body::Streamed::channel(100_000);
    client.write_all(&[b'x'; 5000]).await.unwrap();
    drop(client);
    let mut buf = BytesMut::new();
    let (read, whole) = feeding(
        RequestBody::Streamed(streamed).collect(),
        pump(&mut server, &mut buf, Feed { tx, left: 100_000 }),
    )
    .await;
    assert!(!whole);
    let e = read.unwrap_err();
    let io = e.downcast_ref::<std::io::Error>().unwrap();
    assert_eq!(io.kind(), std::io::ErrorKind::UnexpectedEof);
}

#[test]
fn body_lengths_are_plain_decimals_up_to_the_limit() {
    assert_eq!(body_length(b"0"), Some(0));
    assert_eq!(body_length(b"1"), Some(1));
    assert_eq!(body_length(b"16384"), Some(MAX_BODY as u64));
    assert_eq!(body_length(b"16385"), Some(MAX_BODY as u64 + 1));
    assert_eq!(body_length(b"999999999999999"), Some(MAX_STREAMED));
    for bad in [
        &b""[..],
        b"00",
        b"01",
        b"1000000000000000",
        b"-1",
        b" 1",
        b"1 ",
        b"1a",
        b"\xff",
    ] {
        assert_eq!(body_length(bad), None, "{bad:?}");
    }
}

#[test]
fn date_is_an_imf_fixdate() {
    let mut d = DateCache::default();
    let text = std::str::from_utf8(d.now()).unwrap().to_string();
    assert_eq!(text.len(), 29);
    assert!(text.ends_with(" GMT"), "{text}");
}
