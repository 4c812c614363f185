//! Share links (django-sesame's scoped tokens, for a gateway): a token
//! that carries its own scope (which host, which path or path prefix,
//! which methods, until when, optionally for which address) inside its
//! MAC, so the gateway needs no store to check it.
//!
//! - The token: `ps1.<payload>.<mac>`, the payload the [`Grant`] as
//!   JSON in base64url, the MAC HMAC-SHA256 over `ps1.<payload>` with a
//!   key derived from the server key for this use only
//!   ([`crate::crypto::Key::derive`], label `share`). Changing one byte of
//!   the scope breaks the MAC.
//! - Opening `/.portcullis/share/{token}` (`signin::share_open`) checks
//!   it, sets [`cookie_name`] with `Path=` the shared path and 303s there:
//!   the token never reaches the upstream, and the browser sends the
//!   cookie only under that path.
//! - Each request that has no session reads the share cookies
//!   ([`presented`]) and passes only if a grant [`Grant::covering`] it:
//!   the host (without port), the method, and every reading of the path
//!   (the canonical path and its matching view, as the routes read it) is
//!   the path or, with `prefix`, under it on a segment boundary
//!   (`/reports/66` covers `/reports/66/x`, never `/reports/66x`).
//! - Revocation: a revoked id is a store key (`share-revoked:{id}`, as long
//!   as the link would live), read once per request that passes by a
//!   share: one store read (a Redis GET) per shared request, none for any
//!   other request.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cookie::{Cookie, SameSite};
use http::header::{self, HeaderMap, HeaderValue};
use http::Method;
use serde::{Deserialize, Serialize};

use crate::crypto::{self, Key};

/// The token's version prefix.
const PREFIX: &str = "ps1.";

/// Longest token read (a grant with a long path and address is ~400).
pub const MAX_TOKEN_LEN: usize = 2048;

/// Most share cookies looked at in one request.
const MAX_COOKIES: usize = 8;

/// The upstream is told a request passed by a share link.
pub const SHARE_HEADER: http::HeaderName = http::HeaderName::from_static("x-portcullis-share");

/// The prefix of `X-Forwarded-User` for a share without an address.
pub const USER_PREFIX: &str = "share:";

/// The endpoint that opens a link: `{origin}/.portcullis/share/{token}`.
pub const ENDPOINT: &str = "/.portcullis/share/";

/// What logs and the audit trail say for the path of an opened link
/// (the token is a credential: never logged).
pub const LOGGED_PATH: &str = "/.portcullis/share/(token)";

/// A share link's scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// 16 hex digits: in `share list`, `share revoke`, the audit log and
    /// `X-Portcullis-Share`.
    pub id: String,
    /// Lowercase host name, without port.
    #[serde(rename = "h")]
    pub host: String,
    /// A canonical path.
    #[serde(rename = "p")]
    pub path: String,
    /// Also every path under `path`.
    #[serde(rename = "x", default)]
    pub prefix: bool,
    /// Upper case.
    #[serde(rename = "m")]
    pub methods: Vec<String>,
    /// Made at, unix seconds.
    pub iat: u64,
    /// Ends at, unix seconds.
    pub exp: u64,
    /// The address it was made for, sent as `X-Forwarded-Email`.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not a token, or its MAC does not match (tampered, or another key).
    Forged,
    Expired,
}

/// A grant checked to cover one request (only [`Grant::covering`] makes
/// one): what [`crate::authorize`] lets pass.
#[derive(Debug, Clone, Copy)]
pub struct Covering<'a>(&'a Grant);

impl<'a> Covering<'a> {
    pub fn grant(&self) -> &'a Grant {
        self.0
    }
}

fn share_key(key: &Key) -> Key {
    key.derive("share")
}

impl Grant {
    /// The token for this grant.
    pub fn mint(&self, key: &Key) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let signed = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json));
        let mac = share_key(key).tag("share", signed.as_bytes());
        format!("{signed}.{}", crypto::b64(&mac))
    }

    /// The grant inside `token`, if its MAC holds and it has not ended at
    /// `now` (unix seconds).
    pub fn verify(key: &Key, token: &str, now: u64) -> Result<Grant, Invalid> {
        if token.len() > MAX_TOKEN_LEN || !token.starts_with(PREFIX) {
            return Err(Invalid::Forged);
        }
        let (signed, mac) = token.rsplit_once('.').ok_or(Invalid::Forged)?;
        let mac = crypto::unb64_32(mac).ok_or(Invalid::Forged)?;
        let expected = share_key(key).tag("share", signed.as_bytes());
        if !crypto::ct_eq(&mac, &expected) {
            return Err(Invalid::Forged);
        }
        let payload = signed.get(PREFIX.len()..).ok_or(Invalid::Forged)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| Invalid::Forged)?;
        let grant: Grant = serde_json::from_slice(&json).map_err(|_| Invalid::Forged)?;
        if now >= grant.exp {
            return Err(Invalid::Expired);
        }
        Ok(grant)
    }

    /// Whether this grant takes `host` (as the request names it, any port).
    pub fn takes_host(&self, host: &str) -> bool {
        let name = crate::config::strip_port(host);
        let name = name.strip_suffix('.').unwrap_or(name);
        name.eq_ignore_ascii_case(&self.host)
    }

    /// Whether `path` (one reading) is the shared path, or under it with
    /// `prefix`, on a segment boundary and in the exact case.
    fn takes_path(&self, path: &str) -> bool {
        if path == self.path {
            return true;
        }
        if !self.prefix {
            return false;
        }
        let base = self.path.strip_suffix('/').unwrap_or(&self.path);
        path.strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
    }

    /// This grant as covering the request `method host path` (`path`
    /// canonical), when it does: host, method, and both readings of the
    /// path.
    pub fn covering(&self, host: &str, method: &Method, path: &str) -> Option<Covering<'_>> {
        let view = crate::path::matching_view(path);
        let ok = self.takes_host(host)
            && self.methods.iter().any(|m| m == method.as_str())
            && self.takes_path(path)
            && self.takes_path(&view);
        ok.then_some(Covering(self))
    }

    /// The `X-Forwarded-User` of a request it lets pass: its address, or
    /// `share:ID`.
    pub fn user(&self) -> String {
        match &self.email {
            Some(e) => e.clone(),
            None => format!("{USER_PREFIX}{}", self.id),
        }
    }

    /// Seconds left at `now`.
    pub fn left(&self, now: u64) -> u64 {
        self.exp.saturating_sub(now)
    }
}

/// The store key (a [`crate::store::Store::hit`] counter) that marks `id`
/// revoked.
pub fn revoked_key(id: &str) -> String {
    format!("share-revoked:{id}")
}

/// A new share id: 64 random bits in hex.
pub fn new_id() -> String {
    crypto::hex(&crypto::random_bytes::<8>())
}

/// The share cookie's name: `__Secure-` over HTTPS (it cannot be
/// `__Host-`, which needs `Path=/`).
pub fn cookie_name(https: bool) -> &'static str {
    if https {
        "__Secure-portcullis-share"
    } else {
        "portcullis-share"
    }
}

/// The `Set-Cookie` for a grant opened over `https`: `Path` the shared
/// path, HttpOnly, SameSite=Lax, Secure over HTTPS, for as long as the
/// link lives.
pub fn set_cookie(token: &str, grant: &Grant, https: bool, now: u64) -> Option<HeaderValue> {
    let age = i64::try_from(grant.left(now)).unwrap_or(i64::MAX);
    let c = Cookie::build((cookie_name(https), token.to_string()))
        .path(grant.path.clone())
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(https)
        .max_age(cookie::time::Duration::seconds(age));
    HeaderValue::from_str(&c.build().to_string()).ok()
}

/// Every share token the request's cookies hold (the browser sends one
/// per shared path above the request's, so the name may repeat), at most
/// [`MAX_COOKIES`].
pub fn presented(headers: &HeaderMap, https: bool) -> Vec<&str> {
    let name = cookie_name(https);
    let mut out = Vec::new();
    for v in headers.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for pair in v.split(';') {
            let Some((n, value)) = pair.split_once('=') else {
                continue;
            };
            if n.trim() == name && out.len() < MAX_COOKIES {
                out.push(value.trim().trim_matches('"'));
            }
        }
    }
    out
}

/// Whether `path` may be shared: a canonical path (it re-normalises to
/// itself) without `;` (a cookie's `Path` cannot hold one).
pub fn valid_path(path: &str) -> bool {
    crate::path::normalize(path).is_ok_and(|p| p == path) && !path.contains(';')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(path: &str, prefix: bool) -> Grant {
        Grant {
            id: "0011223344556677".into(),
            host: "app.test".into(),
            path: path.into(),
            prefix,
            methods: vec!["GET".into(), "HEAD".into()],
            iat: 100,
            exp: 1_000,
            email: None,
        }
    }

    fn key() -> Key {
        Key::new(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn a_token_carries_its_scope_under_the_mac() {
        let g = grant("/reports/66", false);
        let t = g.mint(&key());
        assert!(t.starts_with("ps1."));
        assert_eq!(Grant::verify(&key(), &t, 999), Ok(g.clone()));
        assert_eq!(Grant::verify(&key(), &t, 1_000), Err(Invalid::Expired));
        // Another key, or the server key itself, does not verify it.
        let other = Key::new(b"another key another key another k");
        assert_eq!(Grant::verify(&other, &t, 0), Err(Invalid::Forged));
        // A changed scope with the old MAC.
        let (_, mac) = t.rsplit_once('.').unwrap();
        let wider = grant("/reports", true).mint(&key());
        let (signed, _) = wider.rsplit_once('.').unwrap();
        assert_eq!(
            Grant::verify(&key(), &format!("{signed}.{mac}"), 0),
            Err(Invalid::Forged)
        );
        // Every single-character change is refused.
        for i in 0..t.len() {
            let mut b = t.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(b).unwrap();
            if changed != t {
                assert!(Grant::verify(&key(), &changed, 0).is_err(), "{i}");
            }
        }
        assert_eq!(Grant::verify(&key(), "", 0), Err(Invalid::Forged));
        assert_eq!(Grant::verify(&key(), "ps1.", 0), Err(Invalid::Forged));
    }

    #[test]
    fn covering_host_method_and_both_readings() {
        let exact = grant("/reports/66", false);
        let get = Method::GET;
        assert!(exact.covering("app.test", &get, "/reports/66").is_some());
        assert!(exact
            .covering("APP.test:8443", &get, "/reports/66")
            .is_some());
        assert!(exact.covering("other.test", &get, "/reports/66").is_none());
        assert!(exact
            .covering("app.test", &Method::POST, "/reports/66")
            .is_none());
        assert!(exact.covering("app.test", &get, "/reports/66/x").is_none());
        assert!(exact.covering("app.test", &get, "/reports/66x").is_none());
        assert!(exact.covering("app.test", &get, "/Reports/66").is_none());
        // `/reports/66;x` is `/reports/66` to Tomcat, but not literally.
        assert!(exact.covering("app.test", &get, "/reports/66;x").is_none());
        let prefix = grant("/reports/66", true);
        assert!(prefix.covering("app.test", &get, "/reports/66").is_some());
        assert!(prefix
            .covering("app.test", &get, "/reports/66/a/b")
            .is_some());
        assert!(prefix.covering("app.test", &get, "/reports/66x").is_none());
        assert!(prefix.covering("app.test", &get, "/reports/6").is_none());
        // Both readings: `/reports/66;x/../y` has no dot segments left,
        // but a view under the prefix and a literal path outside it fail.
        assert!(prefix
            .covering("app.test", &get, "/reports;x/66/a")
            .is_none());
        let slash = grant("/reports/", true);
        assert!(slash.covering("app.test", &get, "/reports/1").is_some());
        assert!(slash.covering("app.test", &get, "/reportsx").is_none());
    }

    #[test]
    fn cookies_are_read_whatever_their_number() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "a=1; portcullis-share=ps1.x.y; portcullis-share=ps1.z.w"
                .parse()
                .unwrap(),
        );
        assert_eq!(presented(&h, false), ["ps1.x.y", "ps1.z.w"]);
        assert!(presented(&h, true).is_empty());
        let g = grant("/reports/66", false);
        let c = set_cookie("tok", &g, true, 400).unwrap();
        let c = c.to_str().unwrap();
        assert!(c.starts_with("__Secure-portcullis-share=tok"), "{c}");
        for attr in [
            "Path=/reports/66",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Max-Age=600",
        ] {
            assert!(c.contains(attr), "{c} lacks {attr}");
        }
    }

    #[test]
    fn shareable_paths() {
        assert!(valid_path("/reports/66"));
        assert!(valid_path("/"));
        assert!(!valid_path("/reports/../x"));
        assert!(!valid_path("/a;b"));
        assert!(!valid_path("reports"));
        assert!(!valid_path("/a//b"));
    }
}
