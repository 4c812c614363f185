//! Forwarding one request to its upstream and the answer back.
//!
//! Owns the upstream connection pools (one pooled hyper-util client per
//! route, so each route's connect timeout applies), the rewrite of the
//! request (canonical path, header hygiene in the fixed order of
//! [`crate::headers`], identity and `X-Forwarded-*` added last), streaming
//! of bodies both ways (hyper's backpressure keeps memory bounded),
//! WebSocket tunnels, and the mapping of upstream failures to 502/504.

use std::time::Duration;

use http::header::{self, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme as UriScheme};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use crate::body::{self, Body};
use crate::error::Error;
use crate::forwarded::{self, ClientInfo};
use crate::headers::{self, FORWARDED_EMAIL, FORWARDED_USER};

pub type UpstreamClient = Client<HttpConnector, Body>;

/// A pooled client whose connects give up after `connect_timeout`.
pub fn client(connect_timeout: Duration) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    connector.enforce_http(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(1024)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector)
}

/// The upstream connection pools of one worker thread: one pooled client
/// per connect timeout, made on first use. Each worker (one per core) has
/// its own, so a request, its pooled upstream connection and the tasks that
/// drive them stay on one thread.
#[derive(Default)]
pub struct Pools {
    clients: std::sync::Mutex<std::collections::HashMap<Duration, UpstreamClient>>,
}

impl Pools {
    pub fn client(&self, connect_timeout: Duration) -> UpstreamClient {
        let mut map = match self.clients.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(connect_timeout)
            .or_insert_with(|| client(connect_timeout))
            .clone()
    }
}

/// Everything the proxy needs to know about this request besides the
/// request itself.
pub struct Forward<'a> {
    pub authority: &'a Authority,
    pub path_and_query: PathAndQuery,
    pub identity: Option<&'a str>,
    pub client: &'a ClientInfo,
    pub gateway_cookies: &'a [&'a str],
    pub timeout: Duration,
}

/// Prepares the request for the upstream: header hygiene, then ours.
pub fn rewrite_request(req: &mut Request<Body>, f: &Forward<'_>, websocket: bool) {
    let host = req.headers().get(header::HOST).cloned().or_else(|| {
        req.uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    let h = req.headers_mut();
    headers::remove_hop_by_hop(h, websocket);
    headers::strip_identity(h);
    headers::strip_cookies(h, f.gateway_cookies);
    forwarded::set_forwarded_headers(h, f.client);
    if let Some(host) = host {
        h.insert(header::HOST, host);
    }
    if let Some(email) = f.identity {
        if let Ok(v) = HeaderValue::from_str(email) {
            h.insert(FORWARDED_EMAIL, v.clone());
            h.insert(FORWARDED_USER, v);
        }
    }
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(UriScheme::HTTP);
    parts.authority = Some(f.authority.clone());
    parts.path_and_query = Some(f.path_and_query.clone());
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    *req.version_mut() = Version::HTTP_11;
}

/// Cleans the upstream's answer before it goes to the client.
pub fn rewrite_response(resp: &mut Response<Body>, gateway_cookies: &[&str], websocket: bool) {
    let h = resp.headers_mut();
    headers::remove_hop_by_hop(h, websocket);
    headers::strip_upstream_set_cookie(h, gateway_cookies);
}

/// Sends `req` (incoming from the client) to the upstream and returns the
/// answer to give the client.
pub async fn forward(
    upstream: &UpstreamClient,
    req: Request<Incoming>,
    f: Forward<'_>,
) -> Result<Response<Body>, Error> {
    let websocket = headers::is_websocket_upgrade(req.headers());
    let (mut parts, incoming) = req.into_parts();
    let client_upgrade = if websocket {
        let mut probe = Request::from_parts(parts, ());
        let on = hyper::upgrade::on(&mut probe);
        parts = probe.into_parts().0;
        Some(on)
    } else {
        None
    };
    let mut out = Request::from_parts(parts, body::client_body(incoming));
    rewrite_request(&mut out, &f, websocket);
    let sent = tokio::time::timeout(f.timeout, upstream.request(out)).await;
    let resp = match sent {
        Err(_) => return Err(Error::UpstreamTimeout),
        Ok(Err(e)) => return Err(classify(&e)),
        Ok(Ok(r)) => r,
    };
    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    let (rparts, rbody) = resp.into_parts();
    if switching {
        let Some(client_upgrade) = client_upgrade else {
            return Err(Error::UpstreamFailed(
                "upgrade that was not asked for".into(),
            ));
        };
        let mut probe = Response::from_parts(rparts, rbody);
        let upstream_upgrade = hyper::upgrade::on(&mut probe);
        let (rparts, _) = probe.into_parts();
        tokio::spawn(async move {
            let (Ok(client_io), Ok(upstream_io)) = tokio::join!(client_upgrade, upstream_upgrade)
            else {
                tracing::debug!("websocket upgrade did not complete");
                return;
            };
            let mut a = TokioIo::new(client_io);
            let mut b = TokioIo::new(upstream_io);
            let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
        });
        let mut resp = Response::from_parts(rparts, body::empty());
        rewrite_response(&mut resp, f.gateway_cookies, true);
        return Ok(resp);
    }
    let mut resp = Response::from_parts(rparts, body::incoming(rbody));
    rewrite_response(&mut resp, f.gateway_cookies, false);
    Ok(resp)
}

fn classify(e: &hyper_util::client::legacy::Error) -> Error {
    use std::error::Error as _;
    let mut source = e.source();
    while let Some(s) = source {
        if s.downcast_ref::<body::ClientBodyError>().is_some() {
            return Error::BadRequest("The request body is malformed or was cut off.");
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return Error::UpstreamTimeout;
            }
        }
        source = s.source();
    }
    let what = if e.is_connect() {
        "connect failed"
    } else {
        "connection closed or reset"
    };
    Error::UpstreamFailed(format!("{what}: {e}"))
}
