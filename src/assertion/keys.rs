//! Signing keys for the identity assertion: PKCS#8 PEM files read into
//! `ring` key pairs (ECDSA P-256 for ES256, Ed25519 for EdDSA), each with
//! its public JWK and its `kid` (the RFC 7638 thumbprint), new keys made
//! for `portcullis keys generate`, and the JWKS document of a key list.
//!
//! Only PKCS#8 (`-----BEGIN PRIVATE KEY-----`) is read; every other key
//! file gets a message that says what it is and how to convert it (an RSA
//! key, a SEC1 `EC PRIVATE KEY`, an encrypted key, a public key or a
//! certificate). The algorithm is read from the key itself.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use sha2::{Digest, Sha256};

/// The JWS algorithms a key can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256 (the default, as Pomerium's).
    Es256,
    /// Ed25519.
    EdDsa,
}

impl Algorithm {
    /// The JWS `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// `ES256` or `EdDSA`, in any case.
    pub fn parse(text: &str) -> Option<Algorithm> {
        match text.to_ascii_lowercase().as_str() {
            "es256" => Some(Algorithm::Es256),
            "eddsa" | "ed25519" => Some(Algorithm::EdDsa),
            _ => None,
        }
    }
}

enum Pair {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

struct Inner {
    pair: Pair,
    kid: String,
    /// The public JWK, with `kid`, `alg` and `use`.
    jwk: serde_json::Value,
    /// `base64url({"alg":…,"kid":…,"typ":"JWT"})`: the token header.
    header_b64: String,
}

/// One private key, ready to sign. Cheap to clone; `Debug` shows the
/// algorithm and `kid` only.
#[derive(Clone)]
pub struct SigningKey(Arc<Inner>);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningKey({} kid={})",
            self.algorithm().name(),
            self.0.kid
        )
    }
}

impl PartialEq for SigningKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.kid == other.0.kid
    }
}

const RSA_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const EC_PUBLIC_KEY_OID: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const P256_OID: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The DER inside the first PEM block of `text`, with its label.
fn pem(text: &str) -> Result<(String, Vec<u8>), String> {
    let start = text
        .find("-----BEGIN ")
        .ok_or("not a PEM file (no \"-----BEGIN PRIVATE KEY-----\" line)")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let (label, rest) = rest
        .split_once("-----")
        .ok_or("not a PEM file (a broken BEGIN line)")?;
    let end = format!("-----END {label}-----");
    let (body, _) = rest
        .split_once(&end)
        .ok_or_else(|| format!("not a PEM file (no {end:?} line)"))?;
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = STANDARD
        .decode(b64)
        .map_err(|_| "not a PEM file (its base64 does not decode)".to_string())?;
    Ok((label.to_string(), der))
}

const CONVERT: &str = "make one with `portcullis keys generate`";

/// Reads one PKCS#8 PEM private key (P-256 or Ed25519). The message of
/// an error says what the file holds instead.
pub fn parse_pem(text: &str) -> Result<SigningKey, String> {
    let (label, der) = pem(text)?;
    match label.as_str() {
        "PRIVATE KEY" => {}
        "RSA PRIVATE KEY" => {
            return Err(format!(
            "an RSA key; only EC P-256 (ES256) and Ed25519 (EdDSA) keys sign assertions: {CONVERT}"
        ))
        }
        "EC PRIVATE KEY" => return Err(
            "a SEC1 EC key, not PKCS#8: convert it with `openssl pkcs8 -topk8 -nocrypt -in KEY`"
                .into(),
        ),
        "ENCRYPTED PRIVATE KEY" => {
            return Err("an encrypted key: decrypt it with `openssl pkcs8 -nocrypt -in KEY`".into())
        }
        other => {
            return Err(format!(
                "holds a {other:?}, not a private key (\"-----BEGIN PRIVATE KEY-----\")"
            ))
        }
    }
    if contains(&der, RSA_OID) {
        return Err(format!(
            "an RSA key; only EC P-256 (ES256) and Ed25519 (EdDSA) keys sign assertions: {CONVERT}"
        ));
    }
    if contains(&der, ED25519_OID) {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|e| format!("not a valid Ed25519 PKCS#8 key ({e})"))?;
        return Ok(SigningKey::new(Pair::EdDsa(pair)));
    }
    if contains(&der, EC_PUBLIC_KEY_OID) {
        if !contains(&der, P256_OID) {
            return Err(format!(
                "an EC key on another curve; ES256 needs P-256: {CONVERT}"
            ));
        }
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &SystemRandom::new())
                .map_err(|e| format!("not a valid P-256 PKCS#8 key ({e})"))?;
        return Ok(SigningKey::new(Pair::Es256(pair)));
    }
    Err(format!("not a P-256 or Ed25519 PKCS#8 key: {CONVERT}"))
}

/// A new private key as PKCS#8 PEM.
pub fn generate(algorithm: Algorithm) -> Result<String, String> {
    let rng = SystemRandom::new();
    let doc = match algorithm {
        Algorithm::Es256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng),
        Algorithm::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng),
    }
    .map_err(|_| "the system random source failed".to_string())?;
    let b64 = STANDARD.encode(doc.as_ref());
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    Ok(out)
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    fn new(pair: Pair) -> SigningKey {
        // RFC 7638: the required members, in lexicographic order, no
        // spaces; the SHA-256 of that, base64url, is the `kid`.
        let (canonical, alg) = match &pair {
            Pair::Es256(p) => {
                let point = p.public_key().as_ref();
                // Uncompressed: 0x04, then x and y.
                let coords = point.get(1..).unwrap_or_default();
                let (x, y) = coords.split_at(coords.len() / 2);
                (
                    format!(
                        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                        b64(x),
                        b64(y)
                    ),
                    Algorithm::Es256,
                )
            }
            Pair::EdDsa(p) => (
                format!(
                    r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                    b64(p.public_key().as_ref())
                ),
                Algorithm::EdDsa,
            ),
        };
        let kid = b64(&Sha256::digest(canonical.as_bytes()));
        let mut jwk: serde_json::Value =
            serde_json::from_str(&canonical).unwrap_or(serde_json::Value::Null);
        if let Some(map) = jwk.as_object_mut() {
            map.insert("kid".into(), kid.clone().into());
            map.insert("alg".into(), alg.name().into());
            map.insert("use".into(), "sig".into());
        }
        let header = serde_json::json!({"alg": alg.name(), "kid": kid, "typ": "JWT"});
        let header_b64 = b64(header.to_string().as_bytes());
        SigningKey(Arc::new(Inner {
            pair,
            kid,
            jwk,
            header_b64,
        }))
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.0.pair {
            Pair::Es256(_) => Algorithm::Es256,
            Pair::EdDsa(_) => Algorithm::EdDsa,
        }
    }

    /// The RFC 7638 thumbprint, the token header's `kid`.
    pub fn kid(&self) -> &str {
        &self.0.kid
    }

    /// The public key as a JWK (`kty`, `crv`, `x`, `y`, `kid`, `alg`, `use`).
    pub fn jwk(&self) -> &serde_json::Value {
        &self.0.jwk
    }

    /// A compact JWS of `claims` (JSON): `header.payload.signature`.
    pub fn sign(&self, claims: &[u8], rng: &SystemRandom) -> Option<String> {
        let mut out = String::with_capacity(self.0.header_b64.len() + claims.len() * 4 / 3 + 100);
        out.push_str(&self.0.header_b64);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(claims, &mut out);
        let signature = match &self.0.pair {
            Pair::Es256(p) => p.sign(rng, out.as_bytes()).ok()?,
            Pair::EdDsa(p) => p.sign(out.as_bytes()),
        };
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut out);
        Some(out)
    }
}

/// The JWKS document (`{"keys":[…]}`) of `keys`, in their order.
pub fn jwks(keys: &[SigningKey]) -> String {
    let keys: Vec<&serde_json::Value> = keys.iter().map(SigningKey::jwk).collect();
    serde_json::json!({ "keys": keys }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ED25519};

    fn verify(key: &SigningKey, token: &str) -> bool {
        let (signed, sig) = token.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        let jwk = key.jwk();
        let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
        match key.algorithm() {
            Algorithm::Es256 => {
                let mut point = vec![4u8];
                point.extend(x);
                point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .verify(signed.as_bytes(), &sig)
                    .is_ok()
            }
            Algorithm::EdDsa => UnparsedPublicKey::new(&ED25519, x)
                .verify(signed.as_bytes(), &sig)
                .is_ok(),
        }
    }

    #[test]
    fn generated_keys_read_back_and_sign() {
        let rng = SystemRandom::new();
        for alg in [Algorithm::Es256, Algorithm::EdDsa] {
            let pem = generate(alg).unwrap();
            let key = parse_pem(&pem).unwrap();
            assert_eq!(key.algorithm(), alg);
            assert_eq!(key.kid().len(), 43);
            assert_eq!(key.jwk()["kid"], key.kid());
            assert_eq!(key.jwk()["alg"], alg.name());
            let token = key.sign(br#"{"a":1}"#, &rng).unwrap();
            assert!(verify(&key, &token), "{alg:?}");
            let header = token.split('.').next().unwrap();
            let header: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
            assert_eq!(header["alg"], alg.name());
            assert_eq!(header["kid"], key.kid());
            assert_eq!(header["typ"], "JWT");
        }
    }

    #[test]
    fn the_thumbprint_is_rfc_7638() {
        // RFC 8037 appendix A.3: the Ed25519 example key's thumbprint.
        let canonical =
            r#"{"crv":"Ed25519","kty":"OKP","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        assert_eq!(
            b64(&Sha256::digest(canonical.as_bytes())),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn other_key_files_are_named() {
        let cases = [
            ("hello", "not a PEM file"),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
                "an RSA key",
            ),
            (
                "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
                "SEC1",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "not a private key",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "not a P-256 or Ed25519",
            ),
        ];
        for (text, want) in cases {
            let e = parse_pem(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
