//! What is known about each configured provider: its discovery document
//! (endpoints) and its keys (JWKS), fetched at start, refreshed every
//! [`REFRESH`], and fetched again when an ID token names a `kid` that is not
//! known (key rotation), at most once per [`KID_REFETCH_GAP`] per provider
//! (tokens with made-up `kid`s cannot make the gateway hammer the provider).
//!
//! A provider that does not answer affects only itself: its entry stays
//! empty (or keeps what it had), its button leads to a page that says it is
//! not available, and the next use tries again. GitHub has no discovery:
//! its endpoints are the configured ones.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::fetch::{Call, Client, FetchError};
use super::id_token::KeySet;
use crate::config::{provider_url, ProviderConfig, ProviderKind};

/// How often discovery and keys are fetched again in the background.
pub const REFRESH: Duration = Duration::from_secs(3600);
/// The shortest time between two fetches of the keys for an unknown `kid`.
pub const KID_REFETCH_GAP: Duration = Duration::from_secs(10);
/// How long a failed fetch is remembered before a click tries again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The endpoints of one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The discovery document's `issuer`, which ID tokens' `iss` must
    /// equal exactly (it may end in `/` where the configured one does not).
    pub issuer: String,
    pub authorization: String,
    pub token: String,
    /// OIDC: the keys; GitHub: the API base.
    pub jwks_or_api: String,
    /// Whether the token endpoint takes HTTP Basic client credentials
    /// (else `client_secret_post`).
    pub basic_auth: bool,
}

/// Why a provider cannot be used now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("{0}")]
    Fetch(#[from] FetchError),
    #[error("discovery document: {0}")]
    Discovery(String),
    #[error("the key set (JWKS) cannot be read")]
    Keys,
}

#[derive(Default)]
struct Entry {
    endpoints: Option<Arc<Endpoints>>,
    keys: Option<Arc<KeySet>>,
    fetched: Option<Instant>,
    failed: Option<(Instant, ProviderError)>,
    kid_refetch: Option<Instant>,
}

/// The shared cache, keyed by provider name and issuer (a reload that
/// changes the issuer starts afresh).
pub struct Registry {
    client: Client,
    entries: Mutex<HashMap<String, Entry>>,
}

fn cache_key(p: &ProviderConfig) -> String {
    match &p.kind {
        ProviderKind::Oidc { issuer } => format!("{} {issuer}", p.name),
        ProviderKind::Github { token_url, .. } => format!("{} {token_url}", p.name),
    }
}

impl Registry {
    pub fn new(client: Client) -> Registry {
        Registry {
            client,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn with<T>(&self, p: &ProviderConfig, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut map = match self.entries.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(map.entry(cache_key(p)).or_default())
    }

    /// Fetches discovery and keys now; returns what failed, if anything.
    pub async fn refresh(&self, p: &ProviderConfig) -> Result<(), ProviderError> {
        let result = self.fetch(p).await;
        self.with(p, |e| match &result {
            Ok((endpoints, keys)) => {
                e.endpoints = Some(Arc::new(endpoints.clone()));
                if let Some(k) = keys {
                    e.keys = Some(Arc::new(k.clone()));
                }
                e.fetched = Some(Instant::now());
                e.failed = None;
            }
            Err(err) => e.failed = Some((Instant::now(), err.clone())),
        });
        result.map(|_| ())
    }

    async fn fetch(
        &self,
        p: &ProviderConfig,
    ) -> Result<(Endpoints, Option<KeySet>), ProviderError> {
        match &p.kind {
            ProviderKind::Github {
                authorize_url,
                token_url,
                api_url,
            } => Ok((
                Endpoints {
                    issuer: String::new(),
                    authorization: authorize_url.clone(),
                    token: token_url.clone(),
                    jwks_or_api: api_url.clone(),
                    basic_auth: false,
                },
                None,
            )),
            ProviderKind::Oidc { issuer } => {
                let doc = self
                    .client
                    .json(
                        &format!("{issuer}/.well-known/openid-configuration"),
                        Call::Get { bearer: None },
                    )
                    .await?;
                let endpoints = endpoints_from(&doc, issuer)?;
                let keys = self.fetch_keys(&endpoints.jwks_or_api).await?;
                Ok((endpoints, Some(keys)))
            }
        }
    }

    async fn fetch_keys(&self, jwks_uri: &str) -> Result<KeySet, ProviderError> {
        let doc = self
            .client
            .json(jwks_uri, Call::Get { bearer: None })
            .await?;
        KeySet::parse(&doc).ok_or(ProviderError::Keys)
    }

    /// The provider's endpoints: cached, or fetched now (a failure is
    /// remembered for a few seconds, so a down provider is not asked on
    /// every click).
    pub async fn endpoints(&self, p: &ProviderConfig) -> Result<Arc<Endpoints>, ProviderError> {
        let cached = self.with(p, |e| {
            if let Some(ep) = &e.endpoints {
                return Some(Ok(Arc::clone(ep)));
            }
            match &e.failed {
                Some((at, err)) if at.elapsed() < RETRY_AFTER => Some(Err(err.clone())),
                _ => None,
            }
        });
        if let Some(c) = cached {
            return c;
        }
        self.refresh(p).await?;
        self.with(p, |e| e.endpoints.clone())
            .ok_or(ProviderError::Keys)
    }

    /// The provider's keys; with `unknown_kid`, fetched again first unless
    /// that was done less than [`KID_REFETCH_GAP`] ago.
    pub async fn keys(
        &self,
        p: &ProviderConfig,
        unknown_kid: bool,
    ) -> Result<Arc<KeySet>, ProviderError> {
        let endpoints = self.endpoints(p).await?;
        let (cached, refetch) = self.with(p, |e| {
            let may = e
                .kid_refetch
                .is_none_or(|at| at.elapsed() >= KID_REFETCH_GAP);
            let refetch = unknown_kid && may || e.keys.is_none();
            if refetch && unknown_kid {
                e.kid_refetch = Some(Instant::now());
            }
            (e.keys.clone(), refetch)
        });
        if !refetch {
            return cached.ok_or(ProviderError::Keys);
        }
        match self.fetch_keys(&endpoints.jwks_or_api).await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                self.with(p, |e| e.keys = Some(Arc::clone(&keys)));
                Ok(keys)
            }
            Err(err) => cached.ok_or(err),
        }
    }

    /// Whether the entry is older than [`REFRESH`], missing, or failed.
    pub fn stale(&self, p: &ProviderConfig) -> bool {
        self.with(p, |e| {
            e.failed.is_some() || e.fetched.is_none_or(|at| at.elapsed() >= REFRESH)
        })
    }
}

/// How often the background task looks for stale or failed providers.
const TICK: Duration = Duration::from_secs(30);

/// At start and then every [`TICK`]: fetches discovery and keys for each
/// configured provider whose entry is missing, failed or older than
/// [`REFRESH`]. A failure is logged (naming the provider, never a secret)
/// and tried again on the next tick; other providers are not held up.
/// `current` gives the registry and the providers of the live
/// configuration, or `None` once the gateway is gone (the task ends).
pub fn spawn_refresh<F>(current: F)
where
    F: Fn() -> Option<(Arc<Registry>, Vec<ProviderConfig>)> + Send + 'static,
{
    tokio::spawn(async move {
        while let Some((registry, providers)) = current() {
            for (i, p) in providers.iter().enumerate() {
                if !registry.stale(p) {
                    continue;
                }
                match registry.refresh(p).await {
                    Ok(()) => tracing::debug!(provider = %p.name, "provider discovery and keys fetched"),
                    Err(e) => tracing::warn!(
                        "provider[{i}] ({}): not available: {e}; its button shows an error page until it answers",
                        p.name
                    ),
                }
            }
            drop(registry);
            tokio::time::sleep(TICK).await;
        }
    });
}

fn endpoints_from(doc: &serde_json::Value, issuer: &str) -> Result<Endpoints, ProviderError> {
    let s = |k: &str| doc.get(k).and_then(|v| v.as_str());
    // OpenID Connect Discovery §4.3: the document's issuer is the one asked.
    let said = s("issuer").unwrap_or_default();
    if said.trim_end_matches('/') != issuer {
        return Err(ProviderError::Discovery(format!(
            "issuer {said:?} is not the configured {issuer:?}"
        )));
    }
    let url = |k: &str| -> Result<String, ProviderError> {
        let v = s(k).ok_or_else(|| ProviderError::Discovery(format!("no {k}")))?;
        provider_url(v).map_err(|m| ProviderError::Discovery(format!("{k}: {m}")))?;
        Ok(v.to_string())
    };
    let methods: Vec<&str> = doc
        .get("token_endpoint_auth_methods_supported")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|m| m.as_str()).collect())
        .unwrap_or_default();
    Ok(Endpoints {
        issuer: said.to_string(),
        authorization: url("authorization_endpoint")?,
        token: url("token_endpoint")?,
        jwks_or_api: url("jwks_uri")?,
        // The default is client_secret_basic (Discovery §3).
        basic_auth: methods.is_empty() || methods.contains(&"client_secret_basic"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_document() {
        let doc = serde_json::json!({
            "issuer": "https://idp.example.com",
            "authorization_endpoint": "https://idp.example.com/auth",
            "token_endpoint": "https://idp.example.com/token",
            "jwks_uri": "https://idp.example.com/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post"]
        });
        let e = endpoints_from(&doc, "https://idp.example.com").unwrap();
        assert_eq!(e.token, "https://idp.example.com/token");
        assert_eq!(e.issuer, "https://idp.example.com");
        // Auth0 and others end their issuer in '/': tokens say it so.
        let mut slash = doc.clone();
        slash["issuer"] = "https://idp.example.com/".into();
        assert_eq!(
            endpoints_from(&slash, "https://idp.example.com")
                .unwrap()
                .issuer,
            "https://idp.example.com/"
        );
        assert!(!e.basic_auth);
        assert!(matches!(
            endpoints_from(&doc, "https://other.example.com"),
            Err(ProviderError::Discovery(_))
        ));
        let mut plain = doc.clone();
        plain["token_endpoint"] = "http://idp.example.com/token".into();
        assert!(matches!(
            endpoints_from(&plain, "https://idp.example.com"),
            Err(ProviderError::Discovery(m)) if m.contains("token_endpoint")
        ));
    }
}
