//! The cookie that binds a provider sign-in to the browser that started
//! it (the counterpart of the email flow's verifier): the provider's name,
//! `state`, `nonce`, the PKCE verifier, the exact `redirect_uri` and the
//! checked `rd`, with an expiry, as base64url JSON followed by an HMAC
//! with the server key (purpose `oidc-flow`). HttpOnly, SameSite=Lax (the
//! callback is a top-level GET from the provider's site), ten minutes.
//!
//! The callback needs this cookie and a `state` equal to the one inside;
//! a page on another site cannot get a browser to finish a sign-in it did
//! not start, and a callback URL replayed elsewhere finds no cookie.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::crypto::{self, Key};

/// How long a started provider sign-in may take.
pub(super) const FLOW_AGE: Duration = Duration::from_secs(600);
/// The longest cookie value accepted (an `rd` is at most 2 KB).
const MAX_LEN: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Flow {
    /// `[[provider]] name`.
    pub provider: String,
    pub state: String,
    pub nonce: String,
    pub pkce: String,
    pub redirect_uri: String,
    pub rd: String,
    /// Unix seconds.
    pub expires: u64,
}

impl Flow {
    /// The cookie value.
    pub(super) fn seal(&self, key: &Key) -> String {
        let body = crypto::b64(serde_json::to_string(self).unwrap_or_default().as_bytes());
        let mac = crypto::b64(&key.tag("oidc-flow", body.as_bytes()));
        format!("{body}.{mac}")
    }

    /// The flow in a cookie value, if its MAC is good and it has not
    /// expired at `now`.
    pub(super) fn open(key: &Key, value: &str, now: u64) -> Option<Flow> {
        if value.len() > MAX_LEN {
            return None;
        }
        let (body, mac) = value.rsplit_once('.')?;
        let want = key.tag("oidc-flow", body.as_bytes());
        if !crypto::ct_eq(&crypto::unb64(mac)?, &want) {
            return None;
        }
        let flow: Flow = serde_json::from_slice(&crypto::unb64(body)?).ok()?;
        (flow.expires > now).then_some(flow)
    }
}

/// The PKCE S256 challenge for `verifier` (RFC 7636 §4.2).
pub(super) fn pkce_challenge(verifier: &str) -> String {
    use sha2::Digest;
    crypto::b64(&sha2::Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow() -> Flow {
        Flow {
            provider: "google".into(),
            state: "s".into(),
            nonce: "n".into(),
            pkce: "v".into(),
            redirect_uri: "https://a/.portcullis/oidc/callback".into(),
            rd: "/x".into(),
            expires: 100,
        }
    }

    #[test]
    fn sealed_and_opened() {
        let key = Key::new(&[7; 32]);
        let v = flow().seal(&key);
        assert_eq!(Flow::open(&key, &v, 99), Some(flow()));
        assert_eq!(Flow::open(&key, &v, 100), None, "expired");
        assert_eq!(Flow::open(&Key::new(&[8; 32]), &v, 99), None, "other key");
        let (body, mac) = v.rsplit_once('.').unwrap();
        let mut other = flow();
        other.rd = "https://evil.example".into();
        let forged = format!(
            "{}.{mac}",
            crypto::b64(serde_json::to_string(&other).unwrap().as_bytes())
        );
        assert_ne!(body, forged.rsplit_once('.').unwrap().0);
        assert_eq!(Flow::open(&key, &forged, 99), None, "tampered");
    }

    /// The value Node's `crypto` gives (`sha256`, `base64url`).
    #[test]
    fn s256_challenge() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K1uhbUJU1p1r_wW1gFWFOEjXk"),
            "DpW_nzyKLmXOCjIx2Ik4CEMHAv6AF_zNMXGb5Z9P0oI"
        );
    }
}
