//! The server key and everything made with it: keyed hashes (HMAC-SHA256)
//! of tokens, codes, verifiers and session ids, and fresh random values.
//!
//! Each use passes a distinct `purpose` label, so a value made for one
//! purpose (say a CSRF token) can never stand in for another (a session
//! tag). Comparisons of secrets are constant-time (`subtle`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

type HmacSha256 = Hmac<Sha256>;

/// The server secret, prepared once for HMAC.
#[derive(Clone)]
pub struct Key {
    mac: HmacSha256,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    pub fn new(secret: &[u8]) -> Key {
        // HMAC accepts keys of any length; the error case cannot happen.
        let mac = match HmacSha256::new_from_slice(secret) {
            Ok(m) => m,
            Err(_) => HmacSha256::new(&Default::default()),
        };
        Key { mac }
    }

    /// A key from 32 fresh random bytes.
    pub fn random() -> Key {
        Key::new(&random_bytes::<32>())
    }

    /// HMAC-SHA256 over `purpose` and `data` (length-prefixed so that
    /// `("ab","c")` and `("a","bc")` differ).
    pub fn tag(&self, purpose: &str, data: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(&(purpose.len() as u32).to_be_bytes());
        mac.update(purpose.as_bytes());
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// A key of its own for one use (`label`), derived from this one: a
    /// value MAC'd with it can never pass for one made with the server
    /// key or another derived key (share links: `"share"`).
    pub fn derive(&self, label: &str) -> Key {
        Key::new(&self.tag("derive", label.as_bytes()))
    }

    /// The keyed hash as lowercase hex: what the store sees.
    pub fn hash_hex(&self, purpose: &str, data: &[u8]) -> String {
        hex(&self.tag(purpose, data))
    }
}

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    rand::fill(&mut buf);
    buf
}

/// 32 random bytes (256 bits) as base64url without padding.
pub fn random_token() -> String {
    b64(&random_bytes::<32>())
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// The 6-bit value of each base64url character; 64 for every other byte.
static B64URL: [u8; 256] = {
    let mut table = [64u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        table[i] = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => 64,
        };
        i += 1;
    }
    table
};

/// Exactly 32 bytes from their 43-character base64url form, without an
/// allocation or the general decoder (the session cookie's hot path: a
/// table lookup per character). Non-canonical encodings (stray trailing
/// bits) are refused, as by [`unb64`]; a test holds the two to the same
/// answers.
pub fn unb64_32(text: &str) -> Option<[u8; 32]> {
    let text = text.as_bytes();
    if text.len() != 43 {
        return None;
    }
    let mut out = [0u8; 32];
    // Any character outside the alphabet sets bit 6 here.
    let mut bad = 0u8;
    // Ten groups of four characters make 30 bytes...
    for (chars, bytes) in text[..40].chunks_exact(4).zip(out.chunks_exact_mut(3)) {
        let mut n = 0u32;
        for &c in chars {
            let v = B64URL[usize::from(c)];
            bad |= v;
            n = n << 6 | u32::from(v & 63);
        }
        bytes.copy_from_slice(&n.to_be_bytes()[1..]);
    }
    // ...and the last three, 18 bits, make two more and two zero bits.
    let mut n = 0u32;
    for &c in &text[40..] {
        let v = B64URL[usize::from(c)];
        bad |= v;
        n = n << 6 | u32::from(v & 63);
    }
    if bad & 64 != 0 || n & 3 != 0 {
        return None;
    }
    out[30..].copy_from_slice(&((n >> 2) as u16).to_be_bytes());
    Some(out)
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Hashes a session tag by its first eight bytes. Tags are HMAC outputs:
/// nobody without the server key can choose them, so they need no keyed
/// (SipHash) hashing, and only verified tags are ever used as keys (the
/// session cache, the assertion's token cache).
#[derive(Default)]
pub struct TagHasher(u64);

impl Hasher for TagHasher {
    fn write(&mut self, bytes: &[u8]) {
        // `[u8; 32]` hashes as its length, then its bytes.
        if let Some(head) = bytes.get(..8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(head);
            self.0 ^= u64::from_le_bytes(b);
        }
    }

    fn write_usize(&mut self, _len: usize) {}

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by session tags, hashed by [`TagHasher`].
pub type TagMap<V> = HashMap<[u8; 32], V, BuildHasherDefault<TagHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_separate_tags() {
        let k = Key::new(b"0123456789abcdef0123456789abcdef");
        assert_ne!(k.tag("a", b"bc"), k.tag("ab", b"c"));
        assert_ne!(k.tag("session", b"x"), k.tag("csrf", b"x"));
        assert_eq!(k.tag("x", b"y"), k.tag("x", b"y"));
        let other = Key::new(b"another key another key another k");
        assert_ne!(k.tag("x", b"y"), other.tag("x", b"y"));
    }

    /// The table decoder answers as the general one does: for random
    /// values, and for every ASCII character at every position.
    #[test]
    fn unb64_32_agrees_with_the_general_decoder() {
        for _ in 0..2000 {
            let t = random_token();
            assert_eq!(unb64_32(&t).map(|v| v.to_vec()), unb64(&t), "{t}");
        }
        let base = random_token();
        for pos in 0..43 {
            for c in 0u8..128 {
                let mut t = base.clone().into_bytes();
                t[pos] = c;
                let t = String::from_utf8(t).unwrap();
                let general = unb64(&t).filter(|v| v.len() == 32);
                assert_eq!(unb64_32(&t).map(|v| v.to_vec()), general, "{t:?}");
            }
        }
        // A character of more than one byte: wrong length either way.
        let long = format!("{}é", &base[..41]);
        assert_eq!(unb64_32(&long), None);
    }

    #[test]
    fn tokens_are_256_bits_and_differ() {
        let a = random_token();
        let b = random_token();
        assert_eq!(unb64(&a).map(|v| v.len()), Some(32));
        assert_eq!(unb64_32(&a).map(|v| v.to_vec()), unb64(&a));
        assert_eq!(unb64_32(&a[..42]), None);
        assert_eq!(unb64_32(&format!("{a}A")), None);
        assert_ne!(a, b);
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
