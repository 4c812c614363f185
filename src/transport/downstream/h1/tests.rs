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
        Taken::Request(req, _) => {
            let body = match req.into_body() {
                RequestBody::Whole(b) => b.to_vec(),
                RequestBody::Empty => Vec::new(),
                RequestBody::Hyper(_) => return Err("hyper's body"),
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
        "Content-Length: 16385",
        "Content-Length: 100000",
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
    let (req, close) = head.into_request(&mut buf, &spans).unwrap();
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
    // Still on its way: hyper reads it (with its body timeout).
    assert_eq!(take(&format!("{post}hell")), Err("hyper"));
    assert_eq!(take(post), Err("hyper"));
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
}

#[test]
fn body_lengths_are_plain_decimals_up_to_the_limit() {
    assert_eq!(body_length(b"0"), Some(0));
    assert_eq!(body_length(b"1"), Some(1));
    assert_eq!(body_length(b"16384"), Some(MAX_BODY));
    for bad in [
        &b""[..],
        b"00",
        b"01",
        b"16385",
        b"99999",
        b"100000",
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
