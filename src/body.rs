//! The one response body type and small response builders. Every response
//! the gateway makes itself goes through here so that the security headers
//! are the same everywhere.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::{Frame, Incoming, SizeHint};
use tokio::time::Sleep;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = BoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub fn incoming(body: Incoming) -> Body {
    body.map_err(|e| Box::new(e) as BoxError).boxed()
}

/// A client's request body: hyper's; one the own HTTP/1.1 loop read
/// whole with the head (a small `Content-Length` body, see
/// [`crate::transport::downstream::h1`]); one that loop is still reading
/// ([`Streamed`]); or none at all.
#[derive(Debug)]
pub enum RequestBody {
    Hyper(Incoming),
    Whole(Bytes),
    Streamed(Streamed),
    Empty,
}

/// A `Content-Length` body the own HTTP/1.1 loop reads off the client's
/// connection while the request is handled: exactly `left` more bytes, in
/// the order read, or an error when the client's connection ends or fails
/// first. The loop reads the next bytes only once these are taken (the
/// channel holds one chunk), so a body nobody reads stays in the socket.
#[derive(Debug)]
pub struct Streamed {
    chunks: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    left: u64,
}

/// The loop's end of a [`Streamed`] body.
pub type StreamedFeed = tokio::sync::mpsc::Sender<std::io::Result<Bytes>>;

impl Streamed {
    /// A body of `length` bytes, and the sender its bytes are fed through.
    pub fn channel(length: u64) -> (Streamed, StreamedFeed) {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        (
            Streamed {
                chunks: rx,
                left: length,
            },
            tx,
        )
    }
}

impl RequestBody {
    /// The whole body when it is already here (`None` for hyper's, which
    /// is still to be read; `Some` and empty for none).
    pub fn whole(&self) -> Option<&Bytes> {
        static NONE: Bytes = Bytes::new();
        match self {
            RequestBody::Hyper(_) | RequestBody::Streamed(_) => None,
            RequestBody::Whole(bytes) => Some(bytes),
            RequestBody::Empty => Some(&NONE),
        }
    }

    /// Whether this is a body the own loop is still reading.
    pub fn is_streamed(&self) -> bool {
        matches!(self, RequestBody::Streamed(_))
    }
}

impl hyper::body::Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            RequestBody::Hyper(inner) => Pin::new(inner)
                .poll_frame(cx)
                .map_err(|e| Box::new(e) as BoxError),
            RequestBody::Streamed(s) => {
                if s.left == 0 {
                    return Poll::Ready(None);
                }
                match s.chunks.poll_recv(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Some(Ok(chunk))) => {
                        // The loop sends at most what is left.
                        s.left = s.left.saturating_sub(chunk.len() as u64);
                        Poll::Ready(Some(Ok(Frame::data(chunk))))
                    }
                    Poll::Ready(Some(Err(e))) => {
                        s.left = 0;
                        Poll::Ready(Some(Err(Box::new(e))))
                    }
                    // The loop stopped feeding before the end: the request
                    // was already answered.
                    Poll::Ready(None) => {
                        s.left = 0;
                        Poll::Ready(Some(Err(Box::new(std::io::Error::from(
                            std::io::ErrorKind::UnexpectedEof,
                        )))))
                    }
                }
            }
            RequestBody::Whole(bytes) if !bytes.is_empty() => {
                Poll::Ready(Some(Ok(Frame::data(std::mem::take(bytes)))))
            }
            RequestBody::Whole(_) | RequestBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Hyper(inner) => inner.is_end_stream(),
            RequestBody::Streamed(s) => s.left == 0,
            RequestBody::Whole(bytes) => bytes.is_empty(),
            RequestBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Hyper(inner) => inner.size_hint(),
            RequestBody::Streamed(s) => SizeHint::with_exact(s.left),
            RequestBody::Whole(bytes) => SizeHint::with_exact(bytes.len() as u64),
            RequestBody::Empty => SizeHint::with_exact(0),
        }
    }
}

/// A failure reading the *client's* request body (bad chunking, a reset):
/// marked so that it is answered 400, not blamed on the upstream.
#[derive(Debug, thiserror::Error)]
#[error("client request body: {0}")]
pub struct ClientBodyError(pub BoxError);

/// The client's request body stopped for longer than
/// `server.body_read_timeout`: answered 408, and the upstream connection
/// it was going to is closed.
#[derive(Debug, thiserror::Error)]
#[error("client request body: nothing for {0:?}")]
pub struct ClientBodyTimeout(pub Duration);

/// The client's request body on its way upstream; a wait of more than
/// `idle` for its next bytes ends it with [`ClientBodyTimeout`].
pub fn client_body(body: RequestBody, idle: Duration) -> Body {
    Trickle {
        inner: body,
        idle,
        timer: None,
        armed: false,
    }
    .boxed()
}

/// See [`client_body`]. The timer is made at the first wait and moved on
/// after each frame (a trickled body slower than `idle` between two reads
/// would otherwise hold its upstream connection for the route timeout).
struct Trickle {
    inner: RequestBody,
    idle: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    /// The timer runs for the current wait.
    armed: bool,
}

impl hyper::body::Body for Trickle {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.armed = false;
                return Poll::Ready(
                    frame.map(|f| f.map_err(|e| Box::new(ClientBodyError(e)) as BoxError)),
                );
            }
            Poll::Pending => {}
        }
        let idle = this.idle;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
        if !this.armed {
            timer.as_mut().reset(tokio::time::Instant::now() + idle);
            this.armed = true;
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(ClientBodyTimeout(idle))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Content-Security-Policy of the gateway's own pages: nothing but our own
/// stylesheet and images; no scripts at all; never framed.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Headers every gateway page carries.
pub fn page_headers(resp: &mut Response<Body>, https: bool) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
}

/// An HTML page with the gateway's headers.
pub fn html(status: StatusCode, page: String, https: bool) -> Response<Body> {
    let mut resp = Response::new(full(page));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    page_headers(&mut resp, https);
    resp
}

/// A short plain-text answer (for clients that did not ask for HTML).
pub fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut resp = Response::new(full(format!("{text}\n")));
    *resp.status_mut() = status;
    own_answer_headers(resp.headers_mut(), "text/plain; charset=utf-8");
    resp
}

/// The headers of every answer the gateway makes itself: its
/// `Content-Type`, never stored, never sniffed.
pub fn own_answer_headers(h: &mut http::HeaderMap, content_type: &'static str) {
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// `303 See Other` to `location`, which the caller has already checked.
pub fn see_other(location: &str, https: bool) -> Response<Body> {
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    } else {
        resp.headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static("/"));
    }
    page_headers(&mut resp, https);
    resp
}
