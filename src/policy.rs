//! `portcullis policy`: which route a URL falls on, and what the one
//! authorization decision ([`crate::authorize`]) says about it for a given
//! address, method and client IP, with the reason in words (Authelia's
//! `access-control check-policy`). It reads the configuration only: no
//! store, no session; "signed in as E" is assumed when an address is
//! given.

use std::net::IpAddr;
use std::sync::Arc;

use http::Method;

use crate::authorize::{self, Decision};
use crate::config::{Config, Scheme};
use crate::routes::{Miss, RouteTable};
use crate::session::Identity;

/// What the gateway would do with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The route's name, when one serves the request.
    pub route: Option<String>,
    /// The decision's name: `allow`, `public`, `bypass`, `unauthenticated`,
    /// `forbidden`, `denied`, `no route`, `method not allowed`.
    pub decision: &'static str,
    /// The HTTP answer a browser navigation would get from the proxy path.
    pub status: u16,
    /// Why, in a sentence.
    pub reason: String,
    /// `X-Forwarded-Groups` the upstream would get (empty: none).
    pub groups: String,
}

impl Explanation {
    /// Whether the request reaches the upstream.
    pub fn passes(&self) -> bool {
        matches!(self.decision, "allow" | "public" | "bypass")
    }
}

/// Why a question cannot be asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("--url: {0}")]
    Url(String),
    #[error("--method: {0:?} is not an HTTP method")]
    Method(String),
    #[error("--email: {0:?} is not one email address")]
    Email(String),
}

/// The decision for `method url` from `ip`, signed in as `email` if given.
pub fn explain(
    config: &Config,
    url: &str,
    method: &str,
    email: Option<&str>,
    ip: IpAddr,
) -> Result<Explanation, PolicyError> {
    let parsed = url::Url::parse(url).map_err(|e| PolicyError::Url(e.to_string()))?;
    let scheme = match parsed.scheme() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        s => {
            return Err(PolicyError::Url(format!(
                "the scheme {s:?} is not http or https"
            )))
        }
    };
    let host = match (parsed.host_str(), parsed.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => return Err(PolicyError::Url("it has no host".into())),
    };
    let path = crate::path::normalize(parsed.path())
        .map_err(|e| PolicyError::Url(format!("the gateway answers 400 to this path ({e})")))?;
    let method =
        Method::from_bytes(method.as_bytes()).map_err(|_| PolicyError::Method(method.into()))?;
    let identity = match email {
        None => None,
        Some(e) => {
            let e = crate::address::parse(e).map_err(|_| PolicyError::Email(e.into()))?;
            Some(Identity {
                email: Arc::from(e.as_str()),
                tag: [0; 32],
                amr: None,
            })
        }
    };
    let table = RouteTable::new(&config.routes);
    let m = match table.find_for(&host, scheme, &method, &path) {
        Ok(m) => m,
        Err(Miss::NoRoute) => {
            return Ok(Explanation {
                route: None,
                decision: "no route",
                status: 404,
                reason: format!("no route serves host {host} and path {path}"),
                groups: String::new(),
            })
        }
        Err(Miss::Method) => {
            return Ok(Explanation {
                route: None,
                decision: "method not allowed",
                status: 405,
                reason: format!("routes serve {path}, but none takes {method}"),
                groups: String::new(),
            })
        }
    };
    let route = m.route.config.name.clone();
    let groups = identity
        .as_ref()
        .and_then(|i| config.groups.of(&i.email))
        .map(|g| g.header().to_string())
        .unwrap_or_default();
    let (decision, status, reason) = match authorize::authorize(
        config,
        &m,
        ip,
        identity.as_ref().map(authorize::Credential::Session),
    ) {
        Decision::Allow(None) => (
            "public",
            200,
            "the route is public: anyone passes, with no identity".to_string(),
        ),
        Decision::Allow(Some(i)) => (
            "allow",
            200,
            format!("{} passes the [login] allow lists and the route's", i.email),
        ),
        Decision::Bypass => (
            "bypass",
            200,
            format!(
                "{ip} is in the route's bypass_networks: it passes without a session or identity"
            ),
        ),
        Decision::Unauthenticated => (
            "unauthenticated",
            303,
            "a session is needed: a browser is sent to sign in (303), anything else gets 401"
                .to_string(),
        ),
        Decision::Forbidden(i) => (
            "forbidden",
            403,
            format!(
                "{} is signed in but not in the [login] allow lists or the route's",
                i.email
            ),
        ),
        Decision::Denied => (
            "denied",
            403,
            "the route has deny = true: 403 to everyone".to_string(),
        ),
        // Only a session is asked about here.
        Decision::AllowToken(t) | Decision::TokenForbidden(t) => {
            ("token", 200, format!("machine token {}", t.name))
        }
        Decision::AllowShare(g) => ("share", 200, format!("share link {}", g.id)),
    };
    Ok(Explanation {
        route: Some(route),
        decision,
        status,
        reason,
        groups: if decision == "allow" {
            groups
        } else {
            String::new()
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[session]
secret_env = "S"
[login]
allow_domains = ["example.com"]
[groups]
ops = ["ann@example.com"]
[[route]]
name = "app"
host = "app.example.com"
path = "/"
upstream = "demo"
[[route]]
name = "admin"
host = "app.example.com"
path = "/admin"
upstream = "demo"
allow_groups = ["ops"]
[[route]]
name = "feed"
host = "app.example.com"
path = "/feed"
upstream = "demo"
access = "public"
methods = ["GET"]
"#;

    fn ask(url: &str, method: &str, email: Option<&str>) -> Explanation {
        let env = [("S", "0123456789abcdef0123456789abcdef0123")];
        let config = Config::from_toml_str(CONFIG, "t.toml", &env).unwrap();
        explain(&config, url, method, email, "192.0.2.1".parse().unwrap()).unwrap()
    }

    #[test]
    fn each_decision_with_its_route_and_status() {
        let a = ask(
            "https://app.example.com/admin/x",
            "GET",
            Some("ann@example.com"),
        );
        assert_eq!(
            (a.route.as_deref(), a.decision, a.status),
            (Some("admin"), "allow", 200)
        );
        assert_eq!(a.groups, "ops");
        let b = ask(
            "https://app.example.com/admin/x",
            "GET",
            Some("bob@example.com"),
        );
        assert_eq!((b.decision, b.status), ("forbidden", 403));
        let c = ask("https://app.example.com/ADMIN;x", "GET", None);
        assert_eq!(
            (c.route.as_deref(), c.decision),
            (Some("admin"), "unauthenticated")
        );
        assert_eq!(
            ask("https://app.example.com/feed", "GET", None).decision,
            "public"
        );
        assert_eq!(
            ask("https://app.example.com/feed", "POST", None).status,
            405
        );
        assert_eq!(ask("https://other.example.com/", "GET", None).status, 404);
    }

    #[test]
    fn bad_questions_name_the_flag() {
        let env = [("S", "0123456789abcdef0123456789abcdef0123")];
        let config = Config::from_toml_str(CONFIG, "t.toml", &env).unwrap();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let e = explain(&config, "ftp://x/", "GET", None, ip).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--url: the scheme \"ftp\" is not http or https"
        );
        let e = explain(&config, "https://x/", "G T", None, ip).unwrap_err();
        assert_eq!(e, PolicyError::Method("G T".into()));
        let e = explain(&config, "https://x/", "GET", Some("nope"), ip).unwrap_err();
        assert_eq!(e, PolicyError::Email("nope".into()));
    }
}
