//! `GET /.portcullis/auth`, the forward-auth endpoint for another proxy in
//! front of the app (nginx `auth_request`, Traefik `forwardAuth`, Caddy
//! `forward_auth`): the same decision as the proxy path
//! ([`crate::authorize`]), for the request the other proxy is about to
//! serve.
//!
//! That request is named by `X-Original-URL` (an absolute URL, as nginx
//! configurations send `$scheme://$http_host$request_uri`) or by
//! `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Forwarded-Uri` (Traefik,
//! Caddy). Its path is read exactly as the proxy path reads a request
//! target (`path::normalize`, then the routes with the matching view), so
//! no spelling is judged differently here. Answers: 200 (with the identity
//! headers when signed in), 401, 403, 404 (no route), or 400 when the
//! original URL is missing or malformed.

use http::header::{HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode};

use crate::authorize::{self, Decision};
use crate::body::{self, Body, RequestBody};
use crate::config::Scheme;
use crate::error::Error;
use crate::state::Ctx;

/// The request another proxy asks about: scheme, host and raw target.
struct Original<'h> {
    scheme: Scheme,
    host: &'h str,
    target: &'h str,
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
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

/// The original request, from `X-Original-URL` or the `X-Forwarded-*`
/// triple; `None` when neither is there whole and well-formed.
fn original(headers: &HeaderMap) -> Option<Original<'_>> {
    if let Some(url) = header(headers, "x-original-url") {
        let (s, rest) = url.split_once("://")?;
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (host, target) = rest.split_at(split);
        let target = if target.is_empty() { "/" } else { target };
        return Some(Original {
            scheme: scheme(s)?,
            host,
            target,
        });
    }
    Some(Original {
        scheme: scheme(header(headers, "x-forwarded-proto")?)?,
        host: header(headers, "x-forwarded-host")?,
        target: header(headers, "x-forwarded-uri")?,
    })
}

pub(super) async fn forward_auth(
    cx: &Ctx<'_>,
    req: &Request<RequestBody>,
) -> Result<Response<Body>, Error> {
    let Some(o) = original(req.headers()) else {
        return Ok(body::plain(
            StatusCode::BAD_REQUEST,
            "Send the original URL in X-Original-URL, or X-Forwarded-Proto, -Host and -Uri.",
        ));
    };
    if !o.target.starts_with('/') || !crate::routes::valid_host(o.host) {
        return Ok(body::plain(
            StatusCode::BAD_REQUEST,
            "The original URL is not valid.",
        ));
    }
    let raw_path = o.target.split_once('?').map_or(o.target, |(p, _)| p);
    let path = crate::path::normalize(raw_path).map_err(Error::BadPath)?;
    let host = o.host.to_ascii_lowercase();
    let m = cx
        .live
        .routes
        .find(&host, o.scheme, &path)
        .ok_or(Error::NoRoute)?;
    let session = if authorize::needs_identity(&m) {
        cx.current_identity(req.headers()).await?
    } else {
        None
    };
    let identity = match authorize::authorize(&cx.live.config, &m, session.as_ref()) {
        Decision::Allow(identity) => identity,
        Decision::Unauthenticated => {
            return Ok(body::plain(StatusCode::UNAUTHORIZED, "Sign in first."))
        }
        Decision::Forbidden(_) => {
            return Ok(body::plain(
                StatusCode::FORBIDDEN,
                "This address may not open this page.",
            ))
        }
    };
    let mut resp = body::plain(StatusCode::OK, "ok");
    if let Some(v) = identity.and_then(|i| HeaderValue::from_str(&i.email).ok()) {
        let h = resp.headers_mut();
        for name in [
            "x-forwarded-email",
            "x-forwarded-user",
            "x-auth-request-email",
            "x-auth-request-user",
        ] {
            h.insert(name, v.clone());
        }
    }
    Ok(resp)
}
