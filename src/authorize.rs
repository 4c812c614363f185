//! The one authorization decision: may this request, on this route, with
//! this session, reach the application? Used by the proxy path
//! ([`crate::app`]) and by forward-auth (`/.portcullis/auth`) alike, so the
//! two can never disagree (Pomerium's `authorize` makes the same single
//! binary decision).
//!
//! A request is public only when every reading of its path falls on a
//! public route with the exact case ([`Match::public`]); otherwise it needs
//! a session, and its address must pass the global allow lists
//! (`[login] allow_*`) and those of the route of every reading of the path
//! ([`Match::allows`]). Reading the session is the caller's (it is the
//! store's, and async); [`needs_identity`] says whether to.

use crate::config::Config;
use crate::routes::Match;
use crate::session::Identity;

/// What [`authorize`] decided.
#[derive(Debug)]
pub enum Decision<'a> {
    /// Pass; with the identity to send upstream (`None` on a public route,
    /// which never gets identity headers).
    Allow(Option<&'a Identity>),
    /// No valid session: sign in first (303 to the sign-in page or 401).
    Unauthenticated,
    /// Signed in, but this address may not open this route (403).
    Forbidden(&'a Identity),
}

impl Decision<'_> {
    /// The decision's name in the metrics.
    pub fn metric(&self) -> crate::metrics::AuthzDecision {
        use crate::metrics::AuthzDecision;
        match self {
            Decision::Allow(_) => AuthzDecision::Allow,
            Decision::Unauthenticated => AuthzDecision::Unauthenticated,
            Decision::Forbidden(_) => AuthzDecision::Forbidden,
        }
    }
}

/// Whether the decision depends on a session (else there is no need to
/// read one).
pub fn needs_identity(m: &Match) -> bool {
    !m.public()
}

/// The decision for a request that fell on `m`, with the session read from
/// it (`None`: no valid session).
pub fn authorize<'a>(config: &Config, m: &Match, identity: Option<&'a Identity>) -> Decision<'a> {
    if m.public() {
        return Decision::Allow(None);
    }
    let Some(identity) = identity else {
        return Decision::Unauthenticated;
    };
    let groups = m
        .needs_groups()
        .then(|| config.groups.of(&identity.email))
        .flatten();
    if config.login.allow.allows(&identity.email, None) && m.allows(&identity.email, groups) {
        Decision::Allow(Some(identity))
    } else {
        Decision::Forbidden(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Scheme;
    use crate::routes::RouteTable;
    use std::sync::Arc;

    const CONFIG: &str = r#"
[session]
secret_env = "S"
[login]
allow_domains = ["example.com"]
[[route]]
path = "/"
upstream = "demo"
access = "public"
[[route]]
path = "/docs"
upstream = "demo"
access = "public"
[[route]]
path = "/app"
upstream = "demo"
[[route]]
path = "/admin"
upstream = "demo"
allow_emails = ["boss@example.com"]
[[route]]
path = "/ops"
upstream = "demo"
allow_emails = ["boss@example.com"]
allow_groups = ["ops"]
[groups]
ops = ["staff@example.com", "@ops.example.com"]
dev = ["staff@example.com"]
"#;

    fn who(email: &str) -> Identity {
        Identity {
            email: Arc::from(email),
            tag: [0; 32],
        }
    }

    /// The decision for `path` as `identity`, in words.
    fn decide(path: &str, identity: Option<&Identity>) -> &'static str {
        let env = [("S", "0123456789abcdef0123456789abcdef0123")];
        let config = Config::from_toml_str(CONFIG, "t.toml", &env).unwrap();
        let table = RouteTable::new(&config.routes);
        let m = table.find("x.test", Scheme::Http, path).unwrap();
        match authorize(&config, &m, identity) {
            Decision::Allow(None) => "public",
            Decision::Allow(Some(_)) => "allow",
            Decision::Unauthenticated => "sign in",
            Decision::Forbidden(_) => "forbidden",
        }
    }

    #[test]
    fn public_protected_and_allow_lists() {
        let boss = who("boss@example.com");
        let staff = who("staff@example.com");
        let stranger = who("someone@elsewhere.org");
        // A public route never carries an identity, signed in or not.
        assert_eq!(decide("/", None), "public");
        assert_eq!(decide("/", Some(&boss)), "public");
        // A protected route: a session, and the global allow list.
        assert_eq!(decide("/app/x", None), "sign in");
        assert_eq!(decide("/app/x", Some(&staff)), "allow");
        assert_eq!(decide("/app/x", Some(&stranger)), "forbidden");
        // The route's own allow list on top of the global one.
        assert_eq!(decide("/admin", Some(&boss)), "allow");
        assert_eq!(decide("/admin", Some(&staff)), "forbidden");
        // Every reading of the path: `/admin;x` is `/admin` to Tomcat.
        assert_eq!(decide("/admin;x/panel", Some(&staff)), "forbidden");
        assert_eq!(decide("/admin;x/panel", None), "sign in");
        // The case of a public prefix must match exactly to stay public.
        assert_eq!(decide("/docs/x", None), "public");
        assert_eq!(decide("/DOCS/x", None), "sign in");
    }

    #[test]
    fn allow_groups_add_to_the_route_allow_lists() {
        let boss = who("boss@example.com");
        let staff = who("staff@example.com");
        let other = who("other@example.com");
        // allow_emails OR allow_groups: boss by address, staff by group.
        assert_eq!(decide("/ops", Some(&boss)), "allow");
        assert_eq!(decide("/ops/x", Some(&staff)), "allow");
        assert_eq!(decide("/ops", Some(&other)), "forbidden");
        assert_eq!(decide("/ops", None), "sign in");
        // Every reading of the path still applies.
        assert_eq!(decide("/ops;x/y", Some(&other)), "forbidden");
        // A group does not pass the global allow list: `@ops.example.com`
        // is in `ops`, but `[login]` allows only `example.com`.
        assert_eq!(decide("/ops", Some(&who("x@ops.example.com"))), "forbidden");
        // Groups do not open a route without allow_groups.
        assert_eq!(decide("/admin", Some(&staff)), "forbidden");
    }

    #[test]
    fn a_session_is_read_only_where_it_decides() {
        let env = [("S", "0123456789abcdef0123456789abcdef0123")];
        let config = Config::from_toml_str(CONFIG, "t.toml", &env).unwrap();
        let table = RouteTable::new(&config.routes);
        let find = |p: &str| table.find("x.test", Scheme::Http, p).unwrap();
        assert!(!needs_identity(&find("/public")));
        assert!(needs_identity(&find("/app")));
        assert!(needs_identity(&find("/admin;x")));
    }
}
