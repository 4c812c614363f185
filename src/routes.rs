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

use std::sync::Arc;

use crate::config::{RouteConfig, Scheme};

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
}

#[derive(Debug, Clone)]
pub struct Match {
    pub route: Arc<Route>,
    /// The prefix matched with exactly the same case.
    pub exact_case: bool,
}

#[derive(Debug, Default)]
pub struct RouteTable {
    with_host: Vec<Arc<Route>>,
    without_host: Vec<Arc<Route>>,
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
        // Longest prefix first, so the first fit is the best fit.
        let by_len = |a: &Arc<Route>, b: &Arc<Route>| b.config.path.len().cmp(&a.config.path.len());
        table.with_host.sort_by(by_len);
        table.without_host.sort_by(by_len);
        table
    }

    /// `host` is the request's Host (or :authority) as sent; `path` the
    /// normalised path.
    pub fn find(&self, host: &str, scheme: Scheme, path: &str) -> Option<Match> {
        if self.with_host.is_empty() {
            // No route names a host: the host does not matter here.
            return self.without_host.iter().find_map(|r| prefix_match(r, path));
        }
        let (name, port) = normalize_request_host(host, scheme);
        let port = port.unwrap_or(scheme.default_port());
        let host_fits = |r: &Route| {
            r.host_name.as_deref() == Some(name.as_str()) && r.host_port.is_none_or(|p| p == port)
        };
        self.with_host
            .iter()
            .filter(|r| host_fits(r))
            .find_map(|r| prefix_match(r, path))
            .or_else(|| self.without_host.iter().find_map(|r| prefix_match(r, path)))
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

fn prefix_match(route: &Arc<Route>, path: &str) -> Option<Match> {
    let prefix = route.config.path.as_str();
    if prefix == "/" {
        return Some(Match {
            route: route.clone(),
            exact_case: true,
        });
    }
    let head = path.get(..prefix.len())?;
    let boundary = matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'));
    if boundary && head.eq_ignore_ascii_case(prefix) {
        Some(Match {
            route: route.clone(),
            exact_case: head == prefix,
        })
    } else {
        None
    }
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
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
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
