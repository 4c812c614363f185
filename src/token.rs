//! Machine tokens (`[[token]]`): long random secrets that scripts,
//! webhooks and CI jobs send as `Authorization: Bearer <secret>` to pass
//! as the token's identity, without a session (Cloudflare Access's service
//! tokens, for a gateway).
//!
//! The model: a token is a member of the groups it lists, and passes a
//! route only where that route's `allow_groups` names one of them (for
//! every reading of the path, as for a person). It never falls under "any
//! signed-in user", never under `allow_emails` or `allow_domains`, and
//! the `[login]` allow lists (which are about addresses) do not apply.
//! The decision is [`crate::authorize`]'s, for the proxy and forward-auth
//! alike.
//!
//! The gateway keeps only the SHA-256 of each secret (`sha256`, or the
//! hash of `secret_file`'s content made at load). A presented secret is
//! hashed and compared with every configured digest in constant time
//! ([`Tokens::check`]); a secret of 256 random bits cannot be found from
//! its hash, so the digests need no key. The secret itself is never
//! logged, never stored and never sent upstream (the proxy drops the
//! `Authorization` header it came in).

use http::header::{self, HeaderMap};
use sha2::{Digest, Sha256};

use crate::groups::Membership;

/// The prefix of a token's `X-Forwarded-User`: `token:NAME`.
pub const USER_PREFIX: &str = "token:";

/// One configured token.
#[derive(Debug, Clone)]
pub struct Token {
    /// `[[token]] name`: in the audit log and in `X-Forwarded-User`.
    pub name: String,
    /// `token:NAME`, the `X-Forwarded-User` it passes as.
    pub user: String,
    /// SHA-256 of the secret.
    pub digest: [u8; 32],
    /// The groups it is a member of (`None`: none that exists, so no
    /// route admits it).
    pub groups: Option<Membership>,
    /// Unix seconds from which it no longer works.
    pub expires: Option<u64>,
}

/// What a presented secret is.
#[derive(Debug, Clone, Copy)]
pub enum Check<'a> {
    Valid(&'a Token),
    /// A configured token past its `expires`.
    Expired(&'a Token),
    /// No configured token has this secret.
    Unknown,
}

/// Every `[[token]]`.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    list: Vec<Token>,
}

impl Tokens {
    pub fn new(list: Vec<Token>) -> Tokens {
        Tokens { list }
    }

    /// Whether no token is configured (then a Bearer header means nothing
    /// to the gateway and is left to the application).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Token> {
        self.list.iter()
    }

    /// The token whose secret is `secret`, at `now` (unix seconds). Every
    /// digest is compared, each in constant time.
    pub fn check(&self, secret: &str, now: u64) -> Check<'_> {
        let presented = digest(secret.as_bytes());
        let mut found = None;
        for t in &self.list {
            if crate::crypto::ct_eq(&t.digest, &presented) {
                found = Some(t);
            }
        }
        match found {
            Some(t) if t.expires.is_some_and(|end| now >= end) => Check::Expired(t),
            Some(t) => Check::Valid(t),
            None => Check::Unknown,
        }
    }
}

/// SHA-256 of a secret.
pub fn digest(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// The secret of the request's one `Authorization: Bearer` header (the
/// scheme in any case); `None` when there is none, another scheme, or
/// more than one `Authorization` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let mut all = headers.get_all(header::AUTHORIZATION).iter();
    let value = all.next()?;
    if all.next().is_some() {
        return None;
    }
    let value = value.to_str().ok()?.trim();
    let (scheme, secret) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| secret.trim())
        .filter(|s| !s.is_empty())
}

/// A fresh secret for `portcullis token new`: 32 random bytes, base64url.
pub fn new_secret() -> String {
    crate::crypto::random_token()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str, secret: &str, expires: Option<u64>) -> Token {
        Token {
            name: name.into(),
            user: format!("{USER_PREFIX}{name}"),
            digest: digest(secret.as_bytes()),
            groups: None,
            expires,
        }
    }

    #[test]
    fn check_finds_the_token_and_its_expiry() {
        let tokens = Tokens::new(vec![
            token("ci", "s3cret-one", None),
            token("old", "s3cret-two", Some(1_000)),
        ]);
        assert!(matches!(tokens.check("s3cret-one", 5_000), Check::Valid(t) if t.name == "ci"));
        assert!(matches!(tokens.check("s3cret-two", 999), Check::Valid(t) if t.name == "old"));
        assert!(matches!(tokens.check("s3cret-two", 1_000), Check::Expired(t) if t.name == "old"));
        assert!(matches!(tokens.check("s3cret-on", 0), Check::Unknown));
        assert!(matches!(tokens.check("", 0), Check::Unknown));
    }

    #[test]
    fn bearer_reads_one_header() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "bearer   abc ".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic YTpi".parse().unwrap());
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer a".parse().unwrap());
        h.append(header::AUTHORIZATION, "Bearer b".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn secrets_are_256_bits() {
        let s = new_secret();
        assert_eq!(crate::crypto::unb64(&s).map(|b| b.len()), Some(32));
        assert_ne!(s, new_secret());
    }
}
