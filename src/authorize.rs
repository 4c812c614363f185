//! The one authorization decision: may this request, on this route, with
//! this session, reach the application? Used by the proxy path
//! ([`crate::app`]) and by forward-auth (`/.portcullis/auth`) alike, so the
//! two can never disagree (Pomerium's `authorize` makes the same single
//! binary decision).
//!
//! The rules, first match wins:
//! 1. `deny = true` on the route of some reading of the path: 403 to
//!    everyone ([`Match::denied`]).
//! 2. Public when every reading of the path falls on a public route with
//!    the exact case ([`Match::public`]).
//! 3. The client's address (after `trusted_proxies`) in the
//!    `bypass_networks` of the route of every reading: passes without a
//!    session and without identity headers, audited ([`Match::bypasses`]).
//! 4. Otherwise what the request presents ([`Credential`]):
//!    - a session: the address must pass the global allow lists
//!      (`[login] allow_*`) and those of the route of every reading of
//!      the path (`allow_emails` OR `allow_domains` OR `allow_groups`:
//!      [`Match::allows`]);
//!    - a machine token: the route of every reading must name one of the
//!      token's groups in `allow_groups` ([`Match::allows_token`]); the
//!      address allow lists do not apply to it;
//!    - a share link covering this request (host, method, both readings
//!      of the path: [`crate::share::Grant::covering`]): passes; with a
//!      session too, the session when its address may pass, else the
//!      share;
//!    - nothing: sign in first.
//!
//! `methods` act before all this, in choosing the route
//! ([`crate::routes`]). Reading the session, the token and the share
//! cookie is the caller's (it is the store's, and async:
//! [`crate::access`]); [`needs_identity`] says whether to.

use std::net::IpAddr;

use crate::config::Config;
use crate::routes::Match;
use crate::session::Identity;
use crate::share::{Covering, Grant};
use crate::token::Token;

/// What a request presents, read by [`crate::access`]: at most one.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// A valid session.
    Session(&'a Identity),
    /// A valid session and a share link covering the request: the
    /// session when its address may pass, else the share (an allowed
    /// session wins).
    SessionOrShare(&'a Identity, Covering<'a>),
    /// A valid machine token (`Authorization: Bearer`).
    Token(&'a Token),
    /// A share link that covers this request.
    Share(Covering<'a>),
}

/// What [`authorize`] decided.
#[derive(Debug)]
pub enum Decision<'a> {
    /// Pass; with the identity to send upstream (`None` on a public route,
    /// which never gets identity headers).
    Allow(Option<&'a Identity>),
    /// Pass as a machine token (`X-Forwarded-User: token:NAME`).
    AllowToken(&'a Token),
    /// Pass by a share link (`X-Portcullis-Share: ID`).
    AllowShare(&'a Grant),
    /// No valid session: sign in first (303 to the sign-in page or 401).
    Unauthenticated,
    /// Signed in, but this address may not open this route (403).
    Forbidden(&'a Identity),
    /// A valid machine token that may not open this route (403).
    TokenForbidden(&'a Token),
    /// The route is closed (`deny = true`): 403 to everyone.
    Denied,
    /// Passed without a session by `bypass_networks` (no identity sent;
    /// the caller writes the audit line).
    Bypass,
}

impl Decision<'_> {
    /// The decision's name in the metrics.
    pub fn metric(&self) -> crate::metrics::AuthzDecision {
        use crate::metrics::AuthzDecision;
        match self {
            Decision::Allow(_)
            | Decision::AllowToken(_)
            | Decision::AllowShare(_)
            | Decision::Bypass => AuthzDecision::Allow,
            Decision::Unauthenticated => AuthzDecision::Unauthenticated,
            Decision::Forbidden(_) | Decision::TokenForbidden(_) | Decision::Denied => {
                AuthzDecision::Forbidden
            }
        }
    }
}

/// Whether the decision for a request from `client` depends on a session
/// (else there is no need to read one).
#[inline]
pub fn needs_identity(m: &Match, client: IpAddr) -> bool {
    !(m.denied() || m.public() || m.bypasses(client))
}

/// The decision for a request from `client` that fell on `m`, with what
/// it presents (`None`: no valid session, token or covering share).
pub fn authorize<'a>(
    config: &Config,
    m: &Match,
    client: IpAddr,
    credential: Option<Credential<'a>>,
) -> Decision<'a> {
    if m.denied() {
        return Decision::Denied;
    }
    if m.public() {
        return Decision::Allow(None);
    }
    if m.bypasses(client) {
        return Decision::Bypass;
    }
    let identity = match credential {
        None => return Decision::Unauthenticated,
        Some(Credential::Token(token)) => {
            return if m.allows_token(token.groups.as_ref()) {
                Decision::AllowToken(token)
            } else {
                Decision::TokenForbidden(token)
            };
        }
        Some(Credential::Share(covering)) => return Decision::AllowShare(covering.grant()),
        Some(Credential::Session(identity)) => identity,
        Some(Credential::SessionOrShare(identity, covering)) => {
            return match session_decision(config, m, identity) {
                Decision::Forbidden(_) => Decision::AllowShare(covering.grant()),
                allowed => allowed,
            };
        }
    };
    session_decision(config, m, identity)
}

/// The decision for a signed-in `identity`: the global allow lists and
/// those of the route of every reading of the path.
fn session_decision<'a>(config: &Config, m: &Match, identity: &'a Identity) -> Decision<'a> {
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
[[route]]
path = "/app/closed"
upstream = "demo"
deny = true
[[route]]
path = "/probe"
upstream = "demo"
bypass_networks = ["10.0.0.0/8"]
[[route]]
path = "/probe/closed"
upstream = "demo"
deny = true
[[route]]
path = "/feed"
upstream = "demo"
access = "public"
methods = ["GET", "HEAD"]
[[route]]
path = "/feed"
upstream = "demo"
[[route]]
path = "/hook"
upstream = "demo"
methods = ["POST"]
access = "public"
[groups]
ops = ["staff@example.com", "@ops.example.com"]
dev = ["staff@example.com"]
"#;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const PROBE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 2, 3));

    /// The decision for `method path` from `ip` as `identity`, in words.
    fn decide_from(
        method: &str,
        path: &str,
        ip: IpAddr,
        identity: Option<&Identity>,
    ) -> &'static str {
        let env = [("S", "0123456789abcdef0123456789abcdef0123")];
        let config = Config::from_toml_str(CONFIG, "t.toml", &env).unwrap();
        let table = RouteTable::new(&config.routes);
        let method = http::Method::from_bytes(method.as_bytes()).unwrap();
        let m = match table.find_for("x.test", Scheme::Http, &method, path) {
            Ok(m) => m,
            Err(crate::routes::Miss::Method) => return "405",
            Err(crate::routes::Miss::NoRoute) => return "404",
        };
        match authorize(&config, &m, ip, identity.map(Credential::Session)) {
            Decision::Allow(None) => "public",
            Decision::Allow(Some(_)) => "allow",
            Decision::AllowToken(_) => "token",
            Decision::AllowShare(_) => "share",
            Decision::Unauthenticated => "sign in",
            Decision::Forbidden(_) | Decision::TokenForbidden(_) => "forbidden",
            Decision::Denied => "denied",
            Decision::Bypass => "bypass",
        }
    }

    fn who(email: &str) -> Identity {
        Identity {
            email: Arc::from(email),
            tag: [0; 32],
            amr: None,
        }
    }

    /// The decision for `GET path` from an ordinary address as `identity`.
    fn decide(path: &str, identity: Option<&Identity>) -> &'static str {
        decide_from("GET", path, IP, identity)
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
    fn deny_then_public_then_bypass_then_session() {
        let staff = who("staff@example.com");
        let boss = who("boss@example.com");
        // deny: everyone, signed in or not, every reading of the path.
        assert_eq!(
            decide_from("GET", "/app/closed/x", IP, Some(&boss)),
            "denied"
        );
        assert_eq!(decide_from("GET", "/app/closed", IP, None), "denied");
        assert_eq!(decide_from("GET", "/app/closed;x/y", IP, None), "denied");
        assert_eq!(
            decide_from("GET", "/app/closedx", IP, Some(&staff)),
            "allow"
        );
        // deny beats bypass_networks.
        assert_eq!(decide_from("GET", "/probe/closed", PROBE, None), "denied");
        // bypass: from the network, without a session, signed in or not.
        assert_eq!(decide_from("GET", "/probe/x", PROBE, None), "bypass");
        assert_eq!(decide_from("POST", "/probe", PROBE, Some(&staff)), "bypass");
        assert_eq!(decide_from("GET", "/probe/x", IP, None), "sign in");
        assert_eq!(decide_from("GET", "/probe/x", IP, Some(&staff)), "allow");
        // The literal reading `/` is not bypassed: neither is the request.
        assert_eq!(decide_from("GET", "/probe;x/y", PROBE, None), "sign in");
    }

    #[test]
    fn methods_choose_the_route_of_one_place() {
        let staff = who("staff@example.com");
        // GET and HEAD public; any other method the route without methods.
        assert_eq!(decide_from("GET", "/feed/1", IP, None), "public");
        assert_eq!(decide_from("HEAD", "/feed", IP, None), "public");
        assert_eq!(decide_from("POST", "/feed/1", IP, None), "sign in");
        assert_eq!(decide_from("DELETE", "/feed/1", IP, Some(&staff)), "allow");
        // Only POST: others are 405, never the shorter prefix `/`.
        assert_eq!(decide_from("POST", "/hook", IP, None), "public");
        assert_eq!(decide_from("GET", "/hook/x", IP, None), "405");
        assert_eq!(decide_from("GET", "/hookx", IP, None), "public");
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
    fn tokens_pass_only_where_allow_groups_names_their_group() {
        let env = [("S", "0123456789abcdef0123456789abcdef0123")];
        let config = Config::from_toml_str(CONFIG, "t.toml", &env).unwrap();
        let table = RouteTable::new(&config.routes);
        let token = Token {
            name: "ci".into(),
            user: "token:ci".into(),
            digest: [0; 32],
            groups: config.groups.membership(&["ops".into()]),
            expires: None,
        };
        let decide = |path: &str| {
            let m = table.find("x.test", Scheme::Http, path).unwrap();
            match authorize(&config, &m, IP, Some(Credential::Token(&token))) {
                Decision::AllowToken(_) => "token",
                Decision::TokenForbidden(_) => "forbidden",
                Decision::Allow(None) => "public",
                Decision::Denied => "denied",
                _ => "other",
            }
        };
        assert_eq!(decide("/ops/x"), "token");
        // Routes open to any signed-in address, or by address only.
        assert_eq!(decide("/app"), "forbidden");
        assert_eq!(decide("/admin"), "forbidden");
        // Every reading: `/ops;x/y` is `/` (public, no groups) literally.
        assert_eq!(decide("/ops;x/y"), "forbidden");
        assert_eq!(decide("/docs"), "public");
        assert_eq!(decide("/app/closed"), "denied");
        // A token in no group passes nothing.
        let none = Token {
            groups: None,
            ..token.clone()
        };
        let m = table.find("x.test", Scheme::Http, "/ops").unwrap();
        assert!(matches!(
            authorize(&config, &m, IP, Some(Credential::Token(&none))),
            Decision::TokenForbidden(_)
        ));
    }

    #[test]
    fn a_session_is_read_only_where_it_decides() {
        let env = [("S", "0123456789abcdef0123456789abcdef0123")];
        let config = Config::from_toml_str(CONFIG, "t.toml", &env).unwrap();
        let table = RouteTable::new(&config.routes);
        let find = |p: &str| table.find("x.test", Scheme::Http, p).unwrap();
        assert!(!needs_identity(&find("/public"), IP));
        assert!(needs_identity(&find("/app"), IP));
        assert!(needs_identity(&find("/admin;x"), IP));
        assert!(!needs_identity(&find("/app/closed"), IP));
        assert!(!needs_identity(&find("/probe"), PROBE));
        assert!(needs_identity(&find("/probe"), IP));
    }
}
