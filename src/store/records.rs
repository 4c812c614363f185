//! The stored values, [`Attempt`] and [`SessionRecord`], and their JSON
//! encoding; a value that does not decode is [`StoreError::Corrupt`],
//! with a message that never quotes it.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::StoreError;

/// One pending sign-in: what was asked for, stored under the HMAC of the
/// emailed link's token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Normalised address.
    pub email: String,
    /// Checked redirect target.
    pub rd: String,
    /// Hex HMAC of the short code.
    pub code_hash: String,
    /// Hex HMAC of the verifier cookie of the asking browser.
    pub browser: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Browser family of the asking request ("Firefox on Windows", at most
    /// 64 bytes), shown to another browser with the code.
    #[serde(default)]
    pub asked_agent: String,
    /// The asking client's IP as the gateway saw it, shown likewise.
    #[serde(default)]
    pub asked_ip: String,
}

/// One signed-in session, stored under the HMAC of the session cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub email: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Absolute end, unix seconds.
    pub expires_at: u64,
    /// How the session was signed in: `link`, `code`, or `oidc:NAME` /
    /// `github:NAME` for a `[[provider]]`. Absent in records written
    /// before it existed (read as unknown), and then not written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<String>,
}

pub(super) fn encode<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Corrupt(format!("{what}: {:?}", e.classify())))
}

/// Decodes a stored value. The error names the category and position only:
/// serde messages can quote the offending value, which holds an address.
pub(super) fn decode<T: DeserializeOwned>(what: &str, raw: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| {
        StoreError::Corrupt(format!(
            "{what}: {:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_records_without_amr_still_read() {
        // Written before `amr` existed: reads, and writes back unchanged.
        let old = r#"{"email":"a@example.com","created_at":1,"expires_at":2}"#;
        let r = decode::<SessionRecord>("session", old).unwrap();
        assert_eq!(r.amr, None);
        assert_eq!(serde_json::to_string(&r).unwrap(), old);
        let new = SessionRecord {
            amr: Some("oidc:google".into()),
            ..r
        };
        let text = serde_json::to_string(&new).unwrap();
        assert!(text.ends_with(r#""amr":"oidc:google"}"#), "{text}");
        assert_eq!(decode::<SessionRecord>("session", &text).unwrap(), new);
    }

    #[test]
    fn decode_error_does_not_quote_the_value() {
        let err = decode::<SessionRecord>(
            "session",
            r#"{"email":"secret@example.com","created_at":"x","expires_at":1}"#,
        )
        .unwrap_err();
        match err {
            StoreError::Corrupt(msg) => {
                assert!(!msg.contains("secret"), "{msg}");
                assert!(!msg.contains("\"x\""), "{msg}");
                assert!(msg.starts_with("session: Data error at line 1"), "{msg}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
