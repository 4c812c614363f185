//! A real HTTP upstream on 127.0.0.1:0 that answers with what it received
//! (method, target, headers, body length) as JSON, plus a few special
//! paths: `/big?bytes=N` streams N bytes, `/sleep?ms=N` answers late,
//! `/reset` dies in the middle of its body, `/ws` is a WebSocket echo, and
//! `/set-cookie` tries to set the gateway's cookie.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

type Body = BoxBody<Bytes, std::io::Error>;

/// What the upstream saw of one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body_len: u64,
}

impl Seen {
    /// All values of a header (name compared case-insensitively).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }
    pub fn one(&self, name: &str) -> Option<String> {
        let all = self.all(name);
        assert!(all.len() <= 1, "{name} appears {} times", all.len());
        all.into_iter().next()
    }
}

/// One TLS handshake seen by [`Upstream::start_tls`].
#[derive(Debug, Clone)]
pub struct Handshake {
    pub sni: Option<String>,
    pub client_cert: bool,
    /// Whether the handshake completed.
    pub ok: bool,
}

pub type Handshakes = Arc<Mutex<Vec<Handshake>>>;

#[derive(Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let log = log.clone();
                        async move { Ok::<_, Infallible>(answer(req, log).await) }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream { addr, seen }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The same echo upstream behind TLS with `config`; each handshake's
    /// SNI and whether the client showed a certificate are recorded in
    /// `handshakes`.
    pub async fn start_tls(config: Arc<rustls::ServerConfig>) -> (Upstream, Handshakes) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handshakes: Handshakes = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let shakes = handshakes.clone();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let log = log.clone();
                let shakes = shakes.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        shakes.lock().unwrap().push(Handshake {
                            sni: None,
                            client_cert: false,
                            ok: false,
                        });
                        return;
                    };
                    let (_, conn) = tls.get_ref();
                    shakes.lock().unwrap().push(Handshake {
                        sni: conn.server_name().map(String::from),
                        client_cert: conn.peer_certificates().is_some_and(|c| !c.is_empty()),
                        ok: true,
                    });
                    let service = hyper::service::service_fn(move |req| {
                        let log = log.clone();
                        async move { Ok::<_, Infallible>(answer(req, log).await) }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        (Upstream { addr, seen }, handshakes)
    }

    pub fn last(&self) -> Option<Seen> {
        self.seen.lock().unwrap().last().cloned()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// An address where nothing listens (connections are refused).
pub fn refused_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn query_number(req: &Request<Incoming>, name: &str) -> u64 {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

async fn answer(mut req: Request<Incoming>, log: Arc<Mutex<Vec<Seen>>>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path.ends_with("/ws") {
        return websocket(&mut req);
    }
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let method = req.method().to_string();
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let version = format!("{:?}", req.version());
    let bytes = query_number(&req, "bytes");
    let ms = query_number(&req, "ms");
    // Count the body without keeping it.
    let mut body = req.into_body();
    let mut body_len = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Some(d) = f.data_ref() {
                    body_len += d.len() as u64;
                }
            }
            Err(_) => break,
        }
    }
    let seen = Seen {
        method,
        target,
        version,
        headers,
        body_len,
    };
    log.lock().unwrap().push(seen.clone());
    // Special paths match on their last segment, so they work under any prefix.
    let last = path.rsplit('/').next().unwrap_or("").to_string();
    match format!("/{last}").as_str() {
        "/big" => {
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            let chunks = bytes / chunk.len() as u64;
            let stream = futures_util::stream::iter(
                (0..chunks).map(move |_| Ok::<_, std::io::Error>(Frame::data(chunk.clone()))),
            );
            let mut resp = Response::new(BodyExt::boxed(StreamBody::new(stream)));
            resp.headers_mut()
                .insert("content-length", (chunks * 64 * 1024).into());
            resp
        }
        "/sleep" => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Response::new(full("slept"))
        }
        "/reset" => {
            let stream = futures_util::stream::iter(vec![
                Ok(Frame::data(Bytes::from_static(b"partial"))),
                Err(std::io::Error::other("reset")),
            ]);
            let mut resp = Response::new(BodyExt::boxed(StreamBody::new(stream)));
            resp.headers_mut().insert("content-length", 1000.into());
            resp
        }
        "/hop-answer" => {
            // The connection's own headers, and one that `Connection`
            // names: none of them may reach the client.
            let mut resp = Response::new(full("hop"));
            let h = resp.headers_mut();
            h.insert("connection", "X-Upstream-Hidden".parse().unwrap());
            h.insert("x-upstream-hidden", "1".parse().unwrap());
            h.insert("keep-alive", "timeout=99".parse().unwrap());
            h.insert("proxy-authenticate", "Basic".parse().unwrap());
            h.insert("x-upstream", "1".parse().unwrap());
            resp
        }
        "/set-cookie" => {
            let mut resp = Response::new(full("cookies"));
            resp.headers_mut()
                .append("set-cookie", "portcullis=evil; Path=/".parse().unwrap());
            resp.headers_mut().append(
                "set-cookie",
                "__Host-portcullis=evil; Path=/; Secure".parse().unwrap(),
            );
            resp.headers_mut()
                .append("set-cookie", "app=1; Path=/".parse().unwrap());
            resp
        }
        _ => {
            let mut resp = Response::new(full(serde_json::to_vec(&seen).unwrap()));
            resp.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            // Hop-by-hop headers the gateway must not pass back.
            resp.headers_mut()
                .insert("keep-alive", "timeout=99".parse().unwrap());
            resp.headers_mut()
                .insert("x-upstream", "1".parse().unwrap());
            resp
        }
    }
}

fn websocket(req: &mut Request<Incoming>) -> Response<Body> {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        let mut r = Response::new(full("not a websocket request"));
        *r.status_mut() = StatusCode::BAD_REQUEST;
        return r;
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            None,
        )
        .await;
        while let Some(Ok(msg)) = ws.next().await {
            if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                return;
            }
        }
    });
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert("connection", "upgrade".parse().unwrap());
    h.insert("upgrade", "websocket".parse().unwrap());
    h.insert("sec-websocket-accept", accept.parse().unwrap());
    resp
}

/// Waits until the upstream has seen `n` requests (polling, 5 s at most).
pub async fn wait_for_count(up: &Upstream, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while up.count() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "upstream saw {} < {n}",
            up.count()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
