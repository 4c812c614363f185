//! The route table: which configured route a request belongs to.
//!
//! Hosts are compared case-insensitively, without a trailing dot and with
//! the scheme's default port removed; a route host without a port matches
//! any port. A route with a host beats one without. Path prefixes match on
//! segment boundaries (`/app` matches `/app` and `/app/x`, not `/apple`),
//! compared case-insensitively (so `/ADMIN` cannot dodge a protected
//! `/admin` on a case-insensitive app); the longest prefix wins. The match
//! reports whether the case was exact: a public route grants anonymous
//! access only on an exact-case match. Matching never sees the query.
//!
//! A path is matched twice when its two readings differ: as the canonical
//! path (what the upstream gets, read literally) and as its
//! [`path::matching_view`] (`;parameters` cut, trailing dots and spaces
//! trimmed: what Tomcat, Spring or IIS serve). The view picks the route; the
//! request is public only if both readings fall on a public route with the
//! exact case, and a signed-in user must pass the allow lists of both
//! routes. So `/admin;x/panel`, `/ADMIN%3B/panel`, `/admin./panel` and
//! `/admin%20/panel` are all `/admin`, and no spelling makes a public route
//! serve a path an upstream reads as protected.
//!
//! A route with `methods` matches only those methods. Routes on the same
//! host and path (which `check` allows only when no method is in two of
//! them, and at most one has no `methods`) are one place: the route whose
//! `methods` has the request's method serves it, else the one without
//! `methods`, else the request is 405 ([`Miss::Method`]); it never falls
//! to a shorter prefix, so a method cannot dodge a route.
//!
//! The request's host must be a valid host ([`valid_host`]): LDH names
//! (with `_`), a dotted IPv4 address or an IPv6 literal in brackets, and a
//! port of 1 to 65535 in plain digits if there is a `:`. Anything else is
//! refused before routing (`app.test:`, `app.test:abc`, `app.test:65536`
//! would otherwise match no host route and fall to the host-less ones).

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::config::{Access, RouteConfig, Scheme};
use crate::groups::Membership;
use crate::path;
use http::Method;

/// One route, shared by reference from the table.
#[derive(Debug)]
pub struct Route {
    pub config: RouteConfig,
    host_name: Option<String>,
    host_port: Option<u16>,
}

impl Route {
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether this route takes `method`.
    #[inline]
    fn takes(&self, method: &Method) -> bool {
        self.config
            .methods
            .as_ref()
            .is_none_or(|m| m.contains(method))
    }

    /// Whether `other` is on the same host and path (one place).
    fn same_place(&self, other: &Route) -> bool {
        self.host_name == other.host_name
            && self.host_port == other.host_port
            && self.config.path == other.config.path
    }

    #[inline]
    fn bypasses(&self, ip: IpAddr) -> bool {
        self.config.bypass_networks.iter().any(|n| n.contains(&ip))
    }
}

/// Why [`RouteTable::find_for`] found no route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// No route's prefix fits (404).
    NoRoute,
    /// Routes fit the path, none takes the method (405).
    Method,
}

impl From<Miss> for crate::error::Error {
    fn from(m: Miss) -> Self {
        match m {
            Miss::NoRoute => crate::error::Error::NoRoute,
            Miss::Method => crate::error::Error::MethodNotAllowed,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Match {
    /// The route of the path's matching view: it serves the request.
    pub route: Arc<Route>,
    /// The prefix matched with exactly the same case.
    pub exact_case: bool,
    /// When the literal reading of the path (the canonical path, with its
    /// parameters and trailing dots) differs from the view: the route it
    /// falls on (`None`: no route), and whether with the exact case.
    literal: Option<(Option<Arc<Route>>, bool)>,
}

impl Match {
    /// Whether the request may pass without a session: every reading of
    /// the path falls on a public route, with the exact case.
    pub fn public(&self) -> bool {
        let public = |route: &Route, exact: bool| route.config.access == Access::Public && exact;
        public(&self.route, self.exact_case)
            && match &self.literal {
                None => true,
                Some((Some(route), exact)) => public(route, *exact),
                Some((None, _)) => false,
            }
    }

    /// Whether a route of some reading of the path is `deny = true`.
    #[inline]
    pub fn denied(&self) -> bool {
        self.route.config.deny || matches!(&self.literal, Some((Some(r), _)) if r.config.deny)
    }

    /// Whether `ip` passes without a session: it is in the
    /// `bypass_networks` of the route of every reading of the path.
    #[inline]
    pub fn bypasses(&self, ip: IpAddr) -> bool {
        if self.route.config.bypass_networks.is_empty() {
            return false;
        }
        self.route.bypasses(ip)
            && match &self.literal {
                None => true,
                Some((Some(route), _)) => route.bypasses(ip),
                Some((None, _)) => false,
            }
    }

    /// Whether `email` (normalised, in `groups`) passes the allow lists of
    /// the route of every reading of the path.
    pub fn allows(&self, email: &str, groups: Option<&Membership>) -> bool {
        self.route.config.allow.allows(email, groups)
            && match &self.literal {
                Some((Some(route), _)) => route.config.allow.allows(email, groups),
                _ => true,
            }
    }

    /// Whether a machine token in `groups` passes: the route of every
    /// reading of the path has `allow_groups` naming one of them (a token
    /// never passes a route open to any signed-in user).
    pub fn allows_token(&self, groups: Option<&Membership>) -> bool {
        let Some(groups) = groups else {
            return false;
        };
        let admits = |route: &Route| {
            let ids = &route.config.allow.groups;
            !ids.is_empty() && groups.any_of(ids)
        };
        admits(&self.route)
            && match &self.literal {
                Some((Some(route), _)) => admits(route),
                _ => true,
            }
    }

    /// Whether [`Match::allows`] looks at groups (else there is no need to
    /// look the address's groups up).
    pub fn needs_groups(&self) -> bool {
        !self.route.config.allow.groups.is_empty()
            || matches!(&self.literal, Some((Some(r), _)) if !r.config.allow.groups.is_empty())
    }
}

#[derive(Debug, Default)]
pub struct RouteTable {
    with_host: Vec<Arc<Route>>,
    without_host: Vec<Arc<Route>>,
    /// Whether some route has `methods` (else the first fit is the route,
    /// whatever the method: the lookup before `methods` existed).
    methods: bool,
}

impl RouteTable {
    pub fn new(routes: &[RouteConfig]) -> RouteTable {
        let mut table = RouteTable::default();
        for r in routes {
            let (host_name, host_port) = match &r.host {
                None => (None, None),
                Some(h) => {
                    let (name, port) = split_host_port(h);
                    (Some(name.to_string()), port)
                }
            };
            let route = Arc::new(Route {
                config: r.clone(),
                host_name,
                host_port,
            });
            if route.host_name.is_some() {
                table.with_host.push(route);
            } else {
                table.without_host.push(route);
            }
        }
        table.methods = routes.iter().any(|r| r.methods.is_some());
        // Longest prefix first, so the first fit is the best fit; the
        // routes of one place next to each other, those with `methods`
        // first.
        let by_len = |a: &Arc<Route>, b: &Arc<Route>| {
            let key = |r: &Route| {
                (
                    std::cmp::Reverse(r.config.path.len()),
                    r.host_name.clone(),
                    r.host_port,
                    r.config.path.clone(),
                    r.config.methods.is_none(),
                )
            };
            key(a).cmp(&key(b))
        };
        table.with_host.sort_by(by_len);
        table.without_host.sort_by(by_len);
        table
    }

    /// The route of a GET (tests and the fuzz checks; requests use
    /// [`RouteTable::find_for`]).
    pub fn find(&self, host: &str, scheme: Scheme, path: &str) -> Option<Match> {
        self.find_for(host, scheme, &Method::GET, path).ok()
    }

    /// `host` is the request's Host (or :authority) as sent; `path` the
    /// normalised path ([`path::normalize`]). The route is that of the
    /// path's [`path::matching_view`] and `method`; see [`Match::public`]
    /// and [`Match::allows`] for the decision over both readings.
    pub fn find_for(
        &self,
        host: &str,
        scheme: Scheme,
        method: &Method,
        path: &str,
    ) -> Result<Match, Miss> {
        let view = path::matching_view(path);
        let method = self.methods.then_some(method);
        if self.with_host.is_empty() {
            // No route names a host: the host does not matter here.
            let find = |p: &str| pick(self.without_host.iter(), p, method);
            return with_literal(find(&view), matches!(view, Cow::Owned(_)), path, find);
        }
        let (name, port) = normalize_request_host(host, scheme);
        let port = port.unwrap_or(scheme.default_port());
        let host_fits = |r: &&Arc<Route>| {
            r.host_name.as_deref() == Some(name.as_str()) && r.host_port.is_none_or(|p| p == port)
        };
        let find = |p: &str| match pick(self.with_host.iter().filter(host_fits), p, method) {
            Err(Miss::NoRoute) => pick(self.without_host.iter(), p, method),
            found => found,
        };
        with_literal(find(&view), matches!(view, Cow::Owned(_)), path, find)
    }

    /// The configured host of the route that fits `host` best, if any route
    /// names one (the origin for links is built from it).
    pub fn configured_host(&self, host: &str, scheme: Scheme) -> Option<&str> {
        let (name, port) = normalize_request_host(host, scheme);
        let port = port.unwrap_or(scheme.default_port());
        let fits = |r: &&Arc<Route>| {
            r.host_name.as_deref() == Some(name.as_str()) && r.host_port.is_none_or(|p| p == port)
        };
        let exact = self
            .with_host
            .iter()
            .filter(fits)
            .find(|r| r.host_port.is_some());
        exact
            .or_else(|| self.with_host.iter().find(fits))
            .and_then(|r| r.config.host.as_deref())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.with_host.iter().chain(self.without_host.iter())
    }
}

/// Adds to the view's match `m` the route of the literal reading `path`
/// when the view `differs` from it and the two readings land differently.
fn with_literal(
    m: Result<Match, Miss>,
    differs: bool,
    path: &str,
    find: impl Fn(&str) -> Result<Match, Miss>,
) -> Result<Match, Miss> {
    let mut m = m?;
    if differs {
        let literal = find(path).ok();
        let same = literal
            .as_ref()
            .is_some_and(|l| Arc::ptr_eq(&l.route, &m.route) && l.exact_case == m.exact_case);
        if !same {
            m.literal = Some(match literal {
                Some(l) => (Some(l.route), l.exact_case),
                None => (None, false),
            });
        }
    }
    Ok(m)
}

/// The first of `routes` (in table order) whose prefix fits `path` and
/// that takes `method`, looking no further than the place (host and path)
/// of the first that fits.
#[inline]
fn pick<'r>(
    mut routes: impl Iterator<Item = &'r Arc<Route>>,
    path: &str,
    method: Option<&Method>,
) -> Result<Match, Miss> {
    let Some(method) = method else {
        return routes
            .find_map(|r| prefix_match(r, path))
            .ok_or(Miss::NoRoute);
    };
    let mut place: Option<&Arc<Route>> = None;
    for r in routes {
        if let Some(first) = place {
            if !r.same_place(first) {
                return Err(Miss::Method);
            }
            if r.takes(method) {
                return prefix_match(r, path).ok_or(Miss::Method);
            }
            continue;
        }
        if let Some(m) = prefix_match(r, path) {
            if r.takes(method) {
                return Ok(m);
            }
            place = Some(r);
        }
    }
    Err(if place.is_some() {
        Miss::Method
    } else {
        Miss::NoRoute
    })
}

fn prefix_match(route: &Arc<Route>, path: &str) -> Option<Match> {
    let prefix = route.config.path.as_str();
    if prefix == "/" {
        return Some(Match {
            route: route.clone(),
            exact_case: true,
            literal: None,
        });
    }
    let head = path.get(..prefix.len())?;
    let boundary = matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'));
    if boundary && head.eq_ignore_ascii_case(prefix) {
        Some(Match {
            route: route.clone(),
            exact_case: head == prefix,
            literal: None,
        })
    } else {
        None
    }
}

/// Whether `host` (a Host header, an `:authority`, an absolute-form
/// authority or a trusted proxy's `X-Forwarded-Host`) is one host the
/// router can read only one way: a name of dot-separated labels of
/// letters, digits, `-` and `_` (1 to 63 each, 253 in all, one trailing dot
/// allowed) whose last label is not numeric unless the whole name is a
/// dotted-decimal IPv4 address, or an IPv6 address in brackets; then
/// optionally `:` and a port of 1 to 65535 in 1 to 5 plain digits.
pub fn valid_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            after => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return false,
            },
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(host), None),
        }
    };
    if let Some(port) = port {
        let digits =
            !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
        if !digits || !matches!(port.parse::<u32>(), Ok(1..=65_535)) {
            return false;
        }
    }
    name.is_none_or(valid_host_name)
}

/// The name part of [`valid_host`].
fn valid_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !name.split('.').all(label_ok) {
        return false;
    }
    // A name ending in a number is an IPv4 address to URL parsers
    // (`0x7f.1`, `127.1`): only the plain dotted-decimal form is taken.
    let last = name.rsplit('.').next().unwrap_or(name);
    let hex = last
        .strip_prefix("0x")
        .or_else(|| last.strip_prefix("0X"))
        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    if hex || last.bytes().all(|b| b.is_ascii_digit()) {
        return name.parse::<Ipv4Addr>().is_ok();
    }
    // A punycode label (`xn--`) must decode, as URL parsers (browsers,
    // most frameworks) refuse one that does not: then the name is read one
    // way or refused everywhere. Found by the `host` fuzz target.
    let punycode = name
        .split('.')
        .any(|l| l.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("xn--")));
    if punycode {
        return matches!(
            url::Host::parse(name),
            Ok(url::Host::Domain(d)) if d.eq_ignore_ascii_case(name)
        );
    }
    true
}

fn split_host_port(host: &str) -> (&str, Option<u16>) {
    let split = if host.starts_with('[') {
        host.find("]:").map(|i| i + 1)
    } else {
        host.rfind(':')
    };
    match split {
        Some(i) => match host.get(i + 1..).and_then(|p| p.parse().ok()) {
            Some(port) => (&host[..i], Some(port)),
            None => (host, None),
        },
        None => (host, None),
    }
}

/// Lowercase name without trailing dot, and the port if one was given.
pub fn normalize_request_host(host: &str, _scheme: Scheme) -> (String, Option<u16>) {
    let (name, port) = split_host_port(host.trim());
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    (name, port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Access, AllowList, Upstream};
    use std::time::Duration;

    fn route(host: Option<&str>, path: &str, name: &str) -> RouteConfig {
        RouteConfig {
            name: name.into(),
            host: host.map(String::from),
            path: path.into(),
            upstream: Upstream::Demo,
            access: Access::Authenticated,
            allow: AllowList::default(),
            methods: None,
            bypass_networks: Vec::new(),
            deny: false,
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            forward: None,
        }
    }

    fn table() -> RouteTable {
        RouteTable::new(&[
            route(None, "/", "catch-all"),
            route(None, "/app", "app"),
            route(None, "/app/admin", "admin"),
            route(Some("api.example.com"), "/", "api"),
            route(Some("api.example.com"), "/v2", "api-v2"),
            route(Some("local.test:8443"), "/", "local-8443"),
        ])
    }

    fn name(t: &RouteTable, host: &str, path: &str) -> Option<String> {
        t.find(host, Scheme::Https, path)
            .map(|m| m.route.name().to_string())
    }

    #[test]
    fn longest_prefix_on_segment_boundaries() {
        let t = table();
        assert_eq!(name(&t, "x.test", "/app").as_deref(), Some("app"));
        assert_eq!(name(&t, "x.test", "/app/").as_deref(), Some("app"));
        assert_eq!(name(&t, "x.test", "/app/x").as_deref(), Some("app"));
        assert_eq!(name(&t, "x.test", "/apple").as_deref(), Some("catch-all"));
        assert_eq!(name(&t, "x.test", "/app/admin/y").as_deref(), Some("admin"));
        assert_eq!(
            name(&t, "x.test", "/app/administrator").as_deref(),
            Some("app")
        );
    }

    #[test]
    fn host_routes_beat_hostless_and_hosts_are_canonical() {
        let t = table();
        for host in [
            "api.example.com",
            "API.EXAMPLE.COM",
            "api.example.com.",
            "api.example.com:443",
            "Api.Example.Com.:8080",
        ] {
            assert_eq!(name(&t, host, "/x").as_deref(), Some("api"), "{host}");
        }
        assert_eq!(
            name(&t, "api.example.com", "/v2/x").as_deref(),
            Some("api-v2")
        );
        assert_eq!(
            name(&t, "local.test:8443", "/").as_deref(),
            Some("local-8443")
        );
        assert_eq!(name(&t, "local.test", "/").as_deref(), Some("catch-all"));
        assert_eq!(
            name(&t, "local.test:9000", "/").as_deref(),
            Some("catch-all")
        );
    }

    #[test]
    fn unknown_host_without_catch_all_is_none() {
        let t = RouteTable::new(&[route(Some("a.example.com"), "/", "a")]);
        assert!(t.find("b.example.com", Scheme::Http, "/").is_none());
        assert!(t.find("a.example.com.evil", Scheme::Http, "/").is_none());
        assert_eq!(
            t.find("a.example.com", Scheme::Http, "/")
                .map(|m| m.route.name().to_string()),
            Some("a".into())
        );
    }

    #[test]
    fn case_insensitive_prefix_reports_exact_case() {
        let t = table();
        let m = t.find("x.test", Scheme::Http, "/APP/ADMIN/x").unwrap();
        assert_eq!(m.route.name(), "admin");
        assert!(!m.exact_case);
        let m = t.find("x.test", Scheme::Http, "/app/admin").unwrap();
        assert!(m.exact_case);
    }

    /// The spellings Tomcat, Jetty, Spring or IIS read as another segment:
    /// `;parameters` (raw or `%3B` in any case) and trailing dots and
    /// spaces (raw, `%2E`, `%20`), alone and combined.
    pub(crate) const DECORATIONS: &[&str] = &[
        ";",
        ";x",
        ";x=1",
        ";jsessionid=A1",
        "%3B",
        "%3b",
        "%3Bx",
        ".",
        "..",
        "%2E",
        "%2e",
        " ",
        "%20",
        ". ",
        ".%20",
        "%20.",
        ";x.",
        ".;x",
        "%20;x",
        "..;x",
        "%2e%3b",
    ];

    fn mixed_case(s: &str) -> String {
        s.chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    }

    /// Every spelling of a protected prefix (a decoration on any of its
    /// segments, in any case, at the end or in the middle of the path) is
    /// refused by `normalize` or routed to the protected route, never
    /// public, and a user outside its allow list is never let in.
    #[test]
    fn every_spelling_of_a_protected_prefix_is_protected() {
        let mut public_root = route(None, "/", "public-root");
        public_root.access = Access::Public;
        let mut admin = route(None, "/admin", "admin");
        admin.allow.emails.insert("boss@example.com".into());
        let mut deep = route(None, "/a/b/secret", "deep");
        deep.allow.emails.insert("boss@example.com".into());
        let mut stat = route(None, "/static", "static");
        stat.access = Access::Public;
        let t = RouteTable::new(&[public_root, admin, deep, stat]);
        let (mut refused, mut routed) = (0, 0);
        for (prefix, name) in [("/admin", "admin"), ("/a/b/secret", "deep")] {
            let segments: Vec<&str> = prefix.split('/').skip(1).collect();
            for at in 0..segments.len() {
                for decoration in DECORATIONS {
                    for case in 0..3 {
                        let mut spelled: Vec<String> =
                            segments.iter().map(|s| s.to_string()).collect();
                        spelled[at].push_str(decoration);
                        let base = format!("/{}", spelled.join("/"));
                        let base = match case {
                            0 => base,
                            1 => base.to_uppercase(),
                            _ => mixed_case(&base),
                        };
                        for tail in ["", "/", "/panel", "/panel/x;y", "/panel."] {
                            let input = format!("{base}{tail}");
                            let Ok(canonical) = path::normalize(&input) else {
                                refused += 1;
                                continue;
                            };
                            let m = t.find("x.test", Scheme::Https, &canonical);
                            let m = m.unwrap_or_else(|| panic!("{input}: no route"));
                            assert_eq!(m.route.name(), name, "{input} -> {canonical}");
                            assert!(!m.public(), "{input} is public");
                            assert!(!m.allows("outsider@example.com", None), "{input}");
                            assert!(m.allows("boss@example.com", None), "{input}");
                            routed += 1;
                        }
                    }
                }
            }
        }
        // Decorations on a name never leave a segment of only dots: all
        // are routed (4 segment positions, 3 cases, 5 tails).
        assert_eq!((routed, refused), (4 * DECORATIONS.len() * 3 * 5, 0));
    }

    /// A public route's spelling that an upstream reading the path
    /// literally sees under a protected route is not public.
    #[test]
    fn public_only_when_every_reading_is_public() {
        let mut stat = route(None, "/static", "static");
        stat.access = Access::Public;
        let t = RouteTable::new(&[route(None, "/", "root"), stat]);
        let public = |p: &str| t.find("x.test", Scheme::Http, p).map(|m| m.public());
        assert_eq!(public("/static/a"), Some(true));
        assert_eq!(public("/static/a;jsessionid=1"), Some(true));
        assert_eq!(public("/static/a./b"), Some(true));
        // The literal reading is under `/`, which is protected.
        assert_eq!(public("/static;x/a"), Some(false));
        assert_eq!(public("/static./a"), Some(false));
        assert_eq!(public("/;x/static/a"), Some(false));
        assert_eq!(public("/STATIC/a"), Some(false));
    }

    /// A user must pass the allow lists of the routes of both readings.
    #[test]
    fn allow_lists_of_every_reading_apply() {
        let mut root = route(None, "/", "root");
        root.allow.emails.insert("boss@example.com".into());
        let t = RouteTable::new(&[root, route(None, "/a", "a")]);
        let allows =
            |p: &str, who: &str| t.find("x.test", Scheme::Http, p).unwrap().allows(who, None);
        assert!(allows("/a/b", "outsider@example.com"));
        assert!(allows("/a/b;x", "outsider@example.com"));
        // Read literally `/a;x/b` is under `/`, which only boss@ may open.
        assert!(!allows("/a;x/b", "outsider@example.com"));
        assert!(!allows("/a./b", "outsider@example.com"));
        assert!(allows("/a;x/b", "boss@example.com"));
        assert_eq!(
            t.find("x.test", Scheme::Http, "/a;x/b")
                .unwrap()
                .route
                .name(),
            "a"
        );
    }

    #[test]
    fn valid_hosts() {
        for host in [
            "app.test",
            "APP.test",
            "app.test.",
            "app.test:8080",
            "app.test:1",
            "app.test:65535",
            "app.test:080",
            "localhost",
            "my_app-1.internal",
            "127.0.0.1",
            "127.0.0.1:8080",
            "[::1]",
            "[::1]:8443",
            "[2001:db8::7]",
            "a1.b2.c3",
            "1a.test",
            "xn--bcher-kva.example",
            "XN--BCHER-KVA.example:8443",
        ] {
            assert!(valid_host(host), "{host}");
        }
        for host in [
            "",
            "app.test:",
            "xn--bcvr-eahk.example",
            "app.test:abc",
            "app.test:65536",
            "app.test:0",
            "app.test:00000",
            "app.test:123456",
            "app.test:+80",
            "app.test:-1",
            "app.test: 80",
            "app.test:80:80",
            "app.test..",
            "app..test",
            ".app.test",
            ".",
            "app.test%2e",
            "app test",
            "app.test,evil.test",
            "user@app.test",
            "app.test/x",
            "app.test\\x",
            "[::1",
            "[::1]x",
            "[::1]:",
            "[::1]:0",
            "[zz::1]",
            "[fe80::1%25eth0]",
            "::1",
            "1.2.3.256",
            "1.2.3",
            "127.1",
            "0x7f.0.0.1",
            "a.0x7f",
            "a.123",
            "01.2.3.4",
            "é.test",
        ] {
            assert!(!valid_host(host), "{host}");
        }
        let long = format!("{}.test", "a".repeat(64));
        assert!(!valid_host(&long));
        let longest = vec!["a".repeat(63); 4].join(".");
        assert_eq!(longest.len(), 255);
        assert!(!valid_host(&longest));
        assert!(valid_host(&longest[2..]));
    }

    #[test]
    fn configured_host_for_links() {
        let t = table();
        assert_eq!(
            t.configured_host("API.example.com:443", Scheme::Https),
            Some("api.example.com")
        );
        assert_eq!(
            t.configured_host("local.test:8443", Scheme::Https),
            Some("local.test:8443")
        );
        assert_eq!(t.configured_host("evil.test", Scheme::Https), None);
    }
}
