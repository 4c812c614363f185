//! Unit tests of the raw upstream client: the answer's framing, split
//! anywhere, and the reuse verdict.

use super::*;

fn head(text: &str, method: &Method) -> Result<Option<(u16, Framing, bool)>, ExchangeError> {
    let mut buf = BytesMut::from(text.as_bytes());
    parse_head(&mut buf, method).map(|o| o.map(|(p, f, k)| (p.status.as_u16(), f, k)))
}

#[test]
fn framing_follows_rfc_9112() {
    let get = Method::GET;
    type Case = (&'static str, Option<(u16, Framing, bool)>);
    let cases: &[Case] = &[
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            Some((200, Framing::Length(5), true)),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            Some((200, Framing::Length(5), true)),
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            Some((200, Framing::Chunked, true)),
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            Some((200, Framing::UntilClose, false)),
        ),
        (
            "HTTP/1.1 200 OK\r\n\r\n",
            Some((200, Framing::UntilClose, false)),
        ),
        (
            "HTTP/1.1 204 No Content\r\n\r\n",
            Some((204, Framing::Empty, true)),
        ),
        (
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
            Some((304, Framing::Empty, true)),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            Some((200, Framing::Empty, false)),
        ),
        (
            "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n",
            Some((200, Framing::Length(2), false)),
        ),
        (
            "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n",
            Some((200, Framing::Length(2), true)),
        ),
        ("HTTP/1.1 200 OK\r\nContent-Le", None),
    ];
    for (text, want) in cases {
        assert_eq!(head(text, &get).unwrap(), *want, "{text:?}");
    }
    assert_eq!(
        head(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            &Method::HEAD
        )
        .unwrap(),
        Some((200, Framing::Empty, true))
    );
}

#[test]
fn ambiguous_or_broken_heads_are_refused() {
    for text in [
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
        "SSH-2.0-OpenSSH\r\n\r\n",
    ] {
        assert!(
            matches!(head(text, &Method::GET), Err(ExchangeError::Malformed(_))),
            "{text:?}"
        );
    }
}

/// A chunked answer written a few bytes at a time (so reads end in the
/// middle of sizes, data, line ends and trailers) decodes to the same
/// body and trailers, and the connection comes back for reuse.
#[tokio::test]
async fn chunked_answers_split_anywhere_decode_the_same() {
    use http_body_util::BodyExt;
    let answer: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
        5;ext=\"x\"\r\nhello\r\n1\r\n,\r\n10\r\n and sixteen mor\r\n0\r\n\
        x-check: 7\r\n\r\n";
    for step in [1usize, 2, 3, 7, 64] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut head = [0u8; 1024];
            let _ = s.read(&mut head).await.unwrap();
            for piece in answer.chunks(step) {
                s.write_all(piece).await.unwrap();
                s.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
            s
        });
        let conn = RawConn::new(
            TcpStream::connect(addr).await.unwrap(),
            Instant::now() + std::time::Duration::from_secs(10),
        );
        let (parts, mut body) = exchange(
            conn,
            b"GET / HTTP/1.1\r\nhost: a\r\n\r\n",
            &Method::GET,
            None,
        )
        .await
        .unwrap();
        assert_eq!(parts.status, 200);
        let back = std::sync::Arc::new(std::sync::Mutex::new(false));
        let seen = back.clone();
        body.on_done(Box::new(move |_| *seen.lock().unwrap() = true));
        let collected = body.collect().await.unwrap();
        let trailers = collected.trailers().cloned();
        assert_eq!(
            &collected.to_bytes()[..],
            b"hello, and sixteen mor",
            "step {step}"
        );
        assert_eq!(
            trailers.unwrap().get("x-check").unwrap(),
            "7",
            "step {step}"
        );
        assert!(
            *back.lock().unwrap(),
            "step {step}: connection not given back"
        );
        drop(server.await.unwrap());
    }
}
