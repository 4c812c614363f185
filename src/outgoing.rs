//! The headers the upstream gets: which of the client's pass, and what the
//! gateway adds after them. Written once, in [`each`], and read two ways:
//! as the bytes of a request head for the gateway's own HTTP/1.1 client
//! ([`head`], the body-less requests that are nearly all traffic), and as
//! a header map for hyper's client ([`crate::proxy::rewrite_request`]).
//!
//! A client header is dropped when it is hop-by-hop (RFC 9110 §7.6.1) or
//! named by `Connection`, when it is an identity header in any spelling
//! ([`headers::is_identity_header`]), when it says where the request came
//! from or what it first asked for (`X-Forwarded-*`, `Forwarded`,
//! `X-Real-IP`, `X-Original-URL`, `X-Rewrite-URL`:
//! [`forwarded::from_client`]), or when `[server] strip_headers` names it
//! (in any case, `_` for `-`). `Host` is sent once, as the client sent it
//! first; `Cookie` loses the gateway's own cookies
//! ([`crate::cookie_header::kept_cookies`]). The gateway's headers come last and are
//! never subject to the client's `Connection`: so `Connection: close,
//! X-Forwarded-For` cannot remove what the gateway adds, and no spelling of
//! `X-Forwarded-Email` from the client reaches the upstream.
//!
//! A route's [`Forward`] rules (`remove_request_headers`, and the names of
//! `set_request_headers`) drop more client headers in any spelling; the
//! set values follow the client's headers, and `Host` and
//! `X-Forwarded-Prefix` may come from the route. The configuration has
//! already refused any rule that names a header the gateway sets.

use http::header::{self, GetAll, HeaderMap, HeaderName, HeaderValue};
use http::uri::Authority;
use http::Method;

use crate::config::Forward;
use crate::forwarded::{self, ClientInfo};
use crate::headers::{
    self, FORWARDED_EMAIL, FORWARDED_FOR, FORWARDED_GROUPS, FORWARDED_HOST, FORWARDED_PROTO,
    FORWARDED_USER,
};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the gateway adds to a request on its way upstream.
#[derive(Clone, Copy)]
pub struct Added<'a> {
    pub client: &'a ClientInfo,
    /// The signed-in user's address, for `X-Forwarded-Email` and `-User`.
    pub identity: Option<&'a str>,
    /// Its groups, `X-Forwarded-Groups` (sorted, comma-separated); `None`
    /// when in none (then the header is not sent).
    pub groups: Option<&'a str>,
    /// The gateway's cookie names, taken out of `Cookie`.
    pub gateway_cookies: &'a [&'a str],
    /// A WebSocket upgrade: `Connection: upgrade` and `Upgrade: websocket`
    /// are sent (the client's own are hop-by-hop and dropped).
    pub websocket: bool,
    /// More client headers to drop (`[server] strip_headers`), lowercase
    /// with `-`; compared like the identity headers.
    pub strip: &'a [String],
    /// `X-Request-Id` (a trusted proxy's, or the gateway's own).
    pub request_id: Option<&'a str>,
    /// `X-Portcullis-Jwt-Assertion` (`[assertion]`, signed-in requests).
    pub assertion: Option<&'a HeaderValue>,
    /// How a request passed without a session, if it did.
    pub via: Option<Via<'a>>,
    /// The route's header rules (`set_request_headers`,
    /// `remove_request_headers`); `None` for a route without any.
    pub rules: Option<&'a Forward>,
    /// `Host` instead of the client's (`preserve_host = false`,
    /// `upstream_host`).
    pub host: Option<&'a [u8]>,
    /// `X-Forwarded-Prefix`: the prefix `strip_prefix` took off.
    pub prefix: Option<&'a str>,
}

/// A request that passed without a session.
#[derive(Debug, Clone, Copy)]
pub enum Via<'a> {
    /// A machine token: `X-Forwarded-User: token:NAME` (`user`) and the
    /// token's `X-Forwarded-Groups`, no `X-Forwarded-Email`; the client's
    /// `Authorization` (the secret) is not passed on.
    Token { user: &'a str },
    /// A share link: `X-Portcullis-Share: ID`, and `X-Forwarded-User`
    /// `share:ID` when the link names no address (else the address, with
    /// `X-Forwarded-Email`, from `identity`).
    Share { id: &'a str, user: &'a str },
}

const FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");

/// Whether `value` may be a header value (the rule of `http`'s
/// `HeaderValue::from_bytes`: no control bytes but tab).
fn valid_value(value: &[u8]) -> bool {
    value.iter().all(|&b| (b >= 32 && b != 127) || b == b'\t')
}

/// Whether the client's `Connection` headers name `name`.
fn named_by(connection: &GetAll<'_, HeaderValue>, name: &HeaderName) -> bool {
    let name = name.as_str().as_bytes();
    connection
        .iter()
        .flat_map(|v| headers::tokens(v.as_bytes()))
        .any(|t| t.eq_ignore_ascii_case(name))
}

/// Whether one of the client's headers (not `Host`, not `Cookie`) is
/// dropped.
fn dropped(name: &HeaderName, connection: &GetAll<'_, HeaderValue>, strip: &[String]) -> bool {
    headers::is_hop_by_hop(name)
        || headers::is_identity_header(name.as_str())
        || forwarded::from_client(name)
        || strip
            .iter()
            .any(|s| headers::folded_eq(name.as_str().as_bytes(), s))
        || named_by(connection, name)
}

/// Calls `emit` with every header the upstream gets, in order: `Host`,
/// the client's headers that pass, `Cookie` without the gateway's, the
/// WebSocket pair, `X-Forwarded-For`, `-Proto`, `-Host`, then the identity
/// headers of a signed-in request (`X-Forwarded-Groups` only when the
/// address is in a group, `X-Portcullis-Jwt-Assertion` with `[assertion]`). `authority` is the request target's,
/// used for `Host` when the client sent none (HTTP/2).
pub fn each(
    client_headers: &HeaderMap,
    authority: Option<&Authority>,
    added: &Added<'_>,
    mut emit: impl FnMut(&HeaderName, &[u8]),
) {
    match client_headers.get(header::HOST) {
        _ if added.host.is_some() => {
            if let Some(host) = added.host.filter(|h| valid_value(h)) {
                emit(&header::HOST, host);
            }
        }
        Some(host) => emit(&header::HOST, host.as_bytes()),
        None => {
            if let Some(a) = authority.filter(|a| valid_value(a.as_str().as_bytes())) {
                emit(&header::HOST, a.as_str().as_bytes());
            }
        }
    }
    let connection = client_headers.get_all(header::CONNECTION);
    let token = matches!(added.via, Some(Via::Token { .. }));
    for (name, value) in client_headers {
        if name == header::HOST
            || name == header::COOKIE
            || dropped(name, &connection, added.strip)
            || (token && name == header::AUTHORIZATION)
            || added.rules.is_some_and(|r| r.drops(name))
        {
            continue;
        }
        emit(name, value.as_bytes());
    }
    if let Some(rules) = added.rules {
        for (name, value) in &rules.set_request {
            emit(name, value.as_bytes());
        }
    }
    if !named_by(&connection, &header::COOKIE) {
        if let Some(kept) =
            crate::cookie_header::kept_cookies(client_headers, added.gateway_cookies)
        {
            if valid_value(&kept) {
                emit(&header::COOKIE, &kept);
            }
        }
    }
    if added.websocket {
        emit(&header::CONNECTION, b"upgrade");
        emit(&header::UPGRADE, b"websocket");
    }
    let info = added.client;
    if valid_value(info.forwarded_for.as_bytes()) {
        emit(&FORWARDED_FOR, info.forwarded_for.as_bytes());
    }
    emit(&FORWARDED_PROTO, info.scheme.as_str().as_bytes());
    if let Some(host) = info.forwarded_host.as_deref() {
        if valid_value(host.as_bytes()) {
            emit(&FORWARDED_HOST, host.as_bytes());
        }
    }
    if let Some(prefix) = added.prefix.filter(|p| valid_value(p.as_bytes())) {
        emit(&FORWARDED_PREFIX, prefix.as_bytes());
    }
    if let Some(id) = added.request_id.filter(|id| valid_value(id.as_bytes())) {
        emit(&REQUEST_ID, id.as_bytes());
    }
    if let Some(email) = added.identity {
        if valid_value(email.as_bytes()) {
            emit(&FORWARDED_EMAIL, email.as_bytes());
            emit(&FORWARDED_USER, email.as_bytes());
            if let Some(groups) = added.groups.filter(|g| valid_value(g.as_bytes())) {
                emit(&FORWARDED_GROUPS, groups.as_bytes());
            }
            if let Some(token) = added.assertion {
                emit(&crate::assertion::HEADER, token.as_bytes());
            }
        }
    }
    match added.via {
        None => {}
        Some(Via::Token { user }) => {
            emit(&FORWARDED_USER, user.as_bytes());
            if let Some(groups) = added.groups.filter(|g| valid_value(g.as_bytes())) {
                emit(&FORWARDED_GROUPS, groups.as_bytes());
            }
        }
        Some(Via::Share { id, user }) => {
            if added.identity.is_none() {
                emit(&FORWARDED_USER, user.as_bytes());
            }
            emit(&crate::share::SHARE_HEADER, id.as_bytes());
        }
    }
}

/// The headers of [`each`] as a map (for hyper's client, and the demo).
pub fn map(
    client_headers: &HeaderMap,
    authority: Option<&Authority>,
    added: &Added<'_>,
) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(client_headers.len() + 6);
    each(client_headers, authority, added, |name, value| {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            out.append(name.clone(), v);
        }
    });
    out
}

/// The request head for the upstream as bytes: the request line in
/// origin form (`target` is the canonical path and the query) and the
/// headers of [`each`].
pub fn head(
    method: &Method,
    target: &str,
    client_headers: &HeaderMap,
    authority: Option<&Authority>,
    added: &Added<'_>,
) -> Vec<u8> {
    // The client's headers, with room for the gateway's: one allocation.
    let size = client_headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>();
    let assertion = added.assertion.map_or(0, |v| v.len() + 32);
    let mut out = Vec::with_capacity(method.as_str().len() + target.len() + size + 256 + assertion);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    each(client_headers, authority, added, |name, value| {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    });
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests;
