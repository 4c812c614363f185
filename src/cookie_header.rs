//! The `Cookie` request header and the upstream's `Set-Cookie`: reading
//! one cookie's value (strictly: a name sent twice counts as absent), the
//! pairs an upstream may see (every pair but the gateway's, byte for
//! byte), and keeping an upstream from setting the gateway's cookies.
//! Parsed on bytes for the signed-in request's usual case, with a
//! differential test against the string version.

use std::borrow::Cow;

use http::header::{self, HeaderMap, HeaderValue};

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
    use http::header::HeaderName;

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
