//! The request hub: [`App`] as the transport's [`Handler`], and the one
//! function that sequences a request, in named phases that read top to
//! bottom (as pingora's proxy phases):
//!
//! ```text
//! serve ─ 1 request checks: limits (414/431), Host (400), path (400),
//!         │                 client info (trusted proxies)
//!         ─ 2 own endpoints: /.portcullis/ready ───────▶ 200 / 503 (store)
//!         │                  /.portcullis/jwks.json ───▶ the assertion keys
//!         │                  /.portcullis/* ───────────▶ signin::serve
//!         ─ 3 routing: routes.find_for (404, 405 by methods), the matching
//!         │            view and the literal path
//!         ─ 4 authorization: what the request presents if needed (access:
//!         │   the session from the SessionCache, store down past grace ─▶
//!         │   503; else a machine token ─▶ 401/429; else a share cookie),
//!         │   then authorize::authorize:
//!         │     denied (deny = true) ▶ 403; bypass_networks ▶ pass, audited
//!         │     unauthenticated ─▶ 303 to sign-in (browser navigation) or 401
//!         │     forbidden ───────▶ 403 page
//!         ─ 5 upstream request: identity, the assertion (cached per session
//!         │   and host) and X-Forwarded-* (outgoing), the
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
use crate::config::route_options::HostRule;
use crate::config::{Limits, Scheme};
use crate::cookies;
use crate::error::Error;
use crate::forwarded::{self, ClientInfo};
use crate::metrics::AuthzEndpoint;
use crate::outgoing::{self, Added};
use crate::state::{Ctx, Live};
use crate::transport::{ConnInfo, Handler, Outgoing, Refusal, To, Upstream};
use crate::{access, demo, path, request_checks, signin};

pub use crate::state::App;
use probes::ready;
pub use probes::{PING_PATH, READY_PATH};

mod probes;
mod request_id;

use request_id::{request_id, RequestId, REQUEST_ID};

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
            let (log_host, log_path) =
                log_fields(req.uri(), req.headers().get(header::HOST), false);
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
    /// The path holds a share link's token: logged without it.
    secret_path: bool,
}

impl Facts {
    fn masked_user(&self) -> String {
        self.user
            .as_deref()
            .map(crate::address::mask)
            .unwrap_or_default()
    }
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
            secret_path: false,
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
            let (log_host, log_path) = log_fields(&uri, host_header.as_ref(), facts.secret_path);
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
        let (log_host, log_path) = log_fields(&uri, host_header.as_ref(), facts.secret_path);
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
            facts.secret_path = checked.path.starts_with(crate::share::ENDPOINT);
            // Boxed: an own endpoint's future (the probes', forward-auth's)
            // would otherwise make every proxied request's future as large,
            // and each request's future is moved into a box of its own.
            return Box::pin(self.own_endpoint(live, req, &checked, facts.request_id.as_str()))
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

        // 4. Authorization: a session, a machine token or a share link.
        let presented = if authorize::needs_identity(&m, client.ip) {
            let asked = access::Asked {
                headers: req.headers(),
                https,
                ip: client.ip,
                host: &host,
                method: req.method(),
                path: &path,
                request_id: facts.request_id.as_str(),
            };
            access::read(self, live, asked).await?
        } else {
            access::Presented::Nothing
        };
        let decision = authorize::authorize(
            &live.config,
            &m,
            client.ip,
            presented.credential(&host, req.method(), &path),
        );
        self.metrics.authz(AuthzEndpoint::Proxy, decision.metric());
        // Without a session: how it passed, its groups, its address.
        let mut via = None;
        let share_user;
        let identity = match decision {
            Decision::Allow(identity) => identity,
            Decision::AllowToken(token) => {
                via = Some((
                    outgoing::Via::Token { user: &token.user },
                    token.groups.as_ref(),
                    None,
                ));
                None
            }
            Decision::AllowShare(grant) => {
                share_user = grant.user();
                via = Some((
                    outgoing::Via::Share {
                        id: &grant.id,
                        user: &share_user,
                    },
                    None,
                    grant.email.as_deref(),
                ));
                None
            }
            Decision::TokenForbidden(token) => {
                let reason = format!("token {} on route {}", token.name, route.name);
                self.denied_token(&req, &client, facts, &host, &path, &reason);
                return Err(Error::TokenForbidden);
            }
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
                        .request(request_facts(&req, &client, facts, &host, &path))
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
            // A share cookie is ambient too: the same Origin rule.
            (None, true)
                if matches!(via, Some((outgoing::Via::Share { .. }, ..)))
                    && !same_origin(
                        req.headers(),
                        &visible_origin(&client, &host),
                        client.scheme,
                    ) =>
            {
                return Err(Error::CrossOriginWebSocket);
            }
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
        // The route's options (prefix, Host, header rules); `None` for
        // nearly every route. The decision above used the client's path;
        // the rewritten one is only what is forwarded.
        let forward = route.forward.as_deref();
        let rewritten = forward.and_then(|f| f.path(&route.path, &path));
        let forwarded_path = rewritten.as_deref().unwrap_or(&path);
        let path_and_query = match req.uri().path_and_query() {
            // Already in normal form (nearly always): the target as it came.
            Some(pq) if pq.path() == forwarded_path => pq.clone(),
            _ => {
                let pq = match req.uri().query() {
                    Some(q) => format!("{forwarded_path}?{q}"),
                    None => forwarded_path.to_string(),
                };
                PathAndQuery::try_from(pq)
                    .map_err(|_| Error::BadRequest("The request target is not valid."))?
            }
        };
        let groups = identity
            .and_then(|i| live.config.groups.of(&i.email))
            .map(|g| g.header());
        // `[assertion]`: the session's token for this host (cached).
        let assertion = match (&live.assertion, identity) {
            (Some(a), Some(i)) => Some(
                a.header(&self.key, &i.tag, &i.email, groups, i.amr.as_deref(), &host)
                    .ok_or_else(|| Error::Internal("signing the assertion failed".into()))?,
            ),
            _ => None,
        };
        let added = Added {
            client: &client,
            identity: identity.map(|i| &*i.email),
            groups,
            assertion: assertion.as_ref(),
            gateway_cookies: cookies::ALL_NAMES,
            websocket: false,
            strip: &live.config.server.strip_headers,
            request_id: Some(facts.request_id.as_str()),
            via: None,
            rules: forward,
            host: None,
            prefix: None,
        };
        let added = match via {
            None => added,
            Some((via, groups, email)) => Added {
                identity: email,
                groups: groups.map(|g| g.header()),
                via: Some(via),
                ..added
            },
        };
        let mut added = added;
        let mut host_from_target = false;
        if let Some(f) = forward {
            added.prefix = f.forwarded_prefix(&route.path);
            match &f.host {
                HostRule::Client => {}
                HostRule::Fixed(v) => added.host = Some(v.as_bytes()),
                HostRule::Upstream => match &route.upstream {
                    crate::config::Upstream::Http { authority } => {
                        added.host = Some(authority.as_str().as_bytes())
                    }
                    _ => host_from_target = true,
                },
            }
        }
        let to = match &route.upstream {
            crate::config::Upstream::Http { authority } => To::One(authority),
            crate::config::Upstream::Balanced(set) => To::Set(set),
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
            to,
            host_from_target,
            path_and_query,
            added,
            timeout: route.timeout,
            connect_timeout: route.connect_timeout,
            body_read_timeout: live.config.server.limits.body_read_timeout,
            tunnel,
            route: &m.route,
        };
        // 6. The answer, cleaned once by the transport (and the route's
        // `set_response_headers`).
        let mut resp = upstream.send(out).await?;
        if let Some(f) = forward {
            f.answer(resp.headers_mut());
        }
        Ok(resp)
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
        if checked.path == crate::assertion::JWKS_PATH {
            return match &live.assertion {
                Some(a) => Ok(a.jwks_answer(req.method(), req.headers())),
                None => Err(Error::NoRoute),
            };
        }
        let method = req.method().clone();
        if let Some(shape) = signin::forward_auth_endpoint(&checked.path, &method) {
            // Forward-auth, once per request behind nginx: it builds no
            // links (the original request names its host), so it needs
            // neither the origin nor copies of the request's strings.
            let user_agent = crate::audit::user_agent(req.headers());
            let cx = own_ctx(self, live, checked, request_id, &method, user_agent, false);
            return signin::forward_auth(&cx, &req, shape).await;
        }
        // Owned: the request moves into the flow.
        let user_agent = crate::audit::user_agent(req.headers()).map(String::from);
        let cx = own_ctx(
            self,
            live,
            checked,
            request_id,
            &method,
            user_agent.as_deref(),
            true,
        );
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
                .request(request_facts(req, client, facts, host, path))
                .reason(route),
        );
    }

    /// The audit line of a machine token refused on a route (out of line,
    /// as [`App::bypassed`]).
    #[cold]
    #[inline(never)]
    fn denied_token(
        &self,
        req: &Request<RequestBody>,
        client: &ClientInfo,
        facts: &Facts,
        host: &str,
        path: &str,
        reason: &str,
    ) {
        self.audit.record(
            &Entry::new(Event::AccessDenied, Outcome::Failure)
                .request(request_facts(req, client, facts, host, path))
                .reason(reason),
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
        if matches!(e, Error::BadToken) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
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

/// `scheme://host` of the page as the browser sees it (lowercase; the
/// host a trusted proxy reports, else the request's own).
/// The sign-in flow's context for an own endpoint; with `links`, the
/// origin and host that links and same-origin checks need (empty
/// otherwise: forward-auth builds none).
fn own_ctx<'a>(
    app: &'a App,
    live: &'a Live,
    checked: &'a Checked,
    request_id: &'a str,
    method: &'a Method,
    user_agent: Option<&'a str>,
    links: bool,
) -> Ctx<'a> {
    let (origin, host_for_links) = if links {
        (
            visible_origin(&checked.client, &checked.host),
            checked.host.clone(),
        )
    } else {
        (String::new(), String::new())
    };
    Ctx {
        app,
        live,
        facts: RequestFacts {
            ip: checked.client.ip,
            request_id,
            method: method.as_str(),
            host: &checked.host,
            path: if checked.path.starts_with(crate::share::ENDPOINT) {
                crate::share::LOGGED_PATH
            } else {
                &checked.path
            },
            user_agent,
        },
        client: &checked.client,
        https: checked.https,
        origin,
        host_for_links,
    }
}

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

/// Host and path (never the query, never a share link's token) for a
/// log line.
fn log_fields(uri: &http::Uri, host: Option<&HeaderValue>, secret_path: bool) -> (String, String) {
    let host = host
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_default();
    if secret_path {
        return (host, crate::share::LOGGED_PATH.to_string());
    }
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

/// What the audit trail records of a request (its client, id, method,
/// host, canonical path and `User-Agent`).
fn request_facts<'a>(
    req: &'a Request<RequestBody>,
    client: &ClientInfo,
    facts: &'a Facts,
    host: &'a str,
    path: &'a str,
) -> RequestFacts<'a> {
    RequestFacts {
        ip: client.ip,
        request_id: facts.request_id.as_str(),
        method: req.method().as_str(),
        host,
        path,
        user_agent: crate::audit::user_agent(req.headers()),
    }
}
