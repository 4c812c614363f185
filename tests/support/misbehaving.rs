//! A raw-TCP upstream that answers longer than its framing says, on
//! request: the bytes an upstream sends past the end of an answer are what
//! can make one client's answer reach another over a reused connection.
//!
//! Owns: a listener on 127.0.0.1:0; for every request (head, and a body by
//! `Content-Length`), an answer that names it: body `answer for <target>`,
//! `x-answer-for: <target>`, `x-echo-email: <X-Forwarded-Email or ->` and
//! a `set-cookie: app=<target>` (the app's own cookie). A target of the
//! form `/…/misbehave/<kind>/<when>/…` adds bytes past the answer:
//!
//! - `head-body`: the answer to a `HEAD` carries its body (`do_HEAD =
//!   do_GET`); for any other method the body is sent twice.
//! - `204-body`, `304-body`: a 204 or 304 followed by a body.
//! - `overrun`: more body than `Content-Length` says.
//! - `second`: the same answer once more (an app that writes twice).
//! - `chunked-junk`: a chunked answer with bytes after its last chunk.
//!
//! `<when>` is `now` (the extra bytes in the same write as the answer) or
//! `later` (written [`LATER`] after it). Each time extra bytes have been
//! written, [`Misbehaving::extras_sent`] resolves once, so a test sends its
//! next requests when the bytes are on the gateway's socket, without
//! guessing a delay.
//!
//! Does not own: anything of the gateway.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Mutex};

/// How long after its answer a `later` upstream sends the extra bytes.
pub const LATER: Duration = Duration::from_millis(60);

/// The ways to answer longer than the framing says.
pub const KINDS: [&str; 6] = [
    "head-body",
    "204-body",
    "304-body",
    "overrun",
    "second",
    "chunked-junk",
];

pub struct Misbehaving {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    extras: Mutex<mpsc::UnboundedReceiver<()>>,
}

impl Misbehaving {
    pub async fn start() -> Misbehaving {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::unbounded_channel();
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, tx.clone()));
            }
        });
        Misbehaving {
            addr,
            accepted,
            extras: Mutex::new(rx),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Resolves when the next extra bytes have been written (on loopback
    /// they are then in the gateway's receive buffer).
    pub async fn extras_sent(&self) {
        tokio::time::timeout(Duration::from_secs(10), self.extras.lock().await.recv())
            .await
            .expect("the upstream sent its extra bytes")
            .unwrap();
    }
}

/// The answer (and the bytes past it) for one request.
struct Reply {
    answer: Vec<u8>,
    extra: Vec<u8>,
    later: bool,
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

fn reply(head: &str) -> Reply {
    let mut first = head.split(' ');
    let method = first.next().unwrap_or("");
    let target = first.next().unwrap_or("/").to_string();
    let email = header(head, "x-forwarded-email").unwrap_or_else(|| "-".into());
    let body = format!("answer for {target}");
    let fields = format!(
        "x-answer-for: {target}\r\nx-echo-email: {email}\r\nset-cookie: app={}\r\ncontent-type: text/plain\r\n",
        target.replace([';', ',', ' '], "_")
    );
    let plain = |status: &str, with_body: bool| {
        let mut a = format!(
            "HTTP/1.1 {status}\r\n{fields}content-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        if with_body {
            a.extend_from_slice(body.as_bytes());
        }
        a
    };
    let normal = plain("200 OK", method != "HEAD");
    let mut parts = target.split('/').skip_while(|s| *s != "misbehave").skip(1);
    let (kind, when) = (parts.next(), parts.next());
    let later = when == Some("later");
    let (answer, extra) = match kind {
        Some("head-body") if method == "HEAD" => (normal.clone(), body.clone().into_bytes()),
        Some("head-body") => (normal.clone(), body.clone().into_bytes()),
        Some("204-body") => (
            format!("HTTP/1.1 204 No Content\r\n{fields}\r\n").into_bytes(),
            body.clone().into_bytes(),
        ),
        Some("304-body") => (plain("304 Not Modified", false), body.clone().into_bytes()),
        Some("overrun") => (normal.clone(), b" and more than its length".to_vec()),
        Some("second") => (normal.clone(), normal.clone()),
        Some("chunked-junk") => (
            format!(
                "HTTP/1.1 200 OK\r\n{fields}transfer-encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                body.len()
            )
            .into_bytes(),
            normal.clone(),
        ),
        _ => (normal, Vec::new()),
    };
    Reply {
        answer,
        extra,
        later,
    }
}

async fn serve(mut stream: TcpStream, extras: mpsc::UnboundedSender<()>) {
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
        let length = super::client::content_length(&head);
        while buf.len() < length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..length);
        let Reply {
            mut answer,
            extra,
            later,
        } = reply(&head);
        if !later {
            answer.extend_from_slice(&extra);
        }
        if stream.write_all(&answer).await.is_err() {
            return;
        }
        if later && !extra.is_empty() {
            tokio::time::sleep(LATER).await;
            if stream.write_all(&extra).await.is_err() {
                return;
            }
        }
        if !extra.is_empty() {
            let _ = extras.send(());
        }
    }
}
