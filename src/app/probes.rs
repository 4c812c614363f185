//! The probes and the admin listener's answers: `/.portcullis/ping` and
//! `/.portcullis/ready` on every host of the main listener, and `/ping`,
//! `/healthz`, `/ready`, `/readyz` and `/metrics` on `[admin] listen`.

use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};

use crate::body::{self, Body};
use crate::error::Error;
use crate::state::App;
use crate::store::Store;

impl App {
    /// The admin listener's answers: `/ping` and `/healthz` (liveness,
    /// checking nothing), `/ready` and `/readyz` (the store answers),
    /// `/metrics` (unless `[admin] metrics = false`), 404 for anything
    /// else.
    pub async fn admin(&self, method: Method, path: &str) -> Response<Body> {
        let result = match path {
            "/metrics" if self.live.load().config.admin.metrics => {
                if method == Method::GET || method == Method::HEAD {
                    Ok(metrics_answer(self.metrics_text()))
                } else {
                    Err(Error::MethodNotAllowed)
                }
            }
            "/ping" | "/healthz" => {
                if method == Method::GET || method == Method::HEAD {
                    Ok(body::plain(StatusCode::OK, "OK"))
                } else {
                    Err(Error::MethodNotAllowed)
                }
            }
            "/ready" | "/readyz" => ready(&self.store, &method).await,
            _ => Err(Error::NoRoute),
        };
        match result {
            Ok(resp) => resp,
            Err(e) => body::plain(e.status(), e.public_message()),
        }
    }
}

/// A scrape's answer: Prometheus text, never cached.
fn metrics_answer(text: String) -> Response<Body> {
    let mut resp = Response::new(body::full(text));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The liveness probe, on every host of the main listener.
pub const PING_PATH: &str = "/.portcullis/ping";

/// The readiness probe, on every host of the main listener.
pub const READY_PATH: &str = "/.portcullis/ready";

/// `GET /.portcullis/ready`: 200 `ready` when the store is usable, else 503
/// with a short JSON reason; never cached. Sessions and sign-in need the
/// store, so a load balancer should send no one here while it is down.
pub(super) async fn ready(store: &Store, method: &Method) -> Result<Response<Body>, Error> {
    if method != Method::GET && method != Method::HEAD {
        return Err(Error::MethodNotAllowed);
    }
    if store.ready().await {
        return Ok(body::plain(StatusCode::OK, "ready"));
    }
    let mut resp = Response::new(body::full(
        &br#"{"status":"unavailable","reason":"store"}"#[..],
    ));
    *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    body::own_answer_headers(resp.headers_mut(), "application/json");
    Ok(resp)
}
