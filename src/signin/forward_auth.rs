//! Forward-auth: the gateway answering another proxy's question "may this
//! request pass?", with the proxy path's own decision
//! ([`crate::authorize`]) so the two can never disagree.
//!
//! - `GET|HEAD /.portcullis/auth` (nginx `auth_request`, ingress-nginx):
//!   200 allowed, with the identity headers; 401 with an absolute
//!   `Location` to the sign-in page when there is no session (nginx turns
//!   it into a redirect with `error_page 401 =302 $location`); 403 signed
//!   in but not allowed (never a redirect: that would loop).
//! - `GET|HEAD /.portcullis/forward-auth` (Traefik, Caddy, which pass the
//!   answer on as it is): the same, but a browser navigation without a
//!   session gets the redirect itself, 302 for GET and HEAD, 303 for other
//!   methods; an XHR or a client that does not ask for HTML gets 401.
//! - 400 when the original request is not known: on `/auth` it comes from
//!   `X-Original-URL` and `X-Original-Method` (nginx), else
//!   `X-Forwarded-Proto`, `-Host`, `-Uri` and `-Method`; on
//!   `/forward-auth` (Traefik, Caddy) only from the latter (see
//!   [`original`]); believed only from `[server] trusted_proxies`; its host must be a
//!   configured route host, under `cookie_domain` or `public_url`'s host
//!   (a forged host could otherwise pick where the sign-in link points).
//!   The query of the auth request itself is ignored (Caddy 2.6 forwards
//!   the client's).
//!
//! The original target is read exactly as the proxy path reads a request
//! target (`path::normalize`, then the routes with the matching view), so
//! no spelling is judged differently. Every 2xx carries every identity
//! header (the address ones and `X-Forwarded-Groups`,
//! `X-Auth-Request-Groups`, and `X-Portcullis-Jwt-Assertion` with
//! `[assertion]`), empty on public routes or when in no group, so that a
//! proxy copying them always overwrites a client's copy. Answers are `Cache-Control: no-store` and
//! never set a cookie.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use crate::authorize::{self, Decision};
use crate::body::{self, Body, RequestBody};
use crate::config::Scheme;
use crate::error::Error;
use crate::metrics::AuthzEndpoint;
use crate::state::Ctx;

/// The two answer shapes (re-exported as `signin::ForwardAuth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `/.portcullis/auth`: never a redirect.
    AuthRequest,
    /// `/.portcullis/forward-auth`: redirects browser navigations.
    ForwardAuth,
}

// Header names made at compile time: a name given as text is parsed and
// checked on every use, and this endpoint answers once per request behind
// nginx.

/// The address headers of a 2xx, all of them always: (name, whether it
/// holds the user rather than the address).
const IDENTITY_HEADERS: [(HeaderName, bool); 4] = [
    (HeaderName::from_static("x-forwarded-email"), false),
    (HeaderName::from_static("x-forwarded-user"), true),
    (HeaderName::from_static("x-auth-request-email"), false),
    (HeaderName::from_static("x-auth-request-user"), true),
];

/// The group headers of a 2xx, all of them always (empty when in none).
const GROUP_HEADERS: [HeaderName; 2] = [
    HeaderName::from_static("x-forwarded-groups"),
    HeaderName::from_static("x-auth-request-groups"),
];

const X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_REQUESTED_WITH: HeaderName = HeaderName::from_static("x-requested-with");

/// The request another proxy asks about.
struct Original<'h> {
    method: Method,
    scheme: Scheme,
    /// As sent (checked with `routes::valid_host`), port included.
    host: &'h str,
    /// The raw target: path and query.
    target: &'h str,
}

fn one<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok().map(str::trim)
}

fn scheme(s: &str) -> Option<Scheme> {
    match s.to_ascii_lowercase().as_str() {
        "http" => Some(Scheme::Http),
        "https" => Some(Scheme::Https),
        _ => None,
    }
}

/// The original method: the header when there is one, else GET (nginx's
/// `auth_request` asks with GET whatever the client's method was).
fn method(value: Option<&str>) -> Option<Method> {
    match value {
        None | Some("") => Some(Method::GET),
        Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok(),
    }
}

/// The original request. `/auth` (nginx, ingress-nginx) reads
/// `X-Original-URL` first, which those configurations always set, else the
/// `X-Forwarded-*` set; `/forward-auth` (Traefik, Caddy) reads only the
/// `X-Forwarded-*` set, which those proxies compute themselves, because
/// they pass every other client header on to the auth request: an
/// `X-Original-URL` there may be the client's own (an anonymous
/// `GET /app/secret` with `X-Original-URL: …/public` reached the app
/// through Caddy when it was read). `None` when not there whole and
/// well-formed.
fn original(headers: &HeaderMap, shape: Shape) -> Option<Original<'_>> {
    if shape == Shape::AuthRequest {
        if let Some(url) = one(headers, &X_ORIGINAL_URL) {
            let (s, rest) = url.split_once("://")?;
            let split = rest.find(['/', '?']).unwrap_or(rest.len());
            let (host, target) = rest.split_at(split);
            let target = if target.is_empty() { "/" } else { target };
            return Some(Original {
                method: method(one(headers, &X_ORIGINAL_METHOD))?,
                scheme: scheme(s)?,
                host,
                target,
            });
        }
    }
    Some(Original {
        method: method(one(headers, &X_FORWARDED_METHOD))?,
        scheme: scheme(one(headers, &X_FORWARDED_PROTO)?)?,
        host: one(headers, &X_FORWARDED_HOST)?,
        target: one(headers, &X_FORWARDED_URI)?,
    })
}

/// A 2xx with every identity header (empty when not known): the address,
/// the user (the address, `token:NAME` or `share:ID`), the groups, and
/// `X-Portcullis-Share`.
///
/// Its body is empty (`Content-Length: 0`): nginx reads only the head of
/// an `auth_request` answer, and keeps its connection to the gateway for
/// the next question only when no body is left unread on it; with a body,
/// every question would open a new connection.
fn passed(email: &str, user: &str, groups: &str, share: &str) -> Response<Body> {
    // Built whole here with room for every header (the answers' common
    // three, the length, seven identity headers, the assertion, and the
    // transport's `Date`): a map grown header by header reallocates.
    let mut h = HeaderMap::with_capacity(16);
    body::own_answer_headers(&mut h, "text/plain; charset=utf-8");
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    // An empty value costs no copy; the user is often the address itself.
    let value = |v: &str| match v {
        "" => HeaderValue::from_static(""),
        v => HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static("")),
    };
    let email_value = value(email);
    let user_value = if user == email {
        email_value.clone()
    } else {
        value(user)
    };
    let groups = value(groups);
    for (name, is_user) in IDENTITY_HEADERS {
        h.insert(
            name,
            if is_user {
                user_value.clone()
            } else {
                email_value.clone()
            },
        );
    }
    for name in GROUP_HEADERS {
        h.insert(name, groups.clone());
    }
    h.insert(crate::share::SHARE_HEADER, value(share));
    let mut resp = Response::new(body::empty());
    *resp.headers_mut() = h;
    resp
}

/// With `[assertion]`, an empty `X-Portcullis-Jwt-Assertion` on a pass
/// without a session (a token or a share link is not signed for), so that
/// a proxy copying the header replaces whatever the client sent.
fn no_assertion(cx: &Ctx<'_>, mut resp: Response<Body>) -> Response<Body> {
    if cx.live.assertion.is_some() {
        resp.headers_mut()
            .insert(crate::assertion::HEADER, HeaderValue::from_static(""));
    }
    resp
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut resp = body::plain(status, text);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Whether the asking client is a browser navigating (not an XHR, asking
/// for HTML).
fn navigation(headers: &HeaderMap) -> bool {
    let xhr =
        one(headers, &X_REQUESTED_WITH).is_some_and(|v| v.eq_ignore_ascii_case("xmlhttprequest"));
    let html = headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("text/html")));
    html && !xhr
}

pub(super) async fn forward_auth(
    cx: &Ctx<'_>,
    req: &Request<RequestBody>,
    shape: Shape,
) -> Result<Response<Body>, Error> {
    let mut resp = answer(cx, req, shape).await?;
    if shape == Shape::AuthRequest {
        // nginx and ingress-nginx read only the head and show no auth
        // answer's body to anyone; without one, their connection to the
        // gateway carries the next question too (see [`passed`]).
        *resp.body_mut() = body::empty();
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    }
    Ok(resp)
}

async fn answer(
    cx: &Ctx<'_>,
    req: &Request<RequestBody>,
    shape: Shape,
) -> Result<Response<Body>, Error> {
    let config = &cx.live.config;
    let trusted = crate::forwarded::is_trusted(cx.client.peer, &config.server.trusted_proxies);
    let Some(o) = original(req.headers(), shape).filter(|_| trusted) else {
        return Ok(plain(
            StatusCode::BAD_REQUEST,
            "Send the original request in X-Original-URL, or X-Forwarded-Proto, -Host and -Uri, from a trusted proxy.",
        ));
    };
    if !o.target.starts_with('/') || !crate::routes::valid_host(o.host) {
        return Ok(plain(
            StatusCode::BAD_REQUEST,
            "The original URL is not valid.",
        ));
    }
    let host = o.host.to_ascii_lowercase();
    let name = crate::config::strip_port(&host);
    let name = name.strip_suffix('.').unwrap_or(name);
    if !(cx.live.redirect.allows_host(name) || name == config.server.public_url.host) {
        return Ok(plain(
            StatusCode::BAD_REQUEST,
            "The original host is not one this gateway serves.",
        ));
    }
    let raw_path = o.target.split_once('?').map_or(o.target, |(p, _)| p);
    let path = crate::path::normalize(raw_path).map_err(Error::BadPath)?;
    let m = cx.live.routes.find_for(&host, o.scheme, &o.method, &path)?;
    let client = cx.client.ip;
    let presented = if authorize::needs_identity(&m, client) {
        let asked = crate::access::Asked {
            headers: req.headers(),
            https: cx.https,
            ip: client,
            host: &host,
            method: &o.method,
            path: &path,
            request_id: cx.facts.request_id,
        };
        crate::access::read(cx.app, cx.live, asked).await?
    } else {
        crate::access::Presented::Nothing
    };
    let decision = authorize::authorize(
        config,
        &m,
        client,
        presented.credential(&host, &o.method, &path),
    );
    let endpoint = match shape {
        Shape::AuthRequest => AuthzEndpoint::Auth,
        Shape::ForwardAuth => AuthzEndpoint::ForwardAuth,
    };
    cx.app.metrics.authz(endpoint, decision.metric());
    let facts = crate::audit::RequestFacts {
        host: &host,
        path: &path,
        method: o.method.as_str(),
        ..cx.facts
    };
    match decision {
        Decision::Denied => Ok(plain(StatusCode::FORBIDDEN, "This page is closed.")),
        Decision::AllowToken(token) => Ok(no_assertion(
            cx,
            passed(
                "",
                &token.user,
                token.groups.as_ref().map_or("", |g| g.header()),
                "",
            ),
        )),
        Decision::AllowShare(grant) => Ok(no_assertion(
            cx,
            passed(
                grant.email.as_deref().unwrap_or(""),
                &grant.user(),
                "",
                &grant.id,
            ),
        )),
        Decision::TokenForbidden(token) => {
            let reason = format!("token {} on route {}", token.name, m.route.config.name);
            cx.app.audit.record(
                &crate::audit::Entry::new(
                    crate::audit::Event::AccessDenied,
                    crate::audit::Outcome::Failure,
                )
                .request(facts)
                .reason(&reason),
            );
            Ok(plain(
                StatusCode::FORBIDDEN,
                "This token may not open this page.",
            ))
        }
        Decision::Allow(_) | Decision::Bypass => {
            let identity = match decision {
                Decision::Allow(identity) => identity,
                _ => {
                    cx.app.audit.record(
                        &crate::audit::Entry::new(
                            crate::audit::Event::AccessBypassed,
                            crate::audit::Outcome::Success,
                        )
                        .request(facts)
                        .reason(&m.route.config.name),
                    );
                    None
                }
            };
            let email = identity.map_or("", |i| &*i.email);
            let groups = identity
                .and_then(|i| config.groups.of(&i.email))
                .map_or("", |g| g.header());
            let mut resp = passed(email, email, groups, "");
            if let Some(a) = &cx.live.assertion {
                // For `auth_request_set`: empty without an identity.
                let token = match identity {
                    Some(i) => {
                        let groups = config.groups.of(&i.email).map(|g| g.header());
                        a.header(
                            &cx.app.key,
                            &i.tag,
                            &i.email,
                            groups,
                            i.amr.as_deref(),
                            name,
                        )
                        .ok_or_else(|| Error::Internal("signing the assertion failed".into()))?
                    }
                    None => HeaderValue::from_static(""),
                };
                resp.headers_mut().insert(crate::assertion::HEADER, token);
            }
            Ok(resp)
        }
        Decision::Forbidden(identity) => {
            // As on the proxy path, with the original request's host,
            // path and method (the client is the auth request's).
            cx.app.audit.record(
                &crate::audit::Entry::new(
                    crate::audit::Event::AccessDenied,
                    crate::audit::Outcome::Failure,
                )
                .email(&identity.email)
                .request(facts)
                .reason(&m.route.config.name),
            );
            Ok(plain(
                StatusCode::FORBIDDEN,
                "This address may not open this page.",
            ))
        }
        Decision::Unauthenticated => {
            let rd: String = url::form_urlencoded::byte_serialize(o.target.as_bytes()).collect();
            let location = format!("{}://{host}/.portcullis/login?rd={rd}", o.scheme.as_str());
            let redirect = shape == Shape::ForwardAuth && navigation(req.headers());
            let status = match (redirect, &o.method) {
                (false, _) => StatusCode::UNAUTHORIZED,
                (true, &Method::GET | &Method::HEAD) => StatusCode::FOUND,
                (true, _) => StatusCode::SEE_OTHER,
            };
            let mut resp = plain(status, "Sign in first.");
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            Ok(resp)
        }
    }
}
