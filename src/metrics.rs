//! The gateway's metrics, served as Prometheus text on the admin listener
//! (`GET /metrics`).
//!
//! # What it owns
//!
//! The counters that only the request hub and the sign-in flow can count:
//! requests by method and status, their duration, requests in flight,
//! authorization decisions, sign-ins, sign-in requests, sessions revoked
//! and configuration reloads. Each is a fixed array of atomics indexed by
//! small enums, so counting is one relaxed `fetch_add` with no lock, no
//! hashing and no allocation. The text is made only at scrape time, by
//! `prometheus-client`'s encoder, from a [`Snapshot`].
//!
//! # What it does not own
//!
//! Counters kept by their own modules and read at scrape time: mail
//! results ([`crate::mail::MailStats`]) and store errors
//! ([`crate::store::Store::error_counts`]), and whether the store is up.
//!
//! # Labels
//!
//! No label ever carries an address, a path, a host or anything a client
//! chose: methods outside the standard nine are `other`, and every other
//! label value is one of a fixed list. So the number of series is bounded
//! whatever the traffic.
//!
//! # Cost
//!
//! The request families (`portcullis_requests_total`,
//! `portcullis_request_duration_seconds`, `portcullis_requests_in_flight`)
//! are counted only when `[admin] listen` is set and `[admin] metrics` is
//! not false: they are the ones on the hot path (two clock reads and three
//! atomic additions per request). The rest are counted always (they happen
//! at sign-in speed).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::{Method, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The `Content-Type` of a scrape (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Method labels: the nine standard methods, then `other`.
const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "other",
];

fn method_index(m: &Method) -> usize {
    match *m {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::PATCH => 5,
        Method::OPTIONS => 6,
        Method::CONNECT => 7,
        Method::TRACE => 8,
        _ => 9,
    }
}

/// Status codes 100 to 599, one slot each.
const CODES: usize = 500;

/// Upper bounds of the duration buckets, in nanoseconds (1 ms to 10 s:
/// Prometheus' default buckets with 1 ms and 2.5 ms added below them, as
/// a proxy's answers are mostly sub-10 ms).
const BUCKETS_NS: [u64; 13] = [
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// One method's request durations: per-bucket counts (not cumulative;
/// the encoder adds them up), their sum and their number.
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS_NS.len()],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, ns: u64) {
        if let Some(i) = BUCKETS_NS.iter().position(|&b| ns <= b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.sum_ns.fetch_add(ns, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }
}

/// Which endpoint made an authorization decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthzEndpoint {
    /// A request the gateway proxies.
    Proxy,
    /// `/.portcullis/auth` (nginx `auth_request`).
    Auth,
    /// `/.portcullis/forward-auth` (Traefik, Caddy).
    ForwardAuth,
}

const ENDPOINTS: [&str; 3] = ["proxy", "auth", "forward_auth"];

/// What the decision was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthzDecision {
    Allow,
    Unauthenticated,
    Forbidden,
}

const DECISIONS: [&str; 3] = ["allow", "unauthenticated", "forbidden"];

/// How a sign-in was finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigninMethod {
    /// The link, confirmed on its landing page.
    Link,
    /// The code, typed in the browser that asked.
    Code,
    /// An OpenID Connect provider (`[[provider]]`, kind `oidc`).
    Oidc,
    /// GitHub's OAuth2 (`[[provider]]`, kind `github`).
    Github,
}

const SIGNIN_METHODS: [&str; 4] = ["link", "code", "oidc", "github"];

impl SigninMethod {
    /// `link`, `code`, `oidc` or `github`.
    pub fn as_str(self) -> &'static str {
        SIGNIN_METHODS[self as usize]
    }
}
const OUTCOMES: [&str; 2] = ["success", "failure"];

/// What became of a request for a sign-in mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigninRequest {
    /// A mail was queued.
    Queued,
    /// A rate limit, the resend delay or a pending cap held it back.
    RateLimited,
    /// The address may not sign in (no route allows it).
    NotAllowed,
}

const SIGNIN_REQUESTS: [&str; 3] = ["queued", "rate_limited", "not_allowed"];

/// The counters, shared through [`crate::state::App`].
pub struct Metrics {
    /// Whether the request families are counted (see "Cost").
    requests_on: bool,
    /// `METHODS.len() × CODES` counters, method-major.
    requests: Box<[AtomicU64]>,
    durations: [Histogram; METHODS.len()],
    in_flight: AtomicI64,
    authz: [[AtomicU64; DECISIONS.len()]; ENDPOINTS.len()],
    signins: [[AtomicU64; OUTCOMES.len()]; SIGNIN_METHODS.len()],
    signin_requests: [AtomicU64; SIGNIN_REQUESTS.len()],
    sessions_revoked: AtomicU64,
    reload_ok: AtomicBool,
    /// Unix seconds of the last successful (re)load.
    reload_at: AtomicU64,
}

/// A request being served: counted in flight until dropped (also when the
/// client goes away and the request's future is dropped unfinished).
pub struct InFlight<'a> {
    metrics: &'a Metrics,
    started: Instant,
}

impl InFlight<'_> {
    /// When the request began (for the log line too: one clock read).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Counts the finished request: its status and how long its answer's
    /// head took.
    pub fn done(self, method: &Method, status: StatusCode) {
        let m = method_index(method);
        let code = usize::from(status.as_u16())
            .saturating_sub(100)
            .min(CODES - 1);
        let ns = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.metrics.requests[m * CODES + code].fetch_add(1, Relaxed);
        self.metrics.durations[m].observe(ns);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.metrics.in_flight.fetch_sub(1, Relaxed);
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Metrics {
    /// New counters; `requests_on` switches the request families.
    pub fn new(requests_on: bool) -> Metrics {
        Metrics {
            requests_on,
            requests: (0..METHODS.len() * CODES)
                .map(|_| AtomicU64::new(0))
                .collect(),
            durations: Default::default(),
            in_flight: AtomicI64::new(0),
            authz: Default::default(),
            signins: Default::default(),
            signin_requests: Default::default(),
            sessions_revoked: AtomicU64::new(0),
            reload_ok: AtomicBool::new(true),
            reload_at: AtomicU64::new(now_unix()),
        }
    }

    /// A request begins; `None` when the request families are off.
    pub fn request(&self) -> Option<InFlight<'_>> {
        if !self.requests_on {
            return None;
        }
        self.in_flight.fetch_add(1, Relaxed);
        Some(InFlight {
            metrics: self,
            started: Instant::now(),
        })
    }

    /// One authorization decision.
    pub fn authz(&self, endpoint: AuthzEndpoint, decision: AuthzDecision) {
        self.authz[endpoint as usize][decision as usize].fetch_add(1, Relaxed);
    }

    /// One finished sign-in attempt (a link landing or a typed code).
    pub fn signin(&self, method: SigninMethod, success: bool) {
        self.signins[method as usize][usize::from(!success)].fetch_add(1, Relaxed);
    }

    /// One request for a sign-in mail.
    pub fn signin_request(&self, outcome: SigninRequest) {
        self.signin_requests[outcome as usize].fetch_add(1, Relaxed);
    }

    /// `n` sessions ended before their time (sign-out, revocation).
    pub fn sessions_revoked(&self, n: u64) {
        self.sessions_revoked.fetch_add(n, Relaxed);
    }

    /// A configuration reload ended (`ok`) or failed.
    pub fn reloaded(&self, ok: bool) {
        self.reload_ok.store(ok, Relaxed);
        if ok {
            self.reload_at.store(now_unix(), Relaxed);
        }
    }

    /// The text of one scrape: these counters and `others`.
    pub fn render(&self, others: Others) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.snapshot(others)));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
        text
    }

    fn snapshot(&self, others: Others) -> Snapshot {
        let load = |a: &AtomicU64| a.load(Relaxed);
        let mut requests = Vec::new();
        for (m, method) in METHODS.iter().enumerate() {
            for code in 0..CODES {
                let n = load(&self.requests[m * CODES + code]);
                if n > 0 {
                    requests.push((*method, (code + 100) as u16, n));
                }
            }
        }
        let durations = METHODS
            .iter()
            .zip(&self.durations)
            .filter(|(_, h)| load(&h.count) > 0)
            .map(|(method, h)| HistogramValues {
                method,
                buckets: h.buckets.iter().map(load).collect(),
                sum_ns: load(&h.sum_ns),
                count: load(&h.count),
            })
            .collect();
        Snapshot {
            requests_on: self.requests_on,
            requests,
            durations,
            in_flight: self.in_flight.load(Relaxed),
            authz: self.authz.each_ref().map(|row| row.each_ref().map(load)),
            signins: self.signins.each_ref().map(|row| row.each_ref().map(load)),
            signin_requests: self.signin_requests.each_ref().map(load),
            sessions_revoked: load(&self.sessions_revoked),
            reload_ok: self.reload_ok.load(Relaxed),
            reload_at: load(&self.reload_at),
            others,
        }
    }
}

/// What other modules count, read at scrape time.
#[derive(Debug, Clone)]
pub struct Others {
    pub mail: crate::mail::MailStats,
    /// `(operation, errors)` for every store operation.
    pub store_errors: Vec<(&'static str, u64)>,
    pub store_up: bool,
}

#[derive(Debug)]
struct HistogramValues {
    method: &'static str,
    buckets: Vec<u64>,
    sum_ns: u64,
    count: u64,
}

/// Every value of one scrape, copied out of the atomics.
#[derive(Debug)]
struct Snapshot {
    requests_on: bool,
    requests: Vec<(&'static str, u16, u64)>,
    durations: Vec<HistogramValues>,
    in_flight: i64,
    authz: [[u64; DECISIONS.len()]; ENDPOINTS.len()],
    signins: [[u64; OUTCOMES.len()]; SIGNIN_METHODS.len()],
    signin_requests: [u64; SIGNIN_REQUESTS.len()],
    sessions_revoked: u64,
    reload_ok: bool,
    reload_at: u64,
    others: Others,
}

type Fmt = Result<(), std::fmt::Error>;

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> Fmt {
    e.encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, u64, f64>(&v, None)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> Fmt {
    e.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&v)
}

/// A counter family: one sample per `(labels, value)` row.
fn counters<const N: usize>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = ([(&'static str, String); N], u64)>,
) -> Fmt {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        m.encode_family(&labels)?
            .encode_counter::<NoLabelSet, u64, f64>(&v, None)?;
    }
    Ok(())
}

/// The rows of a counter family kept as a grid: `values[i][j]` labelled
/// `rows.0 = rows.1[i]`, then `cols.0 = cols.1[j]`.
fn grid<'a, const I: usize, const J: usize>(
    rows: (&'static str, &'a [&'static str; I]),
    cols: (&'static str, &'a [&'static str; J]),
    values: &'a [[u64; J]; I],
) -> impl Iterator<Item = ([(&'static str, String); 2], u64)> + 'a {
    rows.1.iter().zip(values).flat_map(move |(row, line)| {
        cols.1
            .iter()
            .zip(line)
            .map(move |(col, &n)| ([(rows.0, row.to_string()), (cols.0, col.to_string())], n))
    })
}

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> Fmt {
        let e = &mut e;
        if self.requests_on {
            counters(
                e,
                "portcullis_requests",
                "Requests answered, by method and status code.",
                self.requests.iter().map(|&(method, code, n)| {
                    (
                        [("code", code.to_string()), ("method", method.to_string())],
                        n,
                    )
                }),
            )?;
            let mut m = e.encode_descriptor(
                "portcullis_request_duration_seconds",
                "Time until the head of the answer was ready, by method.",
                None,
                MetricType::Histogram,
            )?;
            for h in &self.durations {
                let buckets: Vec<(f64, u64)> = BUCKETS_NS
                    .iter()
                    .zip(&h.buckets)
                    .map(|(&b, &n)| (b as f64 / 1e9, n))
                    .collect();
                m.encode_family(&[("method", h.method)])?
                    .encode_histogram::<NoLabelSet>(
                        h.sum_ns as f64 / 1e9,
                        h.count,
                        &buckets,
                        None,
                    )?;
            }
            gauge(
                e,
                "portcullis_requests_in_flight",
                "Requests being served now.",
                self.in_flight,
            )?;
        }
        counters(
            e,
            "portcullis_authz",
            "Authorization decisions, by endpoint (proxy, auth, forward_auth) and decision.",
            grid(
                ("endpoint", &ENDPOINTS),
                ("decision", &DECISIONS),
                &self.authz,
            ),
        )?;
        counters(
            e,
            "portcullis_signin",
            "Sign-ins finished with a link or a code, by method and outcome.",
            grid(
                ("method", &SIGNIN_METHODS),
                ("outcome", &OUTCOMES),
                &self.signins,
            ),
        )?;
        counters(
            e,
            "portcullis_signin_requests",
            "Requests for a sign-in mail, by outcome.",
            SIGNIN_REQUESTS
                .iter()
                .zip(self.signin_requests)
                .map(|(outcome, n)| ([("outcome", outcome.to_string())], n)),
        )?;
        let mail = &self.others.mail;
        counters(
            e,
            "portcullis_mail",
            "Sign-in mails by result: sent, retried (one per retry), failed, dropped (queue full).",
            [
                ("sent", mail.sent),
                ("retried", mail.retried),
                ("failed", mail.failed),
                ("dropped", mail.dropped),
            ]
            .map(|(result, n)| ([("result", result.to_string())], n)),
        )?;
        counters(
            e,
            "portcullis_store_errors",
            "Store operations that failed, by operation.",
            self.others
                .store_errors
                .iter()
                .map(|&(op, n)| ([("op", op.to_string())], n)),
        )?;
        gauge(
            e,
            "portcullis_store_up",
            "1 when the store answers (always 1 for the memory store).",
            i64::from(self.others.store_up),
        )?;
        counter(
            e,
            "portcullis_sessions_revoked",
            "Sessions ended before their time on this instance (sign-out).",
            self.sessions_revoked,
        )?;
        gauge(
            e,
            "portcullis_config_last_reload_success",
            "1 when the last configuration (re)load succeeded.",
            i64::from(self.reload_ok),
        )?;
        gauge(
            e,
            "portcullis_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration (re)load.",
            i64::try_from(self.reload_at).unwrap_or(i64::MAX),
        )?;
        e.encode_descriptor(
            "portcullis_build_info",
            "Always 1; the version is in the label.",
            None,
            MetricType::Gauge,
        )?
        .encode_family(&[("version", env!("CARGO_PKG_VERSION"))])?
        .encode_gauge(&1i64)
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    fn others() -> Others {
        Others {
            mail: crate::mail::MailStats::default(),
            store_errors: vec![("get_session", 2)],
            store_up: true,
        }
    }

    #[test]
    fn a_request_is_counted_by_method_and_code_and_leaves_flight() {
        let m = Metrics::new(true);
        let f = m.request().expect("on");
        assert_eq!(m.in_flight.load(Relaxed), 1);
        f.done(
            &Method::from_bytes(b"BREW").expect("a token"),
            StatusCode::IM_A_TEAPOT,
        );
        let text = m.render(others());
        assert!(
            text.contains("portcullis_requests_total{code=\"418\",method=\"other\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("portcullis_requests_in_flight 0\n"), "{text}");
        assert!(
            text.contains("portcullis_request_duration_seconds_count{method=\"other\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("portcullis_store_errors_total{op=\"get_session\"} 2\n"),
            "{text}"
        );
    }

    #[test]
    fn off_means_no_request_families_and_no_clock() {
        let m = Metrics::new(false);
        assert!(m.request().is_none());
        let text = m.render(others());
        assert!(!text.contains("portcullis_requests_total"), "{text}");
        assert!(text.contains("portcullis_build_info{version=\""), "{text}");
    }
}
