//! The callback's work with the provider: the code (with the PKCE
//! verifier) for tokens at the token endpoint, then a verified address:
//! from the ID token for OpenID Connect (checked by [`super::id_token`],
//! with one key refetch for an unknown `kid`), or for GitHub the primary
//! address its API marks verified (`GET {api_url}/user/emails`).

use super::fetch::{Call, FetchError};
use super::id_token::{self, Expect, TokenError};
use super::registry::{ProviderError, Registry};
use crate::config::{ProviderConfig, ProviderKind};

/// What the provider vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identified {
    /// As the provider wrote it (not yet normalised).
    pub email: String,
    /// Google's hosted domain, when sent.
    pub hd: Option<String>,
}

/// Why no address came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifyError {
    #[error("provider unavailable: {0}")]
    Provider(#[from] ProviderError),
    #[error("token request refused: {0}")]
    Token(FetchError),
    #[error("the token answer has no {0}")]
    Incomplete(&'static str),
    #[error("{0}")]
    IdToken(#[from] TokenError),
    #[error("no verified primary email at GitHub")]
    NoVerifiedEmail,
    #[error("GitHub API: {0}")]
    Api(FetchError),
}

/// What the callback knows of the flow it finishes.
pub struct Flow<'a> {
    pub code: &'a str,
    pub redirect_uri: &'a str,
    pub pkce_verifier: &'a str,
    pub nonce: &'a str,
    /// Unix seconds.
    pub now: u64,
}

/// Exchanges the code and returns the verified address.
pub async fn identify(
    registry: &Registry,
    p: &ProviderConfig,
    flow: &Flow<'_>,
) -> Result<Identified, IdentifyError> {
    let endpoints = registry.endpoints(p).await?;
    let secret = p.client_secret.expose();
    let secret_text = String::from_utf8_lossy(secret);
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", "authorization_code"),
        ("code", flow.code),
        ("redirect_uri", flow.redirect_uri),
        ("code_verifier", flow.pkce_verifier),
    ];
    let basic = if endpoints.basic_auth {
        Some((p.client_id.as_str(), secret))
    } else {
        form.push(("client_id", &p.client_id));
        form.push(("client_secret", &secret_text));
        None
    };
    let answer = registry
        .client()
        .json(&endpoints.token, Call::PostForm { form: &form, basic })
        .await
        .map_err(IdentifyError::Token)?;
    match &p.kind {
        ProviderKind::Oidc { .. } => {
            let token = answer
                .get("id_token")
                .and_then(|v| v.as_str())
                .ok_or(IdentifyError::Incomplete("id_token"))?;
            let expect = Expect {
                issuer: &endpoints.issuer,
                client_id: &p.client_id,
                nonce: flow.nonce,
                now: flow.now,
            };
            let mut keys = registry.keys(p, false).await?;
            if id_token::unknown_kid(token, &keys).is_some() {
                keys = registry.keys(p, true).await?;
            }
            let v = id_token::verify(token, &keys, &expect)?;
            Ok(Identified {
                email: v.email,
                hd: v.hd,
            })
        }
        ProviderKind::Github { .. } => {
            // GitHub answers errors to this call with 200 and an `error`.
            if answer.get("error").is_some() {
                return Err(IdentifyError::Incomplete("access_token"));
            }
            let token = answer
                .get("access_token")
                .and_then(|v| v.as_str())
                .ok_or(IdentifyError::Incomplete("access_token"))?;
            let emails = registry
                .client()
                .json(
                    &format!("{}/user/emails", endpoints.jwks_or_api),
                    Call::Get {
                        bearer: Some(token),
                    },
                )
                .await
                .map_err(IdentifyError::Api)?;
            github_primary(&emails)
                .map(|email| Identified { email, hd: None })
                .ok_or(IdentifyError::NoVerifiedEmail)
        }
    }
}

/// The address marked both `primary` and `verified` in GitHub's list.
fn github_primary(list: &serde_json::Value) -> Option<String> {
    list.as_array()?
        .iter()
        .find(|e| {
            e.get("primary").and_then(|v| v.as_bool()) == Some(true)
                && e.get("verified").and_then(|v| v.as_bool()) == Some(true)
        })
        .and_then(|e| e.get("email"))
        .and_then(|v| v.as_str())
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_primary_must_be_verified() {
        let list = serde_json::json!([
            {"email": "old@example.com", "primary": false, "verified": true},
            {"email": "me@example.com", "primary": true, "verified": false}
        ]);
        assert_eq!(github_primary(&list), None);
        let list = serde_json::json!([
            {"email": "x@example.com", "primary": false, "verified": true},
            {"email": "me@example.com", "primary": true, "verified": true}
        ]);
        assert_eq!(github_primary(&list).as_deref(), Some("me@example.com"));
    }
}
