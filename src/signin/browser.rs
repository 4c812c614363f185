//! What the flow knows of the browser it talks to: the gateway cookies it
//! sent, the verifier that binds a sign-in attempt to the browser that
//! asked, and the same-browser check. Token-shaped values (link tokens,
//! verifiers, CSRF cookies) are checked by shape here before use.
//!
//! Not here: the CSRF cookie ([`super::csrf`]) and the session cookie's
//! signature ([`crate::session`]).

use std::time::Duration;

use http::header::HeaderMap;

use crate::cookies::{self, Kind};
use crate::crypto;
use crate::state::Ctx;
use crate::store::Attempt;

/// Verifier and CSRF cookies live this long in the browser.
pub(super) const BROWSER_COOKIE_AGE: Duration = Duration::from_secs(30 * 86_400);

/// Whether `t` has the shape of [`crypto::random_token`]'s output.
pub(super) fn plausible_token(t: &str) -> bool {
    t.len() == 43
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The `browser` of an attempt no browser asked for (`portcullis link`):
/// this prefix and random hex, so it never equals a verifier's hash (64
/// hex digits) and two such links never share the browser index.
pub const ANY_BROWSER: &str = "any:";

/// Whether the attempt was made by `portcullis link`, for whichever
/// browser opens it and presses the button first.
pub(super) fn any_browser(attempt: &Attempt) -> bool {
    attempt.browser.starts_with(ANY_BROWSER)
}

/// Whether this browser's verifier cookie is the one the attempt was
/// asked with.
pub(super) fn same_browser(cx: &Ctx<'_>, headers: &HeaderMap, attempt: &Attempt) -> bool {
    cookie_value(cx, headers, Kind::Verifier).is_some_and(|v| {
        let hash = cx.app.key.hash_hex("verifier", v.as_bytes());
        crypto::ct_eq(hash.as_bytes(), attempt.browser.as_bytes())
    })
}

/// The browser's non-empty cookie of this kind.
pub(super) fn cookie_value<'h>(
    cx: &Ctx<'_>,
    headers: &'h HeaderMap,
    kind: Kind,
) -> Option<&'h str> {
    let domain = cx.live.config.session.cookie_domain.as_deref();
    crate::cookie_header::cookie(headers, cookies::name(kind, cx.https, domain))
        .filter(|v| !v.is_empty())
}

/// The browser's verifier, or a new one to set.
pub(super) fn verifier(cx: &Ctx<'_>, headers: &HeaderMap) -> (String, Option<String>) {
    match cookie_value(cx, headers, Kind::Verifier).filter(|v| plausible_token(v)) {
        Some(v) => (v.to_string(), None),
        None => {
            let v = crypto::random_token();
            (v.clone(), Some(v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape() {
        assert!(plausible_token(&crypto::random_token()));
        assert!(!plausible_token("short"));
        assert!(!plausible_token(&"a".repeat(42)));
        assert!(!plausible_token(&format!("{}=", "a".repeat(42))));
    }
}
