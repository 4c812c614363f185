//! The gateway's configuration: `gateway.toml` parsed once into typed values.
//!
//! Two layers, as in river: [`raw`] mirrors the file (serde, unknown keys are
//! errors) and [`Config`] holds what the rest of the program uses (socket
//! addresses, durations, enums, resolved secrets). Every problem names the
//! file and the key; all problems are collected before failing. Secrets never
//! sit in the file: `*_env` names an environment variable and `*_file` a
//! file, both read here and nowhere else.

mod access;
mod error;
mod providers;
mod raw;
pub mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

pub use access::ShareConfig;
use error::Problems;
pub use error::{ConfigError, Problem};
pub use providers::{is_loopback_host, provider_url, ProviderConfig, ProviderKind};
use raw::RawConfig;
pub use values::Rate;

/// The configuration used when no `--config` is given and there is no
/// `./gateway.toml`: the demo app behind email sign-in, mail printed to the
/// terminal and written to `./mail`, everything in memory.
pub const EMBEDDED_DEFAULT: &str = include_str!("embedded.toml");

/// Name used for the embedded default in messages.
pub const EMBEDDED_NAME: &str = "<embedded default>";

/// Key material. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from (or [`EMBEDDED_NAME`]).
    pub source: String,
    pub server: ServerConfig,
    pub session: SessionConfig,
    pub login: LoginConfig,
    pub mail: MailConfig,
    pub store: StoreConfig,
    pub ui: UiConfig,
    pub log: LogConfig,
    pub admin: AdminConfig,
    /// `[groups]` and `[login] groups_file`, resolved into lookups.
    pub groups: crate::groups::Groups,
    /// `[assertion]`: the signed identity for upstreams (absent: off).
    pub assertion: Option<crate::assertion::Settings>,
    pub routes: Vec<RouteConfig>,
    /// `[[token]]`: machine tokens.
    pub tokens: crate::token::Tokens,
    /// `[share]`: share links.
    pub share: ShareConfig,
    /// `[[provider]]`: identity providers beside the email link.
    pub providers: Vec<ProviderConfig>,
    /// Things that are allowed but probably not meant (printed at start and
    /// by `portcullis check`).
    pub warnings: Vec<String>,
}

/// `[admin]`: a listener of its own for probes and metrics (absent = off).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminConfig {
    pub listen: Option<SocketAddr>,
    /// Whether `/metrics` is served there and requests are counted for it
    /// (default true; only with `listen`).
    pub metrics: bool,
}

impl AdminConfig {
    /// Whether the per-request metrics are counted: only when someone can
    /// scrape them.
    pub fn counts_requests(&self) -> bool {
        self.listen.is_some() && self.metrics
    }
}

/// `[log]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogConfig {
    /// Where the audit trail is appended (JSON lines), besides the
    /// `portcullis::audit` tracing target; reopened on SIGHUP.
    pub audit_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// `server.public_url`, split into what links are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    pub scheme: Scheme,
    /// Lowercase host name (or IP literal), no port.
    pub host: String,
    /// Only when not the scheme's default.
    pub port: Option<u16>,
}

impl PublicUrl {
    /// `scheme://host[:port]` for `host` (a configured host name, which
    /// may carry its own port).
    pub fn origin_for(&self, host: &str) -> String {
        let has_port = if host.starts_with('[') {
            host.contains("]:")
        } else {
            host.contains(':')
        };
        match (has_port, self.port) {
            (false, Some(p)) => format!("{}://{}:{}", self.scheme.as_str(), host, p),
            _ => format!("{}://{}", self.scheme.as_str(), host),
        }
    }
    /// The origin of the public URL itself.
    pub fn origin(&self) -> String {
        self.origin_for(&self.host)
    }
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_header_count: usize,
    pub max_header_bytes: usize,
    pub max_uri_bytes: usize,
    /// Request-body limit on the gateway's own endpoints.
    pub max_body_bytes: usize,
    /// Also bounds how long an idle HTTP/1 keep-alive connection waits for
    /// its next request (hyper runs one timer for both).
    pub header_read_timeout: Duration,
    /// Longest wait between two reads of a request body on its way to an
    /// upstream; then 408, and the upstream connection is closed.
    pub body_read_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    pub shutdown_timeout: Duration,
    /// The own fast paths (`[server] fast_path`): HTTP/1.1 requests
    /// without a body or with a `Content-Length` one served by the own loop
    /// and sent upstream over raw connections. Off, hyper serves and sends everything: a kill switch,
    /// and the oracle the test suites compare against.
    pub fast_path: bool,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Worker threads, each with its own runtime (0 in the file = one per core).
    pub threads: usize,
    pub listen: Option<SocketAddr>,
    pub tls: Option<TlsConfig>,
    pub public_url: PublicUrl,
    pub trusted_proxies: Vec<IpNet>,
    /// Request headers dropped on the way upstream besides the built-in
    /// identity and `X-Forwarded-*` names: lowercase, `_` written `-`
    /// (`[server] strip_headers`).
    pub strip_headers: Vec<String>,
    pub limits: Limits,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// None: a random key is made at start (sessions do not survive a
    /// restart and are not shared between instances).
    pub secret: Option<Secret>,
    pub lifetime: Duration,
    pub idle_timeout: Duration,
    /// Without a leading dot, lowercase.
    pub cookie_domain: Option<String>,
    /// How long a session checked against the store is trusted in process.
    pub revalidate: Duration,
    /// How long a session the process knows keeps working while the store
    /// cannot be reached.
    pub store_grace: Duration,
}

/// Who may pass: exact addresses, whole domains and groups (any one
/// suffices). Empty = anyone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    pub emails: BTreeSet<String>,
    pub domains: BTreeSet<String>,
    /// `allow_groups` (routes only), by number ([`crate::groups::Groups::id`]).
    pub groups: Vec<crate::groups::GroupId>,
}

impl AllowList {
    pub fn is_empty(&self) -> bool {
        self.emails.is_empty() && self.domains.is_empty() && self.groups.is_empty()
    }
    /// `email` must already be normalised; `groups` are its groups
    /// ([`crate::groups::Groups::of`]).
    #[inline]
    pub fn allows(&self, email: &str, groups: Option<&crate::groups::Membership>) -> bool {
        if self.is_empty() || self.emails.contains(email) {
            return true;
        }
        let domain = email.rsplit_once('@').map(|(_, d)| d);
        if domain.is_some_and(|d| self.domains.contains(d)) {
            return true;
        }
        !self.groups.is_empty() && groups.is_some_and(|g| g.any_of(&self.groups))
    }
}

#[derive(Debug, Clone)]
pub struct LoginConfig {
    pub link_ttl: Duration,
    pub allow: AllowList,
    /// `[login] groups_file`: more groups, in the format of `[groups]`
    /// (read at load, so again on every reload).
    pub groups_file: Option<PathBuf>,
    pub address_rate: Rate,
    pub ip_rate: Rate,
    pub resend_delay: Duration,
    pub code_attempts: u32,
    /// Sign-in attempts stored per client IP (IPv6: per /64) within any
    /// `link_ttl`; beyond it a request gets the same answer, nothing is
    /// stored and no mail is sent.
    pub max_pending_per_ip: u64,
    /// Sign-in attempts stored in total within any `link_ttl` (the same
    /// rule); also sets the memory store's hard bound on sign-in state.
    pub max_pending: u64,
    /// `[login] email`: whether the email form is shown and served
    /// (default true; false leaves only the `[[provider]]` buttons).
    pub email: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    Tls,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum MailTransport {
    Console {
        dir: Option<PathBuf>,
    },
    /// `fsync`: each file is flushed to disk before it counts as sent.
    File {
        dir: PathBuf,
        fsync: bool,
    },
    Smtp(SmtpConfig),
}

#[derive(Debug, Clone)]
pub struct MailConfig {
    pub from: String,
    pub transport: MailTransport,
    pub queue_capacity: usize,
}

#[derive(Debug, Clone)]
// Made once per load; boxing would only add a step for every reader.
#[allow(clippy::large_enum_variant)]
pub enum StoreConfig {
    Memory,
    Redis(store::RedisSettings),
}

/// `[ui]`: branding of the gateway's pages and mail (see `docs/pages.md`).
#[derive(Debug, Clone)]
pub struct UiConfig {
    /// The site's name, on every page and in the mail.
    pub title: String,
    /// `#rgb` or `#rrggbb`; the pages derive accessible shades from it.
    pub accent: String,
    /// An image URL for the pages: a path on the same site (`/static/x.svg`,
    /// which must be reachable without signing in) or a `data:image/` URL
    /// (what `logo_file` becomes).
    pub logo: Option<String>,
    pub footer: Option<String>,
    /// `[ui] templates`, the override folder, if any.
    pub templates_dir: Option<PathBuf>,
    /// Overrides read from that folder, by file name (`login.html`,
    /// `style.css`, …), each already checked with
    /// [`crate::theme::template::check_override`].
    pub templates: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Authenticated,
    Public,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// `http://host:port`: requests keep their (normalised) path.
    Http { authority: http::uri::Authority },
    /// The built-in demo app, answered in process.
    Demo,
    /// No upstream: the route only answers forward-auth questions
    /// (`/.portcullis/auth`) for another proxy; requests to it here are 404.
    None,
    /// An `https://` upstream, or several (`upstreams`): balanced, with
    /// their health ([`route_options`]).
    Balanced(std::sync::Arc<Backends>),
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Upstream::Http { authority } => write!(f, "http://{authority}"),
            Upstream::Demo => f.write_str("demo"),
            Upstream::None => f.write_str("none (forward-auth only)"),
            Upstream::Balanced(b) => write!(f, "{b}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub name: String,
    /// Normalised (see [`values::host`]); None = any host.
    pub host: Option<String>,
    /// Starts with `/`, no trailing slash except for `/` itself.
    pub path: String,
    pub upstream: Upstream,
    pub access: Access,
    pub allow: AllowList,
    /// `methods`: the route matches only these (uppercase); `None`: any.
    pub methods: Option<Vec<http::Method>>,
    /// `bypass_networks`: client addresses (after `trusted_proxies`) that
    /// pass without a session, and without identity headers.
    pub bypass_networks: Vec<IpNet>,
    /// `deny = true`: 403 to everyone, signed in or not.
    pub deny: bool,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// The prefix, `Host` and header rules; `None`: every one at its
    /// default (the request goes as it came).
    pub forward: Option<std::sync::Arc<Forward>>,
}

/// Where `*_env` values come from; tests pass a map.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<const N: usize> Environment for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

impl Config {
    /// Reads and converts a file, with secrets from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::single(&file, "", format!("cannot read the file: {e}")))?;
        Config::from_toml_str(&text, &file, &ProcessEnv)
    }

    /// The embedded default.
    pub fn embedded() -> Result<Config, ConfigError> {
        Config::from_toml_str(EMBEDDED_DEFAULT, EMBEDDED_NAME, &ProcessEnv)
    }

    /// Parses `text` (named `file` in messages).
    pub fn from_toml_str(
        text: &str,
        file: &str,
        env: &dyn Environment,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| syntax_error(text, file, &e))?;
        let mut p = Problems::default();
        let config = convert::config(raw, file, env, &mut p);
        match config {
            Some(c) if p.0.is_empty() => Ok(c),
            _ => Err(ConfigError {
                file: file.to_string(),
                problems: p.0,
            }),
        }
    }

    /// All configured route host names (lowercase, without port).
    pub fn route_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .routes
            .iter()
            .filter_map(|r| r.host.as_deref())
            .map(|h| strip_port(h).to_string())
            .collect();
        hosts.sort();
        hosts.dedup();
        hosts
    }
}

/// `host:port` → `host` (IPv6 literals keep their brackets).
pub fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(i) => &host[..=i],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((h, _)) => h,
        None => host,
    }
}

fn syntax_error(text: &str, file: &str, e: &toml::de::Error) -> ConfigError {
    let line = e
        .span()
        .map(|s| text.get(..s.start).unwrap_or("").matches('\n').count() + 1);
    let message = e.message().to_string();
    // serde names the offending key in its message for unknown fields;
    // pull it out so the key is reported in the usual place too.
    // For a value of the wrong type it names none: take the key from the
    // line the value is on, under its table.
    // An unknown key is named with its table (`store.urll`), found from
    // where it stands in the file, as a key of the wrong type is.
    let key = match message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
    {
        Some(key) => e
            .span()
            .and_then(|s| key_at(text, s.start))
            .filter(|full| full == key || full.ends_with(&format!(".{key}")))
            .unwrap_or_else(|| key.to_string()),
        None => e
            .span()
            .and_then(|s| key_at(text, s.start))
            .unwrap_or_default(),
    };
    ConfigError {
        file: file.to_string(),
        problems: vec![Problem { key, message, line }],
    }
}

/// The full name of the key whose value starts at byte `at` of `text`, as
/// the other errors name keys (`mail.file.fsync`, `route[1].timeout`):
/// the `key =` at the start of that line, after the nearest table header
/// above it. `None` when the line does not start with a key (a value
/// continued from an earlier line).
fn key_at(text: &str, at: usize) -> Option<String> {
    let before = text.get(..at)?;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let (key, _) = text.get(start..)?.split_once('=')?;
    let key = key.trim();
    let bare = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if key.is_empty() || !key.chars().all(bare) {
        return None;
    }
    let lines: Vec<&str> = text.get(..start)?.lines().map(str::trim).collect();
    let Some(i) = lines.iter().rposition(|l| l.starts_with('[')) else {
        return Some(key.to_string());
    };
    let header = lines[i];
    let table = match array_name(header) {
        Some(name) => {
            let index = lines[..i]
                .iter()
                .filter(|l| array_name(l) == Some(name))
                .count();
            format!("{name}[{index}]")
        }
        None => header
            .trim_start_matches('[')
            .split(']')
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
    };
    Some(format!("{table}.{key}"))
}

/// The name in an array-of-tables header (`route` of `[[route]]`).
fn array_name(line: &str) -> Option<&str> {
    line.strip_prefix("[[")
        .and_then(|r| r.split("]]").next())
        .map(str::trim)
}

mod assertion;
mod convert;
mod demo;
mod groups;
pub mod redis_url;
mod restart;
pub mod route_options;
pub mod store;
mod upstream_tls;
pub use route_options::{Backends, Forward};
mod ui;

#[cfg(test)]
mod tests;
