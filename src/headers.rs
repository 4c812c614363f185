//! Header policy between client, gateway and upstream: which names are
//! hop-by-hop (and which a `Connection` header names), which are identity
//! headers in any spelling (case, `_` for `-`), what a WebSocket upgrade
//! looks like. [`crate::outgoing`] applies the request side in one pass,
//! before the gateway adds its own headers; the transport cleans answers
//! with it.
//!
//! Not here: the wire side (heads as spans, `Date`:
//! [`crate::transport::codec`]) and the cookie headers
//! ([`crate::cookie_header`]).

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// The gateway's identity headers to the upstream.
pub const FORWARDED_EMAIL: HeaderName = HeaderName::from_static("x-forwarded-email");
pub const FORWARDED_USER: HeaderName = HeaderName::from_static("x-forwarded-user");
pub const FORWARDED_GROUPS: HeaderName = HeaderName::from_static("x-forwarded-groups");
pub const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Identity headers a client must never be able to send, compared
/// case-insensitively with `_` and `-` as equal. `x-auth-request-*` is
/// matched by prefix.
const IDENTITY: &[&str] = &[
    "x-forwarded-email",
    "x-forwarded-user",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "remote-user",
    "remote-email",
    "remote-name",
    "remote-groups",
    // The signed assertion ([`crate::assertion::HEADER`]).
    "x-portcullis-jwt-assertion",
    "x-portcullis-share",
];
const IDENTITY_PREFIX: &str = "x-auth-request-";

/// Whether a header describes one connection and is never forwarded
/// (RFC 9110 §7.6.1).
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    hop_by_hop_lowercase(name.as_str().as_bytes())
}

/// [`is_hop_by_hop`] for a `Connection` token or a raw header name (any
/// case), without making a header name of it (which allocates for names
/// `http` does not know, such as `keep-alive`).
pub fn token_is_hop_by_hop(token: &[u8]) -> bool {
    if !hop_by_hop_length(token.len()) {
        return false;
    }
    let mut lower = [0u8; 19];
    let Some(dst) = lower.get_mut(..token.len()) else {
        return false;
    };
    for (d, c) in dst.iter_mut().zip(token) {
        *d = c.to_ascii_lowercase();
    }
    hop_by_hop_lowercase(dst)
}

/// Whether a hop-by-hop name has this length.
fn hop_by_hop_length(n: usize) -> bool {
    matches!(n, 2 | 7 | 10 | 14 | 16 | 17 | 18 | 19)
}

/// The hop-by-hop names, lowercase. The length is tested first: most
/// headers (`date`, `server`, `content-type`) are decided there, and the
/// `match` compiles to at most one comparison, where a list costs ten.
fn hop_by_hop_lowercase(name: &[u8]) -> bool {
    hop_by_hop_length(name.len())
        && matches!(
            name,
            b"connection"
                | b"keep-alive"
                | b"proxy-connection"
                | b"te"
                | b"trailer"
                | b"transfer-encoding"
                | b"upgrade"
                | b"proxy-authorization"
                | b"proxy-authenticate"
                // Only meaningful for an h2c upgrade, which is never passed on.
                | b"http2-settings"
        )
}

/// One byte as [`is_identity_header`] compares it: lowercase, `_` → `-`.
fn fold(b: u8) -> u8 {
    if b == b'_' {
        b'-'
    } else {
        b.to_ascii_lowercase()
    }
}

/// Whether `name` is `target` (lowercase, with `-`) in any case and with
/// `_` for `-`.
pub fn folded_eq(name: &[u8], target: &str) -> bool {
    name.len() == target.len() && name.iter().zip(target.bytes()).all(|(a, b)| fold(*a) == b)
}

/// True for every spelling of an identity header.
pub fn is_identity_header(name: &str) -> bool {
    let n = name.as_bytes();
    // Every name on the list starts with `x` or `r`: most headers stop here.
    if !matches!(n.first().map(|b| fold(*b)), Some(b'x' | b'r')) {
        return false;
    }
    IDENTITY.iter().any(|t| folded_eq(n, t))
        || (n.len() >= IDENTITY_PREFIX.len()
            && folded_eq(&n[..IDENTITY_PREFIX.len()], IDENTITY_PREFIX))
}

/// Whether the request asks for a WebSocket upgrade (the only upgrade the
/// gateway passes on).
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let upgrade_ws = headers.get_all(header::UPGRADE).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.trim().eq_ignore_ascii_case("websocket"))
    });
    upgrade_ws && connection_tokens(headers).any(|t| t.eq_ignore_ascii_case(b"upgrade"))
}

/// The comma-separated tokens of one header value, trimmed, empty ones
/// skipped, as raw bytes (so no value is skipped for holding odd bytes).
pub fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| *b == b',')
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty())
}

/// The [`tokens`] of every `Connection` header.
pub fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| tokens(v.as_bytes()))
}

/// Removes the hop-by-hop headers and every header named in `Connection`.
/// With `websocket`, `Connection: upgrade` and `Upgrade: websocket` are put
/// back afterwards.
pub fn remove_hop_by_hop(headers: &mut HeaderMap, websocket: bool) {
    // Tokens that name a hop-by-hop header anyway (`keep-alive`, `close`
    // is none) need no list: nothing is allocated for the usual ones.
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter(|t| !token_is_hop_by_hop(t))
        .filter_map(|t| HeaderName::from_bytes(t).ok())
        .collect();
    remove_where(headers, |n| is_hop_by_hop(n) || named.contains(n));
    if websocket {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
}

/// Removes every header whose name `doomed` picks (all its values), in one
/// pass over the names; nothing is allocated unless two or more are picked.
pub fn remove_where(headers: &mut HeaderMap, doomed: impl Fn(&HeaderName) -> bool) {
    let mut picked = headers.keys().filter(|n| doomed(n));
    let Some(first) = picked.next().cloned() else {
        return;
    };
    let rest: Vec<HeaderName> = picked.cloned().collect();
    headers.remove(&first);
    for name in rest {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_tokens_match_the_names() {
        for t in [
            "keep-alive",
            "Keep-Alive",
            "CONNECTION",
            "te",
            "Proxy-Authorization",
            "http2-settings",
        ] {
            assert!(token_is_hop_by_hop(t.as_bytes()), "{t}");
        }
        for t in [
            "close",
            "x-a",
            "",
            "keep-alive-x",
            "proxy-authorization-and-more",
        ] {
            assert!(!token_is_hop_by_hop(t.as_bytes()), "{t}");
        }
        let mut h = map(&[
            ("connection", "Keep-Alive, X-Secret, close"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("x-kept", "2"),
        ]);
        remove_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["x-kept"], "2");
    }

    /// The hop-by-hop names, written out here apart from the code's own
    /// list, for the tests to check that list against.
    const HOP_BY_HOP_NAMES: [&str; 10] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authorization",
        "proxy-authenticate",
        "http2-settings",
    ];

    #[test]
    fn hop_by_hop_lengths_are_those_of_the_names() {
        let names = HOP_BY_HOP_NAMES;
        for n in 0..64 {
            assert_eq!(
                hop_by_hop_length(n),
                names.iter().any(|name| name.len() == n),
                "length {n}"
            );
        }
    }

    /// Every spelling `common_name` knows is the name `http` makes of it.
    #[test]
    fn hop_by_hop_names() {
        for n in HOP_BY_HOP_NAMES {
            assert!(is_hop_by_hop(&HeaderName::from_static(n)), "{n}");
        }
        for n in [
            "host",
            "cookie",
            "tes",
            "t",
            "content-length",
            "upgrade-insecure-requests",
        ] {
            assert!(!is_hop_by_hop(&HeaderName::from_static(n)), "{n}");
        }
    }

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn identity_headers_in_every_spelling() {
        for n in [
            "X-Forwarded-Email",
            "x-forwarded-email",
            "X_Forwarded_Email",
            "X-Forwarded_Email",
            "x-forwarded-user",
            "X-Forwarded-Groups",
            "Remote-User",
            "remote_email",
            "Remote-Name",
            "Remote-Groups",
            "X-Auth-Request-Email",
            "x_auth_request_user",
        ] {
            assert!(is_identity_header(n), "{n}");
        }
        assert!(!is_identity_header("X-Forwarded-Emails2"));
        assert!(!is_identity_header("Accept"));
    }

    #[test]
    fn connection_named_headers_go_first() {
        let mut h = map(&[
            ("connection", "close, X-Forwarded-For, x-custom"),
            ("x-custom", "1"),
            ("x-forwarded-for", "1.2.3.4"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("proxy-connection", "keep-alive"),
            ("accept", "*/*"),
        ]);
        remove_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn websocket_upgrade_is_kept() {
        let mut h = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ]);
        assert!(is_websocket_upgrade(&h));
        remove_hop_by_hop(&mut h, true);
        assert_eq!(h.get("upgrade").unwrap(), "websocket");
        assert_eq!(h.get("connection").unwrap(), "upgrade");
        let h2c = map(&[
            ("connection", "Upgrade, HTTP2-Settings"),
            ("upgrade", "h2c"),
        ]);
        assert!(!is_websocket_upgrade(&h2c));
    }
}
