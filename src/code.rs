//! The short sign-in code: 8 characters from an alphabet without
//! look-alikes (no 0/O, 1/I/L), written `XXXX-XXXX`, accepted in any case
//! with or without the dash. It is derived from the link's token with the
//! server key, so the link's landing page can show it while the store
//! keeps only a keyed hash of it.

use crate::crypto::Key;

const ALPHABET: &[u8; 32] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789#";
const LEN: usize = 8;

fn alphabet() -> &'static [u8] {
    // 31 symbols: the trailing '#' only pads the array to 32.
    &ALPHABET[..31]
}

/// The code for `token`, without the dash.
pub fn derive(key: &Key, token: &str) -> String {
    let tag = key.tag("code", token.as_bytes());
    let symbols = alphabet();
    let mut out = String::with_capacity(LEN);
    // Rejection sampling over the tag's bytes keeps every symbol equally
    // likely (31 does not divide 256).
    let mut bytes = tag.iter();
    while out.len() < LEN {
        let Some(&b) = bytes.next() else { break };
        if (b as usize) < 31 * 8 {
            out.push(symbols[(b as usize) % 31] as char);
        }
    }
    // 32 bytes with 248/256 acceptance leave 8 symbols in all but ~1e-30 of
    // cases; pad deterministically if it ever happens.
    while out.len() < LEN {
        out.push('A');
    }
    out
}

/// `ABCDEFGH` → `ABCD-EFGH`.
pub fn display(code: &str) -> String {
    match (code.get(..4), code.get(4..)) {
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => code.to_string(),
    }
}

/// What a person typed → the canonical code, or None when it cannot be one.
pub fn normalize(typed: &str) -> Option<String> {
    let cleaned: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let ok = cleaned.len() == LEN && cleaned.bytes().all(|b| alphabet().contains(&b));
    ok.then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_codes_are_canonical_and_stable() {
        let key = Key::new(b"0123456789abcdef0123456789abcdef");
        let c = derive(&key, "token-a");
        assert_eq!(c.len(), 8);
        assert_eq!(normalize(&c), Some(c.clone()));
        assert_eq!(derive(&key, "token-a"), c);
        assert_ne!(derive(&key, "token-b"), c);
        for look_alike in ['0', 'O', '1', 'I', 'L'] {
            assert!(!c.contains(look_alike));
        }
    }

    #[test]
    fn typing_variants() {
        assert_eq!(normalize("abcd-efgh"), Some("ABCDEFGH".into()));
        assert_eq!(normalize(" ABCD EFGH "), Some("ABCDEFGH".into()));
        assert_eq!(normalize("ABCDEFG"), None);
        assert_eq!(normalize("ABCD-EFG0"), None);
        assert_eq!(normalize("ABCD-EFGI"), None);
        assert_eq!(display("ABCDEFGH"), "ABCD-EFGH");
    }
}
