//! `[[provider]]`: identity providers shown as buttons beside the email
//! form, each checked here into a [`ProviderConfig`]. Problems name the
//! entry and its key (`provider[0].issuer: ...`); the client secret is read
//! from `client_secret_env` or `client_secret_file` and never printed.
//!
//! URLs to a provider must be `https`, except on a loopback host
//! (`127.0.0.0/8`, `::1`, `localhost`), where `http` is allowed for local
//! providers and tests. There is no key to allow plain HTTP elsewhere.

use std::collections::BTreeSet;

use super::error::Problems;
use super::raw::RawProvider;
use super::{Environment, Secret};

/// The scopes asked for when `scopes` is not set.
pub const DEFAULT_OIDC_SCOPES: &[&str] = &["openid", "email", "profile"];
/// GitHub: the profile and the addresses (to find the verified primary one).
pub const DEFAULT_GITHUB_SCOPES: &[&str] = &["read:user", "user:email"];

/// One `[[provider]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// Lower-case letters, digits and `-`; unique; in URLs and the audit log.
    pub name: String,
    /// The button text.
    pub label: String,
    pub kind: ProviderKind,
    pub client_id: String,
    pub client_secret: Secret,
    pub scopes: Vec<String>,
    /// When set, only addresses at these domains may sign in with this
    /// provider (and Google's `hd` claim, when sent, must be one of them).
    pub allowed_domains: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenID Connect: discovery at
    /// `{issuer}/.well-known/openid-configuration`, the ID token checked.
    Oidc { issuer: String },
    /// GitHub's OAuth2 (no OpenID): the verified primary address from
    /// `{api_url}/user/emails`.
    Github {
        authorize_url: String,
        token_url: String,
        api_url: String,
    },
}

impl ProviderKind {
    /// `oidc` or `github`, as in the file.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProviderKind::Oidc { .. } => "oidc",
            ProviderKind::Github { .. } => "github",
        }
    }
}

/// Whether `host` is a loopback name or address (plain HTTP is allowed).
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") {
        return true;
    }
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Checks a provider URL: absolute, `https` (or `http` on loopback), no
/// credentials and no fragment. Returns it as written, without a trailing `/`.
pub fn provider_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    let host = url.host_str().unwrap_or("");
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(host) => {}
        "http" => {
            return Err(format!(
                "{text:?} must be https (plain http only for a loopback host)"
            ))
        }
        other => return Err(format!("{text:?}: scheme {other:?} is not https")),
    }
    if host.is_empty() {
        return Err(format!("{text:?} has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{text:?} must not carry credentials"));
    }
    if url.fragment().is_some() {
        return Err(format!("{text:?} must not have a fragment"));
    }
    Ok(text.trim_end_matches('/').to_string())
}

pub(super) fn providers(
    raw: Vec<RawProvider>,
    env: &dyn Environment,
    p: &mut Problems,
) -> Vec<ProviderConfig> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let key = |k: &str| format!("provider[{i}].{k}");
        if let Some(c) = provider(r, &key, env, p) {
            if !seen.insert(c.name.clone()) {
                p.add(key("name"), format!("{:?} is used twice", c.name));
                continue;
            }
            out.push(c);
        }
    }
    out
}

fn provider(
    r: RawProvider,
    key: &dyn Fn(&str) -> String,
    env: &dyn Environment,
    p: &mut Problems,
) -> Option<ProviderConfig> {
    let RawProvider {
        name,
        label,
        kind,
        issuer,
        client_id,
        client_secret_env,
        client_secret_file,
        scopes,
        allowed_domains,
        authorize_url,
        token_url,
        api_url,
    } = r;
    let name = match name {
        Some(n)
            if !n.is_empty()
                && n.len() <= 32
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
        {
            Some(n)
        }
        Some(n) => {
            p.add(
                key("name"),
                format!("{n:?}: use 1 to 32 lower-case letters, digits and '-'"),
            );
            None
        }
        None => {
            p.add(key("name"), "is required");
            None
        }
    };
    let url_key = |p: &mut Problems, k: &str, v: Option<String>, default: Option<&str>| match v
        .or(default.map(String::from))
    {
        Some(text) => p.check(&key(k), provider_url(&text)),
        None => {
            p.add(key(k), "is required");
            None
        }
    };
    let kind = match kind.as_deref().unwrap_or("oidc") {
        "oidc" => {
            let issuer = url_key(p, "issuer", issuer, None);
            for (k, v) in [
                ("authorize_url", &authorize_url),
                ("token_url", &token_url),
                ("api_url", &api_url),
            ] {
                if v.is_some() {
                    p.add(
                        key(k),
                        "is for kind = \"github\" (OpenID endpoints come from discovery)",
                    );
                }
            }
            issuer.map(|issuer| ProviderKind::Oidc { issuer })
        }
        "github" => {
            if issuer.is_some() {
                p.add(
                    key("issuer"),
                    "is for kind = \"oidc\" (GitHub has authorize_url, token_url and api_url)",
                );
            }
            let authorize_url = url_key(
                p,
                "authorize_url",
                authorize_url,
                Some("https://github.com/login/oauth/authorize"),
            );
            let token_url = url_key(
                p,
                "token_url",
                token_url,
                Some("https://github.com/login/oauth/access_token"),
            );
            let api_url = url_key(p, "api_url", api_url, Some("https://api.github.com"));
            match (authorize_url, token_url, api_url) {
                (Some(authorize_url), Some(token_url), Some(api_url)) => {
                    Some(ProviderKind::Github {
                        authorize_url,
                        token_url,
                        api_url,
                    })
                }
                _ => None,
            }
        }
        other => {
            p.add(
                key("kind"),
                format!("{other:?} is not a kind (oidc or github)"),
            );
            None
        }
    };
    let client_id = match client_id {
        Some(c) if !c.trim().is_empty() => Some(c.trim().to_string()),
        _ => {
            p.add(key("client_id"), "is required");
            None
        }
    };
    let secret = super::convert::secret_from(
        p,
        &key("client_secret_env"),
        &key("client_secret_file"),
        client_secret_env,
        client_secret_file,
        env,
    );
    let client_secret = match secret {
        Some(Some(s)) => Some(s),
        Some(None) => {
            p.add(
                key("client_secret_env"),
                "set client_secret_env or client_secret_file",
            );
            None
        }
        None => None,
    };
    let is_oidc = matches!(kind, Some(ProviderKind::Oidc { .. }));
    let scopes = match scopes {
        Some(s) if s.is_empty() => {
            p.add(key("scopes"), "is empty (leave it out for the default)");
            Vec::new()
        }
        Some(s) => {
            if let Some(bad) = s
                .iter()
                .find(|x| x.is_empty() || x.bytes().any(|b| b <= b' ' || b == b'"' || b == b'\\'))
            {
                p.add(key("scopes"), format!("{bad:?} is not a scope"));
            }
            if is_oidc && !s.iter().any(|x| x == "openid") {
                p.add(key("scopes"), "must include \"openid\"");
            }
            s
        }
        None if is_oidc => DEFAULT_OIDC_SCOPES.iter().map(|s| s.to_string()).collect(),
        None => DEFAULT_GITHUB_SCOPES
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let mut domains = Vec::new();
    for d in allowed_domains.unwrap_or_default() {
        let lower = d.trim().trim_start_matches('@').to_ascii_lowercase();
        if lower.is_empty() || lower.contains('@') || lower.contains(char::is_whitespace) {
            p.add(key("allowed_domains"), format!("{d:?} is not a domain"));
        } else {
            domains.push(lower);
        }
    }
    let name = name?;
    let label = match label {
        Some(l) if l.trim().is_empty() => {
            p.add(key("label"), "is empty");
            return None;
        }
        Some(l) => l,
        None => {
            let mut chars = name.chars();
            let capital: String = chars
                .next()
                .map(|c| c.to_ascii_uppercase())
                .into_iter()
                .chain(chars)
                .collect();
            format!("Sign in with {capital}")
        }
    };
    Some(ProviderConfig {
        name,
        label,
        kind: kind?,
        client_id: client_id?,
        client_secret: client_secret?,
        scopes,
        allowed_domains: domains,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            provider_url("https://accounts.google.com/").unwrap(),
            "https://accounts.google.com"
        );
        assert!(provider_url("http://127.0.0.1:9000").is_ok());
        assert!(provider_url("http://[::1]:9000/x").is_ok());
        assert!(provider_url("http://localhost:9000").is_ok());
        assert!(provider_url("http://idp.example.com")
            .unwrap_err()
            .contains("must be https"));
        assert!(provider_url("https://u:p@idp.example.com").is_err());
        assert!(provider_url("ftp://idp.example.com").is_err());
    }
}
