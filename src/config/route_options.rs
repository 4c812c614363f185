//! A `[[route]]`'s upstream options, read from the file into typed values:
//! where requests go (`upstream` or `upstreams`, `lb`, TLS to the upstream,
//! health checks: [`Backends`]) and what is changed on the way (the path's
//! prefix, `Host`, header rules: [`Forward`]). The names follow Pomerium's
//! route options and oauth2-proxy's upstream options where the concept is
//! the same.
//!
//! A route with one plain `http://` upstream and none of these options is
//! [`Upstream::Http`] with no [`Forward`]: the request path that nearly all
//! traffic takes, unchanged. Everything else is decided here, once: a rule
//! that names an identity header, a header the gateway sets itself, one in
//! `[server] strip_headers`, `Host`, a framing or a hop-by-hop header is an
//! error naming its key, so no rule can undo the gateway's own headers.
//!
//! [`Backends`] also holds each address's health (atomics shared by every
//! worker): the balancing itself is `transport::upstream::balance`, the
//! checks `transport::upstream::health`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue};
use http::uri::Authority;
use rustls::pki_types::ServerName;

use super::error::Problems;
use super::raw::RawRoute;
use super::Upstream;

/// What a route changes on a request's way to its upstream and on the
/// answer's way back. `None` on a route when every option is at its
/// default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub prefix: Prefix,
    pub host: HostRule,
    /// `set_request_headers`: sent instead of the client's own.
    pub set_request: Vec<(HeaderName, HeaderValue)>,
    /// `remove_request_headers` and the names of `set_request_headers`,
    /// lowercase with `-` (compared in any case, `_` for `-`, as the
    /// identity headers are).
    pub drop_request: Vec<String>,
    /// `set_response_headers`: set on the upstream's answer (replacing
    /// its own).
    pub set_response: Vec<(HeaderName, HeaderValue)>,
}

/// What becomes of the route's path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prefix {
    Keep,
    /// `strip_prefix = true`: `/grafana/x` on route `/grafana` goes as `/x`,
    /// with `X-Forwarded-Prefix: /grafana`.
    Strip,
    /// `rewrite_prefix = "/new"`: `/grafana/x` goes as `/new/x`.
    Rewrite(String),
}

/// The `Host` the upstream gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRule {
    /// `preserve_host = true` (the default): the client's.
    Client,
    /// `preserve_host = false`: the upstream address's own `host:port`.
    Upstream,
    /// `upstream_host = "name"`: this one.
    Fixed(HeaderValue),
}

impl Forward {
    /// Whether the client's header `name` is dropped by a rule.
    #[inline]
    pub fn drops(&self, name: &HeaderName) -> bool {
        let n = name.as_str().as_bytes();
        self.drop_request
            .iter()
            .any(|d| crate::headers::folded_eq(n, d))
    }

    /// The path sent upstream for the canonical path `canonical` of a
    /// request on the route whose prefix is `route_path`; `None` when the
    /// path goes as
    /// it came. The route matched `canonical` segment by segment (its
    /// matching view has as many segments), so the route's prefix is its
    /// first segments, however they are spelt (`/GRAFANA;x`); only whole
    /// segments are taken off, and the canonical path has no dot segment,
    /// so no `..` can appear.
    pub fn path(&self, route_path: &str, canonical: &str) -> Option<String> {
        let new_prefix = match &self.prefix {
            Prefix::Keep => return None,
            Prefix::Strip => "/",
            Prefix::Rewrite(p) => p.as_str(),
        };
        let segments = route_path.split('/').filter(|s| !s.is_empty()).count();
        let mut end = 0;
        for _ in 0..segments {
            match canonical.get(end + 1..).and_then(|s| s.find('/')) {
                Some(j) => end += 1 + j,
                None => {
                    end = canonical.len();
                    break;
                }
            }
        }
        let rest = &canonical[end..];
        let path = match (new_prefix, rest) {
            (p, "") => p.to_string(),
            ("/", r) => r.to_string(),
            (p, r) => format!("{p}{r}"),
        };
        Some(path)
    }

    /// `X-Forwarded-Prefix` for a route at `route_path`: its path when
    /// `strip_prefix` takes it off.
    pub fn forwarded_prefix<'r>(&self, route_path: &'r str) -> Option<&'r str> {
        (self.prefix == Prefix::Strip).then_some(route_path)
    }

    /// The `set_response_headers` on an answer's headers.
    pub fn answer(&self, headers: &mut http::HeaderMap) {
        for (name, value) in &self.set_response {
            headers.insert(name.clone(), value.clone());
        }
    }
}

/// `lb`: how a request picks one of a route's `upstreams`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lb {
    RoundRobin,
    LeastRequest,
    Random,
}

impl Lb {
    pub fn as_str(self) -> &'static str {
        match self {
            Lb::RoundRobin => "round_robin",
            Lb::LeastRequest => "least_request",
            Lb::Random => "random",
        }
    }
}

/// Active health checks: `health_path` and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub path: String,
    /// `health_interval` (10s).
    pub interval: Duration,
    /// `health_timeout` (2s).
    pub timeout: Duration,
    /// `healthy_threshold` (2): passes in a row that bring an address back.
    pub healthy_threshold: u32,
    /// `unhealthy_threshold` (2): failures in a row that take it out.
    pub unhealthy_threshold: u32,
}

/// TLS to a route's upstreams.
#[derive(Debug)]
pub struct UpstreamTls {
    pub config: Arc<rustls::ClientConfig>,
    /// Whether `tls_ca_file` replaced the system roots (for `check`).
    pub custom_ca: bool,
    pub client_cert: bool,
    pub server_name: Option<String>,
}

/// One address of a route.
#[derive(Debug)]
pub struct Target {
    pub authority: Authority,
    /// The name its certificate is checked against (and sent as SNI when a
    /// DNS name): `tls_server_name`, else the address's host.
    pub server_name: Option<ServerName<'static>>,
    /// Out of the rotation until this many milliseconds after
    /// [`Backends::epoch`] (0: in it), after a refused or reset connection.
    pub down_until: AtomicU64,
    /// Whether the last active checks took it out (until
    /// `healthy_threshold` passes in a row).
    pub check_failed: AtomicBool,
    /// Active checks in a row with the same outcome as the last one.
    pub streak: AtomicU32,
    /// Requests sent to it that have no answer's head yet.
    pub in_flight: AtomicUsize,
}

/// A route's upstreams: an `https://` upstream, or several.
#[derive(Debug)]
pub struct Backends {
    pub targets: Vec<Target>,
    pub https: bool,
    pub lb: Lb,
    pub tls: Option<UpstreamTls>,
    pub health: Option<HealthCheck>,
    /// `health_backoff` (10s): how long an address that refused or reset a
    /// connection stays out (with one address: never out).
    pub backoff: Duration,
    /// The next address for round robin.
    pub next: AtomicUsize,
    /// The start of [`Target::down_until`]'s clock.
    pub epoch: Instant,
}

impl PartialEq for Backends {
    fn eq(&self, other: &Backends) -> bool {
        std::ptr::eq(self, other)
    }
}
impl Eq for Backends {}

impl std::fmt::Display for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        for (i, t) in self.targets.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{scheme}://{}", t.authority)?;
        }
        Ok(())
    }
}

impl Backends {
    /// Milliseconds since [`Backends::epoch`].
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The upstream settings in words, for `portcullis check`.
    pub fn describe(&self) -> String {
        let mut out = format!("lb {}", self.lb.as_str());
        if let Some(tls) = &self.tls {
            out.push_str(if tls.custom_ca {
                ", tls_ca_file"
            } else {
                ", system roots"
            });
            if tls.client_cert {
                out.push_str(", client certificate");
            }
            if let Some(n) = &tls.server_name {
                out.push_str(&format!(", server name {n}"));
            }
        }
        match &self.health {
            Some(h) => out.push_str(&format!(
                ", health {} every {:?} (up after {}, down after {})",
                h.path, h.interval, h.healthy_threshold, h.unhealthy_threshold
            )),
            None if self.targets.len() > 1 => {
                out.push_str(&format!(", passive health (out {:?})", self.backoff))
            }
            None => {}
        }
        out
    }
}

impl std::fmt::Display for Forward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        match &self.prefix {
            Prefix::Keep => {}
            Prefix::Strip => parts.push("strip_prefix".into()),
            Prefix::Rewrite(p) => parts.push(format!("rewrite_prefix {p}")),
        }
        match &self.host {
            HostRule::Client => {}
            HostRule::Upstream => parts.push("Host: the upstream's".into()),
            HostRule::Fixed(v) => parts.push(format!("Host: {}", v.to_str().unwrap_or("?"))),
        }
        for (n, _) in &self.set_request {
            parts.push(format!("set {n}"));
        }
        let removed = self.drop_request.len() - self.set_request.len();
        for n in self.drop_request.iter().take(removed) {
            parts.push(format!("remove {n}"));
        }
        for (n, _) in &self.set_response {
            parts.push(format!("answer sets {n}"));
        }
        f.write_str(&parts.join(", "))
    }
}

impl super::RouteConfig {
    /// The route's upstream settings in words (for `portcullis check`);
    /// `None` when every one is at its default.
    pub fn upstream_settings(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Upstream::Balanced(b) = &self.upstream {
            parts.push(b.describe());
        }
        if let Some(f) = &self.forward {
            parts.push(f.to_string());
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// Reads `upstream`/`upstreams` and every option of route `i` (taking them
/// out of `r`); `None` when an upstream is unusable (the problem is added).
pub(super) fn read(
    p: &mut Problems,
    i: usize,
    r: &mut RawRoute,
    strip: &[String],
) -> Option<(Upstream, Option<Arc<Forward>>)> {
    let k = |field: &str| format!("route[{i}].{field}");
    let before = p.0.len();
    let listed: Vec<(String, String)> = match (r.upstream.take(), r.upstreams.take()) {
        (Some(_), Some(_)) => {
            p.add(k("upstreams"), "is set together with upstream; use one");
            return None;
        }
        (Some(u), None) => vec![(k("upstream"), u)],
        (None, Some(list)) => {
            if list.is_empty() {
                p.add(k("upstreams"), "is empty");
                return None;
            }
            list.into_iter()
                .enumerate()
                .map(|(j, u)| (format!("route[{i}].upstreams[{j}]"), u))
                .collect()
        }
        (None, None) => Vec::new(),
    };
    let forward = forward(p, i, r, strip);
    let upstream = match listed.as_slice() {
        [] => Upstream::None,
        [(_, only)] if only == "demo" => Upstream::Demo,
        _ => {
            let mut parsed = Vec::new();
            for (key, text) in &listed {
                match upstream_uri(text) {
                    Ok(u) => parsed.push((key.clone(), u)),
                    Err(m) => p.add(key.clone(), m),
                }
            }
            if parsed.len() != listed.len() {
                return None;
            }
            let https = parsed[0].1 .0;
            if parsed.iter().any(|(_, (s, _))| *s != https) {
                p.add(
                    k("upstreams"),
                    "mixes http:// and https://; one route speaks one of them",
                );
                return None;
            }
            backends(p, i, r, parsed, https)?
        }
    };
    let tls_keys = [
        ("tls_ca_file", r.tls_ca_file.is_some()),
        ("tls_client_cert_file", r.tls_client_cert_file.is_some()),
        ("tls_client_key_file", r.tls_client_key_file.is_some()),
        ("tls_server_name", r.tls_server_name.is_some()),
    ];
    for (name, set) in tls_keys {
        if set {
            p.add(k(name), "is set but the route has no https:// upstream");
        }
    }
    let balance_keys = [
        ("lb", r.lb.is_some()),
        ("health_path", r.health_path.is_some()),
        ("health_interval", r.health_interval.is_some()),
        ("health_timeout", r.health_timeout.is_some()),
        ("healthy_threshold", r.healthy_threshold.is_some()),
        ("unhealthy_threshold", r.unhealthy_threshold.is_some()),
        ("health_backoff", r.health_backoff.is_some()),
    ];
    for (name, set) in balance_keys {
        if set {
            p.add(
                k(name),
                "is set but the route has no upstreams = [...] or https:// upstream",
            );
        }
    }
    if p.0.len() != before {
        return None;
    }
    Some((upstream, forward))
}

/// `strip_prefix`, `rewrite_prefix`, `preserve_host`, `upstream_host` and
/// the header rules of route `i`.
fn forward(p: &mut Problems, i: usize, r: &mut RawRoute, strip: &[String]) -> Option<Arc<Forward>> {
    let k = |field: &str| format!("route[{i}].{field}");
    let route_path = r.path.clone().unwrap_or_else(|| "/".into());
    let prefix = match (r.strip_prefix.take(), r.rewrite_prefix.take()) {
        (Some(true), Some(_)) => {
            p.add(
                k("rewrite_prefix"),
                "is set together with strip_prefix = true; use one (rewrite_prefix = \"/\" strips)",
            );
            Prefix::Keep
        }
        (Some(true), None) if route_path.trim_end_matches('/').is_empty() => {
            p.add(
                k("strip_prefix"),
                "is true on path \"/\", which has no prefix to strip",
            );
            Prefix::Keep
        }
        (Some(true), None) => Prefix::Strip,
        (_, Some(to)) => match crate::path::normalize(&to) {
            Ok(n) if n == to && (to == "/" || !to.ends_with('/')) => {
                if to == "/" {
                    Prefix::Strip
                } else {
                    Prefix::Rewrite(to)
                }
            }
            _ => {
                p.add(
                    k("rewrite_prefix"),
                    format!("{to:?} is not a clean absolute path like \"/app\""),
                );
                Prefix::Keep
            }
        },
        (_, None) => Prefix::Keep,
    };
    let host = match (r.preserve_host.take(), r.upstream_host.take()) {
        (Some(true), Some(_)) => {
            p.add(
                k("upstream_host"),
                "is set together with preserve_host = true; use one",
            );
            HostRule::Client
        }
        (_, Some(h)) => match super::values::host(&h)
            .ok()
            .and_then(|_| HeaderValue::from_str(&h).ok())
        {
            Some(v) => HostRule::Fixed(v),
            None => {
                p.add(
                    k("upstream_host"),
                    format!("{h:?} is not a host name like \"app.internal\""),
                );
                HostRule::Client
            }
        },
        (Some(false), None) => HostRule::Upstream,
        _ => HostRule::Client,
    };
    let set_request = header_rules(
        p,
        &k("set_request_headers"),
        r.set_request_headers.take(),
        strip,
        Side::Request,
    );
    let mut drop_request = Vec::new();
    for (j, name) in r
        .remove_request_headers
        .take()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let key = format!("route[{i}].remove_request_headers[{j}]");
        if let Some(n) = rule_name(p, &key, name, strip, Side::Request) {
            drop_request.push(folded(&n));
        }
    }
    drop_request.extend(set_request.iter().map(|(n, _)| folded(n)));
    let set_response = header_rules(
        p,
        &k("set_response_headers"),
        r.set_response_headers.take(),
        strip,
        Side::Response,
    );
    let forward = Forward {
        prefix,
        host,
        set_request,
        drop_request,
        set_response,
    };
    let default = forward.prefix == Prefix::Keep
        && forward.host == HostRule::Client
        && forward.drop_request.is_empty()
        && forward.set_response.is_empty();
    (!default).then(|| Arc::new(forward))
}

fn folded(name: &HeaderName) -> String {
    name.as_str().replace('_', "-")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Request,
    Response,
}

fn header_rules(
    p: &mut Problems,
    key: &str,
    rules: Option<BTreeMap<String, String>>,
    strip: &[String],
    side: Side,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    for (name, value) in rules.unwrap_or_default() {
        let Some(n) = rule_name(p, key, &name, strip, side) else {
            continue;
        };
        match HeaderValue::from_str(&value) {
            Ok(v) => out.push((n, v)),
            Err(_) => p.add(
                key,
                format!("the value of {name:?} is not a valid header value"),
            ),
        }
    }
    out
}

/// Gateway-set headers that no request rule may name (besides the identity
/// headers): what `forwarded::from_client` drops from every client.
const GATEWAY_SET: [&str; 5] = [
    "forwarded",
    "x-real-ip",
    "x-original-url",
    "x-rewrite-url",
    "x-request-id",
];

/// A rule's header name, or the problem with it.
fn rule_name(
    p: &mut Problems,
    key: &str,
    name: &str,
    strip: &[String],
    side: Side,
) -> Option<HeaderName> {
    let Ok(n) = HeaderName::from_bytes(name.as_bytes()) else {
        p.add(key, format!("{name:?} is not a header name"));
        return None;
    };
    let b = n.as_str().as_bytes();
    let why = if crate::headers::is_identity_header(n.as_str()) {
        Some("is an identity header: only the gateway sets it")
    } else if strip.iter().any(|s| crate::headers::folded_eq(b, s)) {
        Some("is in server.strip_headers: no rule may send it")
    } else if side == Side::Request
        && (GATEWAY_SET.iter().any(|g| crate::headers::folded_eq(b, g))
            || (b.len() > 12 && crate::headers::folded_eq(&b[..12], "x-forwarded-")))
    {
        Some("is set by the gateway itself")
    } else if crate::headers::is_hop_by_hop(&n)
        || n == http::header::CONTENT_LENGTH
        || n == http::header::TRANSFER_ENCODING
    {
        Some("is a framing or hop-by-hop header")
    } else if side == Side::Request && (n == http::header::HOST || n == http::header::COOKIE) {
        Some("cannot be set by a rule (Host: preserve_host or upstream_host)")
    } else if side == Side::Response && n == http::header::SET_COOKIE {
        Some("cannot be set by a rule (the gateway's cookies)")
    } else {
        None
    };
    match why {
        Some(why) => {
            p.add(key, format!("{name:?} {why}"));
            None
        }
        None => Some(n),
    }
}

/// `(https, authority)` of an upstream URL.
fn upstream_uri(text: &str) -> Result<(bool, Authority), String> {
    let uri: http::Uri = text
        .parse()
        .map_err(|_| format!("{text:?} is not a URL like \"http://127.0.0.1:3000\""))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(format!("{text:?} must start with http:// or https://")),
    };
    if uri.path() != "/" && !uri.path().is_empty() || uri.query().is_some() {
        return Err(format!(
            "{text:?} must not have a path: requests keep their own path (see strip_prefix, rewrite_prefix)"
        ));
    }
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| format!("{text:?} has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!("{text:?} must not hold a user name or password"));
    }
    // The port is always written out: `Host` and the pool key say it.
    let authority = match authority.port_u16() {
        Some(_) => authority,
        None => {
            let port = if https { 443 } else { 80 };
            format!("{}:{port}", authority.host())
                .parse()
                .map_err(|_| format!("{text:?} has no valid host"))?
        }
    };
    Ok((https, authority))
}

/// The [`Backends`] of route `i` (or a plain [`Upstream::Http`] when it is
/// one `http://` address).
fn backends(
    p: &mut Problems,
    i: usize,
    r: &mut RawRoute,
    parsed: Vec<(String, (bool, Authority))>,
    https: bool,
) -> Option<Upstream> {
    let k = |field: &str| format!("route[{i}].{field}");
    if parsed.len() == 1 && !https && r.lb.is_none() && r.health_path.is_none() {
        let (_, (_, authority)) = parsed.into_iter().next()?;
        return Some(Upstream::Http { authority });
    }
    let lb = match r.lb.take().as_deref() {
        None | Some("round_robin") => Lb::RoundRobin,
        Some("least_request") => Lb::LeastRequest,
        Some("random") => Lb::Random,
        Some(other) => {
            p.add(
                k("lb"),
                format!("{other:?} is not one of \"round_robin\", \"least_request\", \"random\""),
            );
            Lb::RoundRobin
        }
    };
    let duration = |p: &mut Problems, key: &str, v: Option<String>, default: Duration| match v {
        None => default,
        Some(t) => p
            .check(&k(key), super::values::duration(&t))
            .unwrap_or(default),
    };
    let backoff = duration(
        p,
        "health_backoff",
        r.health_backoff.take(),
        Duration::from_secs(10),
    );
    let interval = duration(
        p,
        "health_interval",
        r.health_interval.take(),
        Duration::from_secs(10),
    );
    let timeout = duration(
        p,
        "health_timeout",
        r.health_timeout.take(),
        Duration::from_secs(2),
    );
    let healthy_threshold = r.healthy_threshold.take().unwrap_or(2);
    let unhealthy_threshold = r.unhealthy_threshold.take().unwrap_or(2);
    for (name, v) in [
        ("healthy_threshold", healthy_threshold),
        ("unhealthy_threshold", unhealthy_threshold),
    ] {
        if v == 0 {
            p.add(k(name), "must be at least 1");
        }
    }
    if interval.is_zero() {
        p.add(k("health_interval"), "must be longer than 0s");
    }
    let health = match r.health_path.take() {
        None => None,
        Some(path) => match crate::path::normalize(&path) {
            Ok(n) if n == path => Some(HealthCheck {
                path,
                interval,
                timeout,
                healthy_threshold,
                unhealthy_threshold,
            }),
            _ => {
                p.add(
                    k("health_path"),
                    format!("{path:?} is not a clean absolute path like \"/healthz\""),
                );
                None
            }
        },
    };
    let server_name = r.tls_server_name.take();
    let tls = if https {
        super::upstream_tls::tls_client(p, i, r, server_name.clone())
    } else {
        None
    };
    let mut targets = Vec::with_capacity(parsed.len());
    for (key, (_, authority)) in parsed {
        let name = match (&server_name, https) {
            (_, false) => None,
            (Some(n), true) => match ServerName::try_from(n.clone()) {
                Ok(n) => Some(n),
                Err(_) => {
                    p.add(k("tls_server_name"), format!("{n:?} is not a host name"));
                    None
                }
            },
            (None, true) => {
                let host = authority
                    .host()
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                match ServerName::try_from(host.to_string()) {
                    Ok(n) => Some(n),
                    Err(_) => {
                        p.add(key, format!("{host:?} is not a host name for TLS"));
                        None
                    }
                }
            }
        };
        targets.push(Target {
            authority,
            server_name: name,
            down_until: AtomicU64::new(0),
            check_failed: AtomicBool::new(false),
            streak: AtomicU32::new(0),
            in_flight: AtomicUsize::new(0),
        });
    }
    Some(Upstream::Balanced(Arc::new(Backends {
        targets,
        https,
        lb,
        tls,
        health,
        backoff,
        next: AtomicUsize::new(0),
        epoch: Instant::now(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(prefix: Prefix) -> Forward {
        Forward {
            prefix,
            host: HostRule::Client,
            set_request: Vec::new(),
            drop_request: Vec::new(),
            set_response: Vec::new(),
        }
    }

    #[test]
    fn prefixes_come_off_by_whole_segments() {
        let s = fwd(Prefix::Strip);
        let cases = [
            ("/grafana", "/grafana", "/"),
            ("/grafana", "/grafana/", "/"),
            ("/grafana", "/grafana/x/y", "/x/y"),
            ("/grafana", "/GRAFANA;v=1/x", "/x"),
            ("/grafana", "/grafana./x", "/x"),
            ("/a/b", "/a/b/c", "/c"),
        ];
        for (route, path, out) in cases {
            assert_eq!(s.path(route, path), Some(out.to_string()), "{route} {path}");
        }
        let r = fwd(Prefix::Rewrite("/new".into()));
        assert_eq!(r.path("/old", "/old"), Some("/new".into()));
        assert_eq!(r.path("/old", "/old/"), Some("/new/".into()));
        assert_eq!(r.path("/old", "/old/x"), Some("/new/x".into()));
        assert_eq!(fwd(Prefix::Keep).path("/old", "/old/x"), None);
    }
}
