//! Header hygiene between client, gateway and upstream: which names are
//! hop-by-hop, which are identity headers in any spelling (case, `_` for
//! `-`), the `Cookie` value without the gateway's cookies, and the
//! cleaning of the upstream's answer. [`crate::outgoing`] applies the
//! request side in one pass, before the gateway adds its own headers.
//!
//! The wire side (heads as spans, `Date`) is [`crate::transport::codec`].

use std::borrow::Cow;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// The gateway's identity headers to the upstream.
pub const FORWARDED_EMAIL: HeaderName = HeaderName::from_static("x-forwarded-email");
pub const FORWARDED_USER: HeaderName = HeaderName::from_static("x-forwarded-user");
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

/// The name of one `Cookie` pair as [`kept_cookies`] reads it.
fn pair_name(pair: &str) -> &str {
    pair.trim_start().split('=').next().unwrap_or("").trim()
}

/// Whether one `Cookie` pair of a plain-ASCII header (as `to_str` passes
/// it) is one of ours: [`pair_name`] on bytes, without a string searcher.
fn is_ours(pair: &[u8], ours: &[&str]) -> bool {
    let end = memchr::memchr(b'=', pair).unwrap_or(pair.len());
    let name = pair[..end].trim_ascii();
    ours.iter().any(|o| o.as_bytes() == name)
}

/// The `Cookie` value the upstream gets: every pair but the gateway's
/// (by exact name), the others byte for byte; several `Cookie` headers
/// (HTTP/2) are joined first. `None` when there is no `Cookie` or no pair
/// is left.
pub fn kept_cookies<'a>(headers: &'a HeaderMap, ours: &[&str]) -> Option<Cow<'a, [u8]>> {
    let mut all = headers.get_all(header::COOKIE).iter();
    let first = all.next()?;
    let single = all.next().is_none();
    let v = first.as_bytes();
    let kept = if single && visible_ascii(v) {
        // The common case, one plain-ASCII header holding none of ours, is
        // passed on exactly as it came.
        if !pairs(v).any(|p| is_ours(p, ours)) {
            return Some(Cow::Borrowed(v));
        }
        keep_ascii_pairs(v, ours)
    } else {
        let joined = headers
            .get_all(header::COOKIE)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .collect::<Vec<_>>()
            .join("; ");
        keep_pairs(joined.split(';'), ours).into_bytes()
    };
    (!kept.is_empty()).then_some(Cow::Owned(kept))
}

/// Whether a header value is visible ASCII, tab allowed (what `http`'s
/// `HeaderValue::to_str` accepts), without stopping early: the loop
/// compiles to vector instructions, and a session cookie is ~90 bytes.
fn visible_ascii(v: &[u8]) -> bool {
    v.iter().fold(true, |ok, &b| {
        ok & (((32..127).contains(&b)) | (b == b'\t'))
    })
}

/// The `;`-separated pairs of one `Cookie` value, untrimmed.
fn pairs(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b';', v)
        .chain(std::iter::once(v.len()))
        .map(move |end| {
            let pair = v.get(start..end).unwrap_or(&[]);
            start = end + 1;
            pair
        })
}

/// [`keep_pairs`] of one plain-ASCII header (as `to_str` passes it), on
/// bytes: the signed-in request's usual case.
fn keep_ascii_pairs(v: &[u8], ours: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for pair in pairs(v) {
        let pair = trim_start(pair);
        if pair.is_empty() || is_ours(pair, ours) {
            continue;
        }
        if !out.is_empty() {
            out.extend_from_slice(b"; ");
        }
        out.extend_from_slice(pair);
    }
    out
}

/// `str::trim_start` for a visible-ASCII value (spaces and tabs).
fn trim_start(v: &[u8]) -> &[u8] {
    let n = v.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
    v.get(n..).unwrap_or(&[])
}

/// The pairs that are not ours, each without its leading spaces, joined
/// with `"; "`.
fn keep_pairs<'a>(pairs: impl Iterator<Item = &'a str>, ours: &[&str]) -> String {
    let mut out = String::new();
    for p in pairs.map(str::trim_start) {
        if p.is_empty() || ours.contains(&pair_name(p)) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(p);
    }
    out
}

/// Reads one cookie's value from the request (first occurrence wins; a
/// name sent twice is treated as absent to avoid cookie tossing). Headers
/// that are not visible ASCII are skipped; names and values are trimmed,
/// and quotes around a value dropped.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = None;
    for v in headers.get_all(header::COOKIE) {
        let v = v.as_bytes();
        if !visible_ascii(v) {
            continue;
        }
        for pair in pairs(v) {
            let Some(eq) = memchr::memchr(b'=', pair) else {
                continue;
            };
            if pair[..eq].trim_ascii() != name.as_bytes() {
                continue;
            }
            if found.is_some() {
                return None;
            }
            found = Some(unquote(pair[eq + 1..].trim_ascii()));
        }
    }
    // Visible ASCII, so UTF-8: this cannot fail.
    found.and_then(|v| std::str::from_utf8(v).ok())
}

/// `str::trim_matches('"')` on bytes.
fn unquote(mut v: &[u8]) -> &[u8] {
    while let [b'"', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b'"'] = v {
        v = rest;
    }
    v
}

/// Removes `Set-Cookie` headers from the upstream that would overwrite
/// one of the gateway's cookies.
pub fn strip_upstream_set_cookie(headers: &mut HeaderMap, ours: &[&str]) {
    if !headers.contains_key(header::SET_COOKIE) {
        return;
    }
    let kept: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|v| {
            let s = String::from_utf8_lossy(v.as_bytes());
            let name = s.split('=').next().unwrap_or("").trim().to_string();
            !ours.contains(&name.as_str())
        })
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for v in kept {
        headers.append(header::SET_COOKIE, v);
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

    #[test]
    fn keep_ascii_pairs_agrees_with_keep_pairs() {
        let ours = ["portcullis", "portcullis-csrf"];
        for v in [
            "portcullis=v1.a.b",
            "a=1; portcullis=v1.a.b; b=2",
            "portcullis=x;",
            ";portcullis=x;;",
            " a=1 ;  b=2 ; portcullis-csrf=3",
            "a=1",
            "",
            ";",
            "portcullis",
            "a=1;portcullis =x;b",
            "\ta=1;\tportcullis=2",
        ] {
            assert_eq!(
                keep_ascii_pairs(v.as_bytes(), &ours),
                keep_pairs(v.split(';'), &ours).into_bytes(),
                "{v:?}"
            );
        }
    }

    /// The byte-level check of the common case agrees with the string one.
    #[test]
    fn is_ours_agrees_with_pair_name() {
        let ours = ["portcullis", "portcullis-csrf"];
        for pair in [
            "portcullis=v1.a.b",
            " portcullis=x",
            "portcullis =x",
            "\tportcullis\t=x",
            "portcullis",
            " portcullis ",
            "portcullis-csrf=1",
            "portcullisx=1",
            "xportcullis=1",
            "Portcullis=1",
            "=portcullis",
            "",
            " ",
            "a=portcullis",
            "portcullis==",
        ] {
            let slow = ours.contains(&pair_name(pair));
            assert_eq!(is_ours(pair.as_bytes(), &ours), slow, "{pair:?}");
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

    #[test]
    fn gateway_cookie_removed_exactly() {
        // The vector of security checklist item 22 (Pomerium's lua test), with our name.
        let h = map(&[(
            "cookie",
            "cookieA=aaa_portcullis=123; cookieb=bbb; portcullis=ey;portcullis_x=stay ; portcullis_y=stay",
        )]);
        assert_eq!(
            kept_cookies(&h, &["portcullis"]).as_deref(),
            Some(
                &b"cookieA=aaa_portcullis=123; cookieb=bbb; portcullis_x=stay ; portcullis_y=stay"
                    [..]
            )
        );
        let only = map(&[("cookie", "portcullis=x")]);
        assert_eq!(kept_cookies(&only, &["portcullis"]), None);
        // None of ours: the value as it came, not a copy.
        let none = map(&[("cookie", "a=1;b=2")]);
        assert!(matches!(
            kept_cookies(&none, &["portcullis"]),
            Some(Cow::Borrowed(b"a=1;b=2"))
        ));
        // Two headers (HTTP/2) are joined, ours taken out of both.
        let two = map(&[
            ("cookie", "a=1; portcullis=x"),
            ("cookie", "portcullis=y; b=2"),
        ]);
        assert_eq!(
            kept_cookies(&two, &["portcullis"]).as_deref(),
            Some(&b"a=1; b=2"[..])
        );
        assert_eq!(kept_cookies(&HeaderMap::new(), &["portcullis"]), None);
    }

    /// The lookup as it was first written, on `str`: the oracle for the
    /// byte version.
    fn cookie_by_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
        let mut found = None;
        for v in headers.get_all(header::COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            for pair in v.split(';') {
                let pair = pair.trim();
                if let Some((k, val)) = pair.split_once('=') {
                    if k.trim() == name {
                        if found.is_some() {
                            return None;
                        }
                        found = Some(val.trim().trim_matches('"'));
                    }
                }
            }
        }
        found
    }

    /// `kept_cookies` as it was first written, on `str`.
    fn kept_by_str(headers: &HeaderMap, ours: &[&str]) -> Option<Vec<u8>> {
        let mut all = headers.get_all(header::COOKIE).iter();
        let first = all.next()?;
        let single = all.next().is_none();
        let kept = match (single, first.to_str()) {
            (true, Ok(v)) if !v.split(';').any(|p| ours.contains(&pair_name(p))) => {
                return Some(v.as_bytes().to_vec())
            }
            _ => {
                let joined = headers
                    .get_all(header::COOKIE)
                    .iter()
                    .map(|v| String::from_utf8_lossy(v.as_bytes()))
                    .collect::<Vec<_>>()
                    .join("; ");
                keep_pairs(joined.split(';'), ours)
            }
        };
        (!kept.is_empty()).then(|| kept.into_bytes())
    }

    /// Generated `Cookie` headers (pieces of names, values, separators,
    /// spaces, tabs, quotes, non-ASCII and control bytes): the byte
    /// versions of the lookup and of the stripping agree with the string
    /// ones on every one.
    #[test]
    fn byte_cookie_parsing_agrees_with_the_string_version() {
        const PIECES: &[&[u8]] = &[
            b"portcullis",
            b"portcullis-csrf",
            b"a",
            b"b",
            b"=",
            b";",
            b" ",
            b"\t",
            b"\"",
            b"v1.x.y",
            b"1",
            b"caf\xc3\xa9",
            b"\x7f",
            b"\x80",
            b"==",
            b"; ",
            b"Portcullis",
        ];
        let ours = ["portcullis", "portcullis-csrf"];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for case in 0..5000 {
            let mut h = HeaderMap::new();
            for _ in 0..1 + next(3) {
                let value: Vec<u8> = (0..next(12))
                    .flat_map(|_| PIECES[next(PIECES.len())].iter().copied())
                    .collect();
                if let Ok(v) = HeaderValue::from_bytes(&value) {
                    h.append(header::COOKIE, v);
                }
            }
            for name in ["portcullis", "portcullis-csrf", "a", "b", ""] {
                assert_eq!(
                    cookie(&h, name),
                    cookie_by_str(&h, name),
                    "case {case}: {h:?} {name}"
                );
            }
            assert_eq!(
                kept_cookies(&h, &ours).map(|c| c.into_owned()),
                kept_by_str(&h, &ours),
                "case {case}: {h:?}"
            );
        }
    }

    #[test]
    fn cookie_lookup_refuses_duplicates() {
        let h = map(&[("cookie", "a=1; b=2"), ("cookie", "c=3")]);
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), Some("3"));
        assert_eq!(cookie(&h, "d"), None);
        let dup = map(&[("cookie", "a=1; a=2")]);
        assert_eq!(cookie(&dup, "a"), None);
    }
}
