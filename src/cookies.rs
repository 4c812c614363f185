//! The gateway's cookies: their names and how they are set and expired.
//!
//! Over HTTPS the session cookie is `__Host-portcullis` (Secure, Path=/, no
//! Domain: bound to one host); with `session.cookie_domain` it must carry a
//! Domain and is `__Secure-portcullis` instead. Over plain HTTP the names
//! have no prefix. All are HttpOnly and SameSite=Lax (people arrive from
//! links in email, which are cross-site navigations).

use std::time::Duration;

use cookie::{Cookie, SameSite};
use http::header::{HeaderValue, SET_COOKIE};
use http::HeaderMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The signed session.
    Session,
    /// The random value that binds a sign-in attempt to the browser that
    /// asked for it.
    Verifier,
    /// The double-submit value behind every form's CSRF field.
    Csrf,
    /// A sign-in with an identity provider under way: its `state`, `nonce`
    /// and PKCE verifier, sealed, for ten minutes.
    Provider,
}

/// Every name the gateway may use: removed from what goes upstream.
pub const ALL_NAMES: &[&str] = &[
    "__Host-portcullis",
    "__Secure-portcullis",
    "portcullis",
    "__Host-portcullis-verifier",
    "portcullis-verifier",
    "__Host-portcullis-csrf",
    "portcullis-csrf",
    "__Secure-portcullis-share",
    "portcullis-share",
    "__Host-portcullis-oidc",
    "portcullis-oidc",
];

pub fn name(kind: Kind, https: bool, cookie_domain: Option<&str>) -> &'static str {
    match (kind, https) {
        (Kind::Session, true) if cookie_domain.is_some() => "__Secure-portcullis",
        (Kind::Session, true) => "__Host-portcullis",
        (Kind::Session, false) => "portcullis",
        (Kind::Verifier, true) => "__Host-portcullis-verifier",
        (Kind::Verifier, false) => "portcullis-verifier",
        (Kind::Csrf, true) => "__Host-portcullis-csrf",
        (Kind::Csrf, false) => "portcullis-csrf",
        (Kind::Provider, true) => "__Host-portcullis-oidc",
        (Kind::Provider, false) => "portcullis-oidc",
    }
}

/// A `Set-Cookie` value; `max_age` None = expire it now.
pub fn set(
    kind: Kind,
    value: &str,
    https: bool,
    cookie_domain: Option<&str>,
    max_age: Option<Duration>,
) -> Option<HeaderValue> {
    let mut c = Cookie::build((name(kind, https, cookie_domain), value.to_string()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(https);
    if kind == Kind::Session {
        if let Some(d) = cookie_domain {
            c = c.domain(d.to_string());
        }
    }
    let max_age = match max_age {
        Some(d) => cookie::time::Duration::seconds(d.as_secs().min(i64::MAX as u64) as i64),
        None => cookie::time::Duration::ZERO,
    };
    c = c.max_age(max_age);
    HeaderValue::from_str(&c.build().to_string()).ok()
}

pub fn append(headers: &mut HeaderMap, value: Option<HeaderValue>) {
    if let Some(v) = value {
        headers.append(SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookie_attributes() {
        let v = set(
            Kind::Session,
            "abc",
            true,
            None,
            Some(Duration::from_secs(60)),
        )
        .unwrap();
        let s = v.to_str().unwrap();
        assert!(s.starts_with("__Host-portcullis=abc"), "{s}");
        for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/", "Max-Age=60"] {
            assert!(s.contains(attr), "{s} lacks {attr}");
        }
        assert!(!s.contains("Domain"));
        let plain = set(Kind::Session, "abc", false, None, None).unwrap();
        let p = plain.to_str().unwrap();
        assert!(p.starts_with("portcullis=abc"));
        assert!(!p.contains("Secure"));
        assert!(p.contains("Max-Age=0"));
        let shared = set(Kind::Session, "x", true, Some("example.com"), None).unwrap();
        let d = shared.to_str().unwrap();
        assert!(d.starts_with("__Secure-portcullis=x"), "{d}");
        assert!(d.contains("Domain=example.com"));
    }

    #[test]
    fn every_name_is_in_all_names() {
        for kind in [Kind::Session, Kind::Verifier, Kind::Csrf, Kind::Provider] {
            for https in [true, false] {
                for domain in [None, Some("example.com")] {
                    assert!(ALL_NAMES.contains(&name(kind, https, domain)));
                }
            }
        }
    }
}
