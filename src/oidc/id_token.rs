//! The ID token (a compact JWS, OpenID Connect Core §3.1.3.7), checked in
//! full before its address is believed:
//! - the signature, with `ring`, against the provider's JWKS: RS256/384/512,
//!   PS256/384/512, ES256, ES384 and EdDSA (Ed25519). `none` and the HMAC
//!   algorithms are refused; a key whose `alg` or `use` says otherwise is
//!   not used. An unknown `kid` is its own error, so the caller can fetch
//!   the keys again (rotation) and retry once.
//! - `iss` equal to the issuer of the discovery document (the configured
//!   one, a trailing `/` aside); `aud` containing the client id;
//!   `azp`, when present (and required with several audiences), the client
//!   id; `exp` in the future and `iat` not in the future, each with
//!   [`SKEW`]; `nbf` if present; `nonce` equal to the browser's.
//! - an `email` with `email_verified` true (Microsoft Entra: its
//!   `xms_edov` optional claim, "email domain owner verified", counts).
//!
//! Pure: no I/O, the time is an argument.

use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;

use crate::crypto;

/// Clock difference tolerated for `exp`, `iat` and `nbf`.
pub const SKEW: u64 = 60;

/// One key of a JWKS (only the fields used).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Jwk {
    pub kty: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
    #[serde(default)]
    pub crv: Option<String>,
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
}

/// A provider's keys.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct KeySet {
    pub keys: Vec<Jwk>,
}

impl KeySet {
    /// Parses a JWKS document, keeping the keys it can read (a key of an
    /// unknown type is skipped, not an error).
    pub fn parse(v: &Value) -> Option<KeySet> {
        let keys = v.get("keys")?.as_array()?;
        Some(KeySet {
            keys: keys
                .iter()
                .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
                .collect(),
        })
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// Why an ID token was refused (each is a distinct audit reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed ID token")]
    Malformed,
    #[error("ID token algorithm not accepted")]
    Algorithm,
    #[error("ID token signed by an unknown key")]
    UnknownKey,
    #[error("ID token signature does not verify")]
    Signature,
    #[error("ID token issuer is not the provider")]
    Issuer,
    #[error("ID token audience is not this client")]
    Audience,
    #[error("ID token authorized party is not this client")]
    AuthorizedParty,
    #[error("ID token expired")]
    Expired,
    #[error("ID token issued in the future or not yet valid")]
    NotYetValid,
    #[error("ID token nonce does not match")]
    Nonce,
    #[error("ID token carries no email")]
    NoEmail,
    #[error("email not verified by the provider")]
    EmailUnverified,
}

/// What the token must say.
pub struct Expect<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    /// Unix seconds.
    pub now: u64,
}

/// What a good token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub email: String,
    pub sub: String,
    /// Google's hosted domain, when sent.
    pub hd: Option<String>,
}

struct Parts {
    alg: String,
    kid: Option<String>,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
    claims: Value,
}

fn split(token: &str) -> Result<Parts, TokenError> {
    let mut it = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(TokenError::Malformed);
    };
    let header: Value = crypto::unb64(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenError::Malformed)?;
    let claims: Value = crypto::unb64(p)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenError::Malformed)?;
    if !claims.is_object() {
        return Err(TokenError::Malformed);
    }
    // A header that asks for more than this code knows is refused.
    if header.get("crit").is_some() {
        return Err(TokenError::Algorithm);
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(TokenError::Malformed)?
        .to_string();
    let kid = header.get("kid").and_then(Value::as_str).map(String::from);
    let signature = crypto::unb64(s).ok_or(TokenError::Malformed)?;
    Ok(Parts {
        alg,
        kid,
        signing_input: format!("{h}.{p}").into_bytes(),
        signature,
        claims,
    })
}

/// The key type an algorithm needs.
fn kty_for(alg: &str) -> Option<&'static str> {
    match alg {
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => Some("RSA"),
        "ES256" | "ES384" => Some("EC"),
        "EdDSA" => Some("OKP"),
        _ => None,
    }
}

fn verify_with(key: &Jwk, alg: &str, msg: &[u8], sig: &[u8]) -> bool {
    let b = |v: &Option<String>| v.as_deref().and_then(crypto::unb64);
    match alg {
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => {
            let (Some(n), Some(e)) = (b(&key.n), b(&key.e)) else {
                return false;
            };
            let params: &signature::RsaParameters = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
                _ => &signature::RSA_PSS_2048_8192_SHA512,
            };
            RsaPublicKeyComponents { n: &n, e: &e }
                .verify(params, msg, sig)
                .is_ok()
        }
        "ES256" | "ES384" => {
            let (crv, algo): (&str, &dyn signature::VerificationAlgorithm) = if alg == "ES256" {
                ("P-256", &signature::ECDSA_P256_SHA256_FIXED)
            } else {
                ("P-384", &signature::ECDSA_P384_SHA384_FIXED)
            };
            if key.crv.as_deref() != Some(crv) {
                return false;
            }
            let (Some(x), Some(y)) = (b(&key.x), b(&key.y)) else {
                return false;
            };
            let mut point = Vec::with_capacity(1 + x.len() + y.len());
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            UnparsedPublicKey::new(algo, point).verify(msg, sig).is_ok()
        }
        "EdDSA" => {
            if key.crv.as_deref() != Some("Ed25519") {
                return false;
            }
            let Some(x) = b(&key.x) else { return false };
            UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(msg, sig)
                .is_ok()
        }
        _ => false,
    }
}

/// The token's `kid`, if it has one and it is not in `keys` (the caller
/// then fetches the keys again before [`verify`]).
pub fn unknown_kid(token: &str, keys: &KeySet) -> Option<String> {
    let parts = split(token).ok()?;
    parts.kid.filter(|k| !keys.has_kid(k))
}

/// Checks `token` completely; see the module text.
pub fn verify(token: &str, keys: &KeySet, expect: &Expect<'_>) -> Result<Verified, TokenError> {
    let parts = split(token)?;
    let kty = kty_for(&parts.alg).ok_or(TokenError::Algorithm)?;
    let candidates: Vec<&Jwk> = keys
        .keys
        .iter()
        .filter(|k| k.kty == kty)
        .filter(|k| k.alg.as_deref().is_none_or(|a| a == parts.alg))
        .filter(|k| k.use_.as_deref().is_none_or(|u| u == "sig"))
        .filter(|k| match &parts.kid {
            Some(kid) => k.kid.as_deref() == Some(kid.as_str()),
            None => true,
        })
        .collect();
    if candidates.is_empty() {
        return Err(TokenError::UnknownKey);
    }
    if !candidates
        .iter()
        .any(|k| verify_with(k, &parts.alg, &parts.signing_input, &parts.signature))
    {
        return Err(TokenError::Signature);
    }
    check_claims(&parts.claims, expect)
}

fn check_claims(c: &Value, expect: &Expect<'_>) -> Result<Verified, TokenError> {
    let s = |k: &str| c.get(k).and_then(Value::as_str);
    let n = |k: &str| c.get(k).and_then(Value::as_u64);
    if s("iss") != Some(expect.issuer) {
        return Err(TokenError::Issuer);
    }
    let audiences: Vec<&str> = match c.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&expect.client_id) {
        return Err(TokenError::Audience);
    }
    match s("azp") {
        Some(azp) if azp != expect.client_id => return Err(TokenError::AuthorizedParty),
        None if audiences.len() > 1 => return Err(TokenError::AuthorizedParty),
        _ => {}
    }
    let exp = n("exp").ok_or(TokenError::Malformed)?;
    if exp.saturating_add(SKEW) <= expect.now {
        return Err(TokenError::Expired);
    }
    let iat = n("iat").ok_or(TokenError::Malformed)?;
    if iat > expect.now.saturating_add(SKEW) {
        return Err(TokenError::NotYetValid);
    }
    if n("nbf").is_some_and(|nbf| nbf > expect.now.saturating_add(SKEW)) {
        return Err(TokenError::NotYetValid);
    }
    match s("nonce") {
        Some(nonce) if crypto::ct_eq(nonce.as_bytes(), expect.nonce.as_bytes()) => {}
        _ => return Err(TokenError::Nonce),
    }
    let email = s("email")
        .filter(|e| !e.is_empty())
        .ok_or(TokenError::NoEmail)?;
    let truthy = |k: &str| match c.get(k) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(t)) => t == "true",
        _ => false,
    };
    if !truthy("email_verified") && !truthy("xms_edov") {
        return Err(TokenError::EmailUnverified);
    }
    Ok(Verified {
        email: email.to_string(),
        sub: s("sub").unwrap_or_default().to_string(),
        hd: s("hd").map(String::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    fn es256() -> (EcdsaKeyPair, Jwk) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let public = pair.public_key().as_ref();
        let jwk = Jwk {
            kty: "EC".into(),
            kid: Some("k1".into()),
            alg: Some("ES256".into()),
            use_: Some("sig".into()),
            n: None,
            e: None,
            crv: Some("P-256".into()),
            x: Some(crypto::b64(&public[1..33])),
            y: Some(crypto::b64(&public[33..65])),
        };
        (pair, jwk)
    }

    fn sign(pair: &EcdsaKeyPair, header: &Value, claims: &Value) -> String {
        let h = crypto::b64(header.to_string().as_bytes());
        let p = crypto::b64(claims.to_string().as_bytes());
        let input = format!("{h}.{p}");
        let sig = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", crypto::b64(sig.as_ref()))
    }

    fn claims() -> Value {
        serde_json::json!({
            "iss": "https://idp", "aud": "client", "exp": 2000, "iat": 1000,
            "nonce": "n1", "email": "a@example.com", "email_verified": true, "sub": "s"
        })
    }

    fn expect() -> Expect<'static> {
        Expect {
            issuer: "https://idp",
            client_id: "client",
            nonce: "n1",
            now: 1500,
        }
    }

    #[test]
    fn each_check() {
        let (pair, jwk) = es256();
        let keys = KeySet { keys: vec![jwk] };
        let header = serde_json::json!({"alg": "ES256", "kid": "k1"});
        let ok = sign(&pair, &header, &claims());
        assert_eq!(
            verify(&ok, &keys, &expect()).unwrap().email,
            "a@example.com"
        );

        let with = |k: &str, v: Value| {
            let mut c = claims();
            c[k] = v;
            verify(&sign(&pair, &header, &c), &keys, &expect())
        };
        assert_eq!(with("iss", "https://other".into()), Err(TokenError::Issuer));
        assert_eq!(with("aud", "other".into()), Err(TokenError::Audience));
        assert_eq!(
            with("aud", serde_json::json!(["client", "x"])),
            Err(TokenError::AuthorizedParty)
        );
        assert_eq!(with("azp", "x".into()), Err(TokenError::AuthorizedParty));
        assert_eq!(with("exp", 1400.into()), Err(TokenError::Expired));
        assert_eq!(with("iat", 1600.into()), Err(TokenError::NotYetValid));
        assert_eq!(with("nonce", "n2".into()), Err(TokenError::Nonce));
        assert_eq!(
            with("email_verified", false.into()),
            Err(TokenError::EmailUnverified)
        );
        // Within the skew.
        assert!(with("exp", 1450.into()).is_ok());

        // Another key, same kid: the signature fails.
        let (other, _) = es256();
        assert_eq!(
            verify(&sign(&other, &header, &claims()), &keys, &expect()),
            Err(TokenError::Signature)
        );
        // An unknown kid is its own error.
        let h2 = serde_json::json!({"alg": "ES256", "kid": "k2"});
        let t2 = sign(&pair, &h2, &claims());
        assert_eq!(unknown_kid(&t2, &keys).as_deref(), Some("k2"));
        assert_eq!(verify(&t2, &keys, &expect()), Err(TokenError::UnknownKey));
        // alg none and HMAC are refused; a tampered payload fails.
        let none = format!(
            "{}.{}.",
            crypto::b64(br#"{"alg":"none"}"#),
            crypto::b64(claims().to_string().as_bytes())
        );
        assert_eq!(verify(&none, &keys, &expect()), Err(TokenError::Algorithm));
        let mut parts: Vec<String> = ok.split('.').map(String::from).collect();
        let mut c = claims();
        c["email"] = "evil@example.com".into();
        parts[1] = crypto::b64(c.to_string().as_bytes());
        assert_eq!(
            verify(&parts.join("."), &keys, &expect()),
            Err(TokenError::Signature)
        );
    }
}
