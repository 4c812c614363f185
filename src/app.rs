//! The request hub: [`App`] as the transport's [`Handler`], and the one
//! function that sequences a request, in named phases that read top to
//! bottom (as pingora's proxy phases):
//!
//! ```text
//! serve ─ 1 request checks: limits (414/431), Host (400), path (400),
//!         │                 client info (trusted proxies)
//!         ─ 2 own endpoints: /.portcullis/ready ───────▶ 200 / 503 (store)
//!         │                  /.portcullis/* ───────────▶ signin::serve
//!         ─ 3 routing: routes.find_for (404, 405 by methods), the matching
//!         │            view and the literal path
//!         ─ 4 authorization: the session if needed (SessionCache; store down
//!         │   past grace ─▶ 503), then authorize::authorize:
//!         │     denied (deny = true) ▶ 403; bypass_networks ▶ pass, audited
//!         │     unauthenticated ─▶ 303 to sign-in (browser navigation) or 401
//!         │     forbidden ───────▶ 403 page
//!         ─ 5 upstream request: identity and X-Forwarded-* (outgoing), the
//!         │   WebSocket origin check ─▶ Upstream::send (the transport cleans
//!         │   the answer: 6 response filter)
//!         ─ 7 log: one line per request; the gateway's own 5xx at warn
//! ```
//! Leaf modules return values; errors become responses in one place
//! ([`App::error_response`]). The hub never touches a socket: it sees a
//! [`ConnInfo`] and an [`Upstream`] handle.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderMap, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode};

use crate::audit::{Entry, Event, Outcome, RequestFacts};
use crate::authorize::{self, Decision};
use crate::body::{self, Body, RequestBody};
use crate::config::{Limits, Scheme};
use crate::cookies;
use crate::error::Error;
use crate::forwarded::{self, ClientInfo};
use crate::metrics::AuthzEndpoint;
use crate::outgoing::{self, Added};
use crate::state::{Ctx, Live};
use crate::store::Store;
use crate::transport::{ConnInfo, Handler, Outgoing, Refusal, Upstream};
use crate::{demo, path, request_checks, signin};

pub use crate::state::App;

impl Handler for App {
    fn handle(
        self: &Arc<Self>,
        req: Request<RequestBody>,
        conn: &ConnInfo,
        upstream: &Upstream,
    ) -> impl Future<Output = Response<Body>> + Send {
        self.serve(req, conn, upstream)
    }

    fn refuse(&self, req: &Request<RequestBody>, conn: &ConnInfo, why: Refusal) -> Response<Body> {
        let e = match why {
            Refusal::AmbiguousFraming => {
                Error::BadRequest("The request has both Content-Length and Transfer-Encoding.")
            }
        };
        tracing::debug!(error = %e, "request refused");
        let live = self.live.load();
        let resp = self.error_response(&live, &e, wants_html(req.headers()), conn.tls);
        if let Some(counted) = self.metrics.request() {
            counted.done(req.method(), resp.status());
        }
        // Its access-log line, like any other request's.
        if tracing::enabled!(tracing::Level::INFO) {
            let (log_host, log_path) = log_fields(req.uri(), req.headers().get(header::HOST));
            tracing::info!(
                method = %req.method(),
                host = %log_host,
                path = %log_path,
                status = resp.status().as_u16(),
                ms = 0.0_f64,
                route = "",
                "request"
            );
        }
        resp
    }

    fn limits(&self) -> Limits {
        self.live.load().config.server.limits
    }
}

/// What the log line says about a request, filled in by the phases.
struct Facts {
    route: String,
    https: bool,
    /// A trusted proxy's `X-Request-Id`, or a new one: sent upstream, in
    /// every log line of the request and on the gateway's error answers.
    request_id: RequestId,
    /// The signed-in user, once known.
    user: Option<Arc<str>>,
}

impl Facts {
    fn masked_user(&self) -> String {
        self.user
            .as_deref()
            .map(crate::address::mask)
            .unwrap_or_default()
    }
}

const REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// A request's id: a trusted proxy's `X-Request-Id` (1 to 128 visible
/// characters without spaces), else 16 hex digits made here. Neither
/// allocates: a given id shares the request's header bytes.
enum RequestId {
    Given(HeaderValue),
    Made([u8; 16]),
}

impl RequestId {
    fn as_str(&self) -> &str {
        let bytes = match self {
            RequestId::Given(v) => v.as_bytes(),
            RequestId::Made(b) => b,
        };
        std::str::from_utf8(bytes).unwrap_or_default()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

thread_local! {
    /// The next made id of this thread: a random start, then a splitmix64
    /// step per request (unique and spread out; an id is a label, not a
    /// secret).
    static NEXT_ID: std::cell::Cell<u64> = std::cell::Cell::new({
        use rand::RngExt;
        rand::rng().random::<u64>()
    });
}

fn request_id(live: &Live, conn: &ConnInfo, headers: &HeaderMap) -> RequestId {
    if let Some(v) = headers.get(&REQUEST_ID) {
        let ok = (1..=128).contains(&v.len()) && v.as_bytes().iter().all(|b| b.is_ascii_graphic());
        if ok && forwarded::is_trusted(conn.peer.ip(), &live.config.server.trusted_proxies) {
            return RequestId::Given(v.clone());
        }
    }
    let n = NEXT_ID.with(|c| {
        let n = c.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        c.set(n);
        n
    });
    let mut z = n;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = HEX[((z >> (60 - 4 * i)) & 0xf) as usize];
    }
    RequestId::Made(out)
}

/// What phase 1 learnt about a request.
struct Checked {
    host: String,
    /// The canonical path: both matched and forwarded.
    path: String,
    client: ClientInfo,
    https: bool,
}

impl App {
    /// One request: its phases, then phase 7, the log line.
    pub async fn serve(
        self: &Arc<Self>,
        req: Request<RequestBody>,
        conn: &ConnInfo,
        upstream: &Upstream,
    ) -> Response<Body> {
        let logging = tracing::enabled!(tracing::Level::INFO);
        // In flight (for the metrics) until answered or dropped.
        let counted = self.metrics.request();
        // A clock read only for the log line or the metrics.
        let started = match &counted {
            Some(c) => Some(c.started()),
            None => logging.then(Instant::now),
        };
        let live = self.live.load_full();
        let method = req.method().clone();
        let wants_html = wants_html(req.headers());
        // Kept for the log line (cheap: both are reference-counted);
        // formatted only when a line is written.
        let uri = req.uri().clone();
        let host_header = req.headers().get(header::HOST).cloned();
        let mut facts = Facts {
            route: String::new(),
            https: conn.tls,
            request_id: request_id(&live, conn, req.headers()),
            user: None,
        };
        let result = self.phases(&live, req, conn, upstream, &mut facts).await;
        let (resp, failed) = match result {
            Ok(r) => (r, None),
            Err(e) => {
                let resp = self.error_response(&live, &e, wants_html, facts.https);
                let mut resp = resp;
                if let Ok(v) = HeaderValue::from_str(facts.request_id.as_str()) {
                    resp.headers_mut().insert(REQUEST_ID, v);
                }
                if e.status().is_server_error() {
                    (resp, Some(e))
                } else {
                    tracing::debug!(error = %e, "request refused");
                    (resp, None)
                }
            }
        };
        if let Some(counted) = counted {
            counted.done(&method, resp.status());
        }
        // A number in milliseconds, to the microsecond (a JSON number in
        // `--log-format json`, as `status` is).
        let ms = started.map_or(0.0, |t| (t.elapsed().as_secs_f64() * 1e6).round() / 1e3);
        if let Some(e) = failed {
            // The gateway's own 5xx: one line, at warn, whatever the level.
            let (log_host, log_path) = log_fields(&uri, host_header.as_ref());
            tracing::warn!(
                method = %method,
                host = %log_host,
                path = %log_path,
                status = resp.status().as_u16(),
                ms,
                route = %facts.route,
                user = %facts.masked_user(),
                request_id = %facts.request_id,
                error = %e,
                "request failed"
            );
            return resp;
        }
        if !logging {
            return resp;
        }
        let (log_host, log_path) = log_fields(&uri, host_header.as_ref());
        tracing::info!(
            method = %method,
            host = %log_host,
            path = %log_path,
            status = resp.status().as_u16(),
            ms,
            route = %facts.route,
            user = %facts.masked_user(),
            request_id = %facts.request_id,
            "request"
        );
        resp
    }

    /// Phases 1 to 6, in order.
    async fn phases(
        self: &Arc<Self>,
        live: &Live,
        req: Request<RequestBody>,
        conn: &ConnInfo,
        upstream: &Upstream,
        facts: &mut Facts,
    ) -> Result<Response<Body>, Error> {
        // 1. Request checks.
        let checked = check(live, &req, conn)?;
        facts.https = checked.https;

        // 2. The gateway's own endpoints.
        if is_own(&checked.path) {
            facts.route.push_str("portcullis");
            return self
                .own_endpoint(live, req, &checked, facts.request_id.as_str())
                .await;
        }

        // 3. Routing.
        let Checked {
            host,
            path,
            client,
            https,
        } = checked;
        let m = live
            .routes
            .find_for(&host, client.scheme, req.method(), &path)?;
        let route = &m.route.config;
        facts.route.push_str(&route.name);

        // 4. Authorization.
        let session = if authorize::needs_identity(&m, client.ip) {
            self.identity(live, req.headers(), https).await?
        } else {
            None
        };
        let decision = authorize::authorize(&live.config, &m, client.ip, session.as_ref());
        self.metrics.authz(AuthzEndpoint::Proxy, decision.metric());
        let identity = match decision {
            Decision::Allow(identity) => identity,
            Decision::Unauthenticated => return Ok(unauthenticated(&req, &path, https)),
            Decision::Denied => return Err(Error::Denied),
            Decision::Bypass => {
                self.bypassed(&req, &client, facts, &host, &path, &route.name);
                None
            }
            Decision::Forbidden(identity) => {
                facts.user = Some(identity.email.clone());
                self.audit.record(
                    &Entry::new(Event::AccessDenied, Outcome::Failure)
                        .email(&identity.email)
                        .request(RequestFacts {
                            ip: client.ip,
                            request_id: facts.request_id.as_str(),
                            method: req.method().as_str(),
                            host: &host,
                            path: &path,
                            user_agent: crate::audit::user_agent(req.headers()),
                        })
                        .reason(&route.name),
                );
                return Ok(self.forbidden(live, &req, &identity.email, https));
            }
        };
        if let Some(identity) = identity {
            facts.user = Some(identity.email.clone());
        }

        // 5. The upstream request.
        // A signed-in WebSocket: the browser's Origin must be this site
        // (cross-site WebSocket hijacking), and the tunnel lives only as
        // long as the session.
        let websocket = crate::headers::is_websocket_upgrade(req.headers());
        let tunnel = match (identity, websocket) {
            (_, false) => None,
            (None, true) => Some(None),
            (Some(identity), true) => {
                if !same_origin(
                    req.headers(),
                    &visible_origin(&client, &host),
                    client.scheme,
                ) {
                    return Err(Error::CrossOriginWebSocket);
                }
                Some(Some(self.session_ends(
                    identity.tag,
                    live.config.session.idle_timeout,
                )))
            }
        };
        let path_and_query = match req.uri().path_and_query() {
            // Already in normal form (nearly always): the target as it came.
            Some(pq) if pq.path() == path => pq.clone(),
            _ => {
                let pq = match req.uri().query() {
                    Some(q) => format!("{path}?{q}"),
                    None => path.clone(),
                };
                PathAndQuery::try_from(pq)
                    .map_err(|_| Error::BadRequest("The request target is not valid."))?
            }
        };
        let added = Added {
            client: &client,
            identity: identity.map(|i| &*i.email),
            groups: identity
                .and_then(|i| live.config.groups.of(&i.email))
                .map(|g| g.header()),
            gateway_cookies: cookies::ALL_NAMES,
            websocket: false,
            strip: &live.config.server.strip_headers,
            request_id: Some(facts.request_id.as_str()),
        };
        let authority = match &route.upstream {
            crate::config::Upstream::Http { authority } => authority,
            // A route for forward-auth only: nothing to forward to here.
            crate::config::Upstream::None => return Err(Error::NoRoute),
            crate::config::Upstream::Demo => {
                // The demo page shows the headers an upstream would get.
                let mut shown = Request::new(());
                *shown.headers_mut() = outgoing::map(req.headers(), req.uri().authority(), &added);
                *shown.uri_mut() = http::Uri::from(path_and_query);
                return Ok(demo::respond(&shown));
            }
        };
        let (head, body) = req.into_parts();
        let out = Outgoing {
            head,
            body,
            authority,
            path_and_query,
            added,
            timeout: route.timeout,
            connect_timeout: route.connect_timeout,
            body_read_timeout: live.config.server.limits.body_read_timeout,
            tunnel,
            route: &m.route,
        };
        // 6. The answer, cleaned once by the transport.
        Ok(upstream.send(out).await?)
    }

    /// Phase 2: `/.portcullis/ready` and the sign-in flow.
    async fn own_endpoint(
        self: &Arc<Self>,
        live: &Live,
        req: Request<RequestBody>,
        checked: &Checked,
        request_id: &str,
    ) -> Result<Response<Body>, Error> {
        if checked.path == READY_PATH {
            return ready(&self.store, req.method()).await;
        }
        if checked.path == PING_PATH {
            // Liveness: the process answers; nothing else is checked.
            if req.method() != Method::GET && req.method() != Method::HEAD {
                return Err(Error::MethodNotAllowed);
            }
            return Ok(body::plain(StatusCode::OK, "OK"));
        }
        let method = req.method().clone();
        let user_agent = crate::audit::user_agent(req.headers()).map(String::from);
        let cx = Ctx {
            app: self,
            live,
            facts: RequestFacts {
                ip: checked.client.ip,
                request_id,
                method: method.as_str(),
                host: &checked.host,
                path: &checked.path,
                user_agent: user_agent.as_deref(),
            },
            client: &checked.client,
            https: checked.https,
            origin: visible_origin(&checked.client, &checked.host),
            host_for_links: checked.host.clone(),
        };
        // Boxed: the sign-in flow's future is large and would otherwise
        // make every proxied request's future as large.
        Box::pin(signin::serve(&cx, req, &checked.path)).await
    }

    /// The audit line of a request let through by `bypass_networks` (out
    /// of line: the phases' future stays as small as without the rule).
    #[cold]
    #[inline(never)]
    fn bypassed(
        &self,
        req: &Request<RequestBody>,
        client: &ClientInfo,
        facts: &Facts,
        host: &str,
        path: &str,
        route: &str,
    ) {
        self.audit.record(
            &Entry::new(Event::AccessBypassed, Outcome::Success)
                .request(RequestFacts {
                    ip: client.ip,
                    request_id: facts.request_id.as_str(),
                    method: req.method().as_str(),
                    host,
                    path,
                    user_agent: crate::audit::user_agent(req.headers()),
                })
                .reason(route),
        );
    }

    fn forbidden(
        &self,
        live: &Live,
        req: &Request<RequestBody>,
        email: &str,
        https: bool,
    ) -> Response<Body> {
        if !wants_html(req.headers()) {
            return body::plain(
                StatusCode::FORBIDDEN,
                "This address may not open this page.",
            );
        }
        // The sign-out form needs a CSRF field bound to the browser's cookie.
        let (csrf, set) = signin::csrf::token(&self.key, req.headers(), https);
        let mut resp = body::html(
            StatusCode::FORBIDDEN,
            live.pages.forbidden(email, &csrf),
            https,
        );
        cookies::append(resp.headers_mut(), set);
        resp
    }

    /// The one conversion of errors into responses.
    pub fn error_response(
        &self,
        live: &Live,
        e: &Error,
        wants_html: bool,
        https: bool,
    ) -> Response<Body> {
        let status = e.status();
        let mut resp = if wants_html {
            let reason = status.canonical_reason().unwrap_or("Error");
            body::html(
                status,
                live.pages
                    .error(status.as_u16(), reason, e.public_message()),
                https,
            )
        } else {
            body::plain(status, e.public_message())
        };
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if status == StatusCode::BAD_REQUEST || status == StatusCode::REQUEST_TIMEOUT {
            // Framing or Host trouble: do not trust the rest of this connection.
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

/// Phase 1: the limits, the framing headers, the one host, the canonical
/// path and who the client is (trusted proxies), before anything else
/// looks at the request.
fn check(live: &Live, req: &Request<RequestBody>, conn: &ConnInfo) -> Result<Checked, Error> {
    request_checks::check_limits(req, &live.config.server.limits)?;
    request_checks::check_framing(req)?;
    let host = request_checks::host(req)?;
    let path = path::normalize(req.uri().path()).map_err(Error::BadPath)?;
    let client = forwarded::client_info(
        conn.peer.ip(),
        conn.tls,
        Some(&host),
        req.headers(),
        &live.config.server.trusted_proxies,
    )
    .map_err(|_| Error::BadHost)?;
    let https = client.scheme == Scheme::Https;
    Ok(Checked {
        host,
        path,
        client,
        https,
    })
}

/// Whether `path` is one of the gateway's own (`/.portcullis/…`).
fn is_own(path: &str) -> bool {
    path == "/.portcullis" || path.starts_with("/.portcullis/")
}

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
async fn ready(store: &Store, method: &Method) -> Result<Response<Body>, Error> {
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
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(resp)
}

/// `scheme://host` of the page as the browser sees it (lowercase; the
/// host a trusted proxy reports, else the request's own).
fn visible_origin(client: &ClientInfo, host: &str) -> String {
    let visible_host = client.forwarded_host.as_deref().unwrap_or(host);
    format!(
        "{}://{}",
        client.scheme.as_str(),
        visible_host.to_ascii_lowercase()
    )
}

/// Whether the request's `Origin` (when it has one: browsers always send it
/// on a WebSocket handshake) is `origin` (see [`visible_origin`]), default
/// ports aside.
fn same_origin(headers: &HeaderMap, origin: &str, scheme: Scheme) -> bool {
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let Some(sent) = origins.next() else {
        return true;
    };
    if origins.next().is_some() {
        return false;
    }
    let Ok(sent) = sent.to_str() else {
        return false;
    };
    let default_port = match scheme {
        Scheme::Https => ":443",
        Scheme::Http => ":80",
    };
    let bare = |o: &str| -> String {
        let o = o.trim().to_ascii_lowercase();
        match o.strip_suffix(default_port) {
            Some(b) => b.to_string(),
            None => o,
        }
    };
    bare(sent) == bare(origin)
}

/// Host and path (never the query) for a log line.
fn log_fields(uri: &http::Uri, host: Option<&HeaderValue>) -> (String, String) {
    let host = host
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_default();
    (host, uri.path().chars().take(200).collect())
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// Not signed in: a browser navigating gets the sign-in page (with `rd`),
/// anything else 401.
fn unauthenticated(req: &Request<RequestBody>, path: &str, https: bool) -> Response<Body> {
    let navigation =
        (req.method() == Method::GET || req.method() == Method::HEAD) && wants_html(req.headers());
    if !navigation {
        return body::plain(StatusCode::UNAUTHORIZED, "Sign in first.");
    }
    let target = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let rd: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
    body::see_other(&format!("/.portcullis/login?rd={rd}"), https)
}
