//! The signed identity for upstreams (`[assertion]`): a JWT in
//! `X-Portcullis-Jwt-Assertion` on every request that passes with an
//! identity (Pomerium's `X-Pomerium-Jwt-Assertion`), and the public keys
//! at `/.portcullis/jwks.json`.
//!
//! Claims: `iss` (`[assertion] issuer`, default `public_url`), `aud` (the
//! request's host, without port), `sub` and `email` (the address),
//! `groups`, `iat`, `nbf`, `exp` (`iat` + 5 minutes), `jti` (128 random
//! bits), `sid` (a keyed hash of the session's tag: never the session id,
//! and different from the hash in the audit log) and `amr`. Header: `alg`,
//! `kid` (RFC 7638 thumbprint), `typ`. The first key signs; every key is
//! published, so a key can be announced before it signs and kept after.
//!
//! A token is signed once per session and host and reused until a minute
//! before it expires ([`cache`]); a reload builds a new [`Assertion`] (keys
//! read again, cache empty).

pub mod cache;
pub mod keys;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use ring::rand::SystemRandom;

use crate::body::{self, Body};
use crate::crypto::Key;
pub use keys::{Algorithm, SigningKey};

/// The request header the upstream gets (stripped from clients, with the
/// other identity headers).
pub const HEADER: HeaderName = HeaderName::from_static("x-portcullis-jwt-assertion");

/// Where the public keys are served, on every host.
pub const JWKS_PATH: &str = "/.portcullis/jwks.json";

/// A token's lifetime (`exp - iat`).
pub const TTL: Duration = Duration::from_secs(300);

/// How long before `exp` a cached token is replaced.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(60);

/// How long a client may cache the JWKS (`Cache-Control: max-age`): after
/// a new key is added, wait this long before it signs.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(300);

/// `[assertion]` as configured: checked, keys read.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub issuer: String,
    pub algorithm: Algorithm,
    /// The first signs; all are published.
    pub keys: Vec<SigningKey>,
    /// `signing_key_file`, in order (for messages and `check`).
    pub key_files: Vec<PathBuf>,
}

/// How the session was signed in, for `amr`: `["email"]` for the email
/// link or code (`method` `None`), else the provider as the session
/// records it (`["oidc:google"]`, `["github:gh"]`).
pub fn amr(method: Option<&str>) -> [&str; 1] {
    [method.unwrap_or("email")]
}

/// `[assertion]` at run time: the signer, its token cache and the JWKS.
pub struct Assertion {
    settings: Settings,
    rng: SystemRandom,
    cache: cache::TokenCache,
    jwks: Bytes,
    etag: HeaderValue,
    /// Tokens signed (for tests and figures: the rest were cache hits).
    signed: std::sync::atomic::AtomicU64,
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    email: &'a str,
    groups: Vec<&'a str>,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
    sid: String,
    amr: [&'a str; 1],
}

/// `host[:port]` → the lowercase host without port or trailing dot.
fn audience(host: &str) -> std::borrow::Cow<'_, str> {
    let name = if host.starts_with('[') {
        host.find(']').map_or(host, |i| &host[..=i])
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(name.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

impl Assertion {
    pub fn new(settings: Settings) -> Assertion {
        let jwks = keys::jwks(&settings.keys);
        let digest = ring::digest::digest(&ring::digest::SHA256, jwks.as_bytes());
        let etag = format!("\"{}\"", crate::crypto::b64(&digest.as_ref()[..16]));
        Assertion {
            etag: HeaderValue::from_str(&etag).unwrap_or_else(|_| HeaderValue::from_static("\"\"")),
            jwks: Bytes::from(jwks),
            settings,
            rng: SystemRandom::new(),
            cache: cache::TokenCache::default(),
            signed: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Tokens signed so far (requests beyond these were served from the
    /// cache).
    pub fn signed(&self) -> u64 {
        self.signed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The header value for a session (`tag`, `email`, its groups as
    /// `X-Forwarded-Groups` has them, how it signed in: see [`amr`]) on
    /// `host`: from the cache, or signed now. `None` only if signing fails.
    pub fn header(
        &self,
        key: &Key,
        tag: &[u8; 32],
        email: &str,
        groups: Option<&str>,
        method: Option<&str>,
        host: &str,
    ) -> Option<HeaderValue> {
        let aud = audience(host);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if let Some(token) = self.cache.get(tag, &aud, now) {
            return Some(token);
        }
        let exp = now + TTL.as_secs();
        let claims = Claims {
            iss: &self.settings.issuer,
            aud: &aud,
            sub: email,
            email,
            groups: groups
                .map(|g| g.split(',').filter(|s| !s.is_empty()).collect())
                .unwrap_or_default(),
            iat: now,
            nbf: now,
            exp,
            jti: crate::crypto::b64(&crate::crypto::random_bytes::<16>()),
            sid: crate::crypto::b64(&key.tag("assertion sid", tag)),
            amr: amr(method),
        };
        let json = serde_json::to_vec(&claims).ok()?;
        let signer = self.settings.keys.first()?;
        let token = signer.sign(&json, &self.rng)?;
        let value = HeaderValue::from_maybe_shared(Bytes::from(token)).ok()?;
        self.signed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.cache.put(
            *tag,
            &aud,
            value.clone(),
            exp - REFRESH_BEFORE.as_secs(),
            now,
        );
        Some(value)
    }

    /// `GET|HEAD /.portcullis/jwks.json`: the public keys, cacheable by
    /// anyone for [`JWKS_MAX_AGE`], with an `ETag` (304 when it matches
    /// `If-None-Match`) and CORS open (the keys are public).
    pub fn jwks_answer(&self, method: &Method, headers: &HeaderMap) -> Response<Body> {
        if method != Method::GET && method != Method::HEAD {
            return body::plain(StatusCode::METHOD_NOT_ALLOWED, "Use GET.");
        }
        let fresh = headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| {
                let t = t.trim();
                t == "*" || t.strip_prefix("W/").unwrap_or(t) == self.etag
            });
        let mut resp = if fresh {
            let mut r = Response::new(body::empty());
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r
        } else {
            let mut r = Response::new(body::full(self.jwks.clone()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/jwk-set+json"),
            );
            r
        };
        let h = resp.headers_mut();
        h.insert(header::ETAG, self.etag.clone());
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_is_the_bare_host() {
        assert_eq!(audience("App.Example.com:8443"), "app.example.com");
        assert_eq!(audience("app.example.com."), "app.example.com");
        assert_eq!(audience("[::1]:80"), "[::1]");
        assert_eq!(audience("127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn one_signature_per_session_and_host() {
        let key = Key::new(b"0123456789abcdef0123456789abcdef");
        let k = keys::parse_pem(&keys::generate(Algorithm::Es256).unwrap()).unwrap();
        let a = Assertion::new(Settings {
            issuer: "https://sso.test".into(),
            algorithm: Algorithm::Es256,
            keys: vec![k],
            key_files: vec![],
        });
        let t1 = a.header(
            &key,
            &[1; 32],
            "a@x.test",
            Some("dev,ops"),
            None,
            "app.test:8080",
        );
        let t2 = a.header(
            &key,
            &[1; 32],
            "a@x.test",
            Some("dev,ops"),
            None,
            "APP.test",
        );
        assert_eq!(t1, t2);
        assert_eq!(a.signed(), 1);
        let t3 = a.header(
            &key,
            &[1; 32],
            "a@x.test",
            Some("dev,ops"),
            None,
            "other.test",
        );
        assert_ne!(t1, t3);
        assert_eq!(a.signed(), 2);
        let t = t1.unwrap();
        let payload = t.to_str().unwrap().split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&crate::crypto::unb64(payload).unwrap()).unwrap();
        assert_eq!(claims["aud"], "app.test");
        assert_eq!(claims["groups"], serde_json::json!(["dev", "ops"]));
        assert_eq!(claims["amr"], serde_json::json!(["email"]));
        // A provider's session says which provider (another session: its
        // own cache entry).
        let t4 = a.header(
            &key,
            &[2; 32],
            "a@x.test",
            None,
            Some("oidc:corp"),
            "app.test",
        );
        let payload = t4
            .unwrap()
            .to_str()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap()
            .to_string();
        let claims: serde_json::Value =
            serde_json::from_slice(&crate::crypto::unb64(&payload).unwrap()).unwrap();
        assert_eq!(claims["amr"], serde_json::json!(["oidc:corp"]));
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            300
        );
        assert_ne!(claims["sid"], crate::crypto::b64(&[1; 32]));
    }
}
