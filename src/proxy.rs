//! Forwarding one request to its upstream and the answer back.
//!
//! Owns the rewrite of the request (canonical path; the headers of
//! [`crate::outgoing`]: header hygiene, then identity and `X-Forwarded-*`),
//! streaming of bodies both ways (hyper's backpressure keeps memory
//! bounded), WebSocket tunnels, and the mapping of upstream failures to
//! 502/504. Connections come from the worker's [`Pool`].
//!
//! Both upstream paths give the client the same: an answer with both
//! `Content-Length` and `Transfer-Encoding` is 502, the status line is
//! HTTP/1.1 whatever the upstream's was, and an answer whose body breaks
//! off (a reset, a close, garbled framing) is logged as a warning naming
//! the route ([`CutShort`]): its access-log line, written when the head
//! went out, says 200.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::uri::{Authority, PathAndQuery};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;

use crate::body::{self, Body, RequestBody};
use crate::error::Error;
use crate::forwarded::ClientInfo;
use crate::h1;
use crate::headers;
use crate::outgoing::{self, Added};
use crate::pool::{Pool, SendError};
use crate::routes::Route;

/// Everything the proxy needs to know about this request besides the
/// request itself.
pub struct Forward<'a> {
    pub authority: &'a Authority,
    pub path_and_query: PathAndQuery,
    pub identity: Option<&'a str>,
    pub client: &'a ClientInfo,
    pub gateway_cookies: &'a [&'a str],
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// The request asks for a WebSocket upgrade
    /// ([`headers::is_websocket_upgrade`], decided once by the caller).
    pub websocket: bool,
    /// Resolves when the session behind a signed-in request ends (logout,
    /// revocation, expiry): a WebSocket tunnel is closed then.
    pub session_ends: Option<SessionEnds>,
    /// `[server] strip_headers`: more client headers dropped.
    pub strip_headers: &'a [String],
    /// The route, for the warning about an answer cut short.
    pub route: &'a Arc<Route>,
    /// `server.body_read_timeout`: the longest wait for the next bytes
    /// of a request body.
    pub body_read_timeout: Duration,
}

/// See [`Forward::session_ends`].
pub type SessionEnds = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Forward<'_> {
    /// What the gateway adds to this request on its way upstream.
    fn added(&self, websocket: bool) -> Added<'_> {
        Added {
            client: self.client,
            identity: self.identity,
            gateway_cookies: self.gateway_cookies,
            websocket,
            strip: self.strip_headers,
        }
    }
}

/// Prepares the request for the upstream: header hygiene, then ours (see
/// [`crate::outgoing`]).
pub fn rewrite_request(req: &mut Request<Body>, f: &Forward<'_>, websocket: bool) {
    let headers = outgoing::map(req.headers(), req.uri().authority(), &f.added(websocket));
    *req.headers_mut() = headers;
    // Origin-form, as HTTP/1.1 sends it to a server (the host is in Host).
    *req.uri_mut() = Uri::from(f.path_and_query.clone());
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
    pool: &Arc<Pool>,
    req: Request<RequestBody>,
    f: Forward<'_>,
) -> Result<Response<Body>, Error> {
    let websocket = f.websocket;
    let (mut parts, incoming) = req.into_parts();
    let client_upgrade = if websocket {
        let mut probe = Request::from_parts(parts, ());
        let on = hyper::upgrade::on(&mut probe);
        parts = probe.into_parts().0;
        Some(on)
    } else {
        None
    };
    // No body (nearly every page load): the request goes out and its
    // answer comes back in this task. Otherwise hyper's client streams it.
    let direct = pool.fast_path() && !websocket && hyper::body::Body::is_end_stream(&incoming);
    // The route timeout bounds the wait for the answer's head: the raw
    // connection keeps a timer of its own for that (see `h1::RawConn`).
    let sent = if direct {
        // The head is written straight from the client's headers: no
        // second header map.
        let head = outgoing::head(
            &parts.method,
            f.path_and_query.as_str(),
            &parts.headers,
            parts.uri.authority(),
            &f.added(false),
        );
        pool.send_direct(
            f.authority,
            f.connect_timeout,
            f.timeout,
            &head,
            &parts.method,
        )
        .await
    } else {
        let mut out = Request::from_parts(parts, body::client_body(incoming, f.body_read_timeout));
        rewrite_request(&mut out, &f, websocket);
        // Boxed: hyper's client future is large, and only requests with a
        // body or an upgrade take this way.
        let sending = Box::pin(pool.send(f.authority, f.connect_timeout, out, websocket));
        match tokio::time::timeout(f.timeout, sending).await {
            Err(_) => return Err(Error::UpstreamTimeout),
            Ok(sent) => sent.map(|resp| {
                let streamed = !hyper::body::Body::is_end_stream(resp.body());
                (resp, streamed)
            }),
        }
    };
    let (mut resp, streamed) = sent.map_err(classify)?;
    if !direct {
        // What `h1` refuses and sets on the other path (RFC 9112 §6.3:
        // both framing headers are an error; the client talks HTTP/1.1
        // to us, whatever the upstream spoke).
        let h = resp.headers();
        if h.contains_key(http::header::CONTENT_LENGTH)
            && h.contains_key(http::header::TRANSFER_ENCODING)
        {
            return Err(Error::UpstreamFailed(
                "malformed answer: both Content-Length and Transfer-Encoding".into(),
            ));
        }
        *resp.version_mut() = Version::HTTP_11;
    }
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
        let session_ends = f.session_ends;
        tokio::spawn(async move {
            let (Ok(client_io), Ok(upstream_io)) = tokio::join!(client_upgrade, upstream_upgrade)
            else {
                tracing::debug!("websocket upgrade did not complete");
                return;
            };
            let mut a = TokioIo::new(client_io);
            let mut b = TokioIo::new(upstream_io);
            let ends = async move {
                match session_ends {
                    Some(ends) => ends.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut a, &mut b) => {}
                _ = ends => tracing::debug!("websocket closed: the session ended"),
            }
        });
        let mut resp = Response::from_parts(rparts, body::empty());
        rewrite_response(&mut resp, f.gateway_cookies, true);
        return Ok(resp);
    }
    let rbody = if streamed {
        http_body_util::BodyExt::boxed(CutShort {
            inner: rbody,
            route: Arc::clone(f.route),
        })
    } else {
        rbody
    };
    let mut resp = Response::from_parts(rparts, rbody);
    if direct {
        // `h1` has already dropped the hop-by-hop headers.
        headers::strip_upstream_set_cookie(resp.headers_mut(), f.gateway_cookies);
    } else {
        rewrite_response(&mut resp, f.gateway_cookies, false);
    }
    Ok(resp)
}

fn classify(e: SendError) -> Error {
    use std::error::Error as _;
    let e = match e {
        SendError::ConnectTimeout => return Error::UpstreamTimeout,
        SendError::Connect(e) => return Error::UpstreamFailed(format!("connect failed: {e}")),
        SendError::Exchange(h1::ExchangeError::TimedOut) => return Error::UpstreamTimeout,
        SendError::Exchange(h1::ExchangeError::Io { error, .. })
            if error.kind() == std::io::ErrorKind::TimedOut =>
        {
            return Error::UpstreamTimeout
        }
        SendError::Exchange(e) => {
            return Error::UpstreamFailed(format!("connection closed, reset or garbled: {e}"))
        }
        SendError::Http(e) => e,
    };
    let mut source = e.source();
    while let Some(s) = source {
        if s.downcast_ref::<body::ClientBodyTimeout>().is_some() {
            return Error::RequestTimeout;
        }
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
    Error::UpstreamFailed(format!("connection closed or reset: {e}"))
}

/// An answer's body on its way to the client. A failure in its middle
/// (the upstream reset or closed the connection, or broke the framing)
/// cuts the client's answer short: logged here as what it is, since the
/// access-log line already went out with the status of the head.
struct CutShort {
    inner: Body,
    route: Arc<Route>,
}

impl hyper::body::Body for CutShort {
    type Data = bytes::Bytes;
    type Error = body::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, body::BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Err(e))) = &polled {
            tracing::warn!(
                route = %self.route.name(),
                error = %e,
                "the upstream broke off its answer in the middle of the body (reset, close or bad framing): the client's answer was cut short"
            );
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
