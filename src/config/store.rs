//! `[store]`: which backend, and for Redis how to reach it (one server,
//! a Sentinel-watched master or a Cluster), with which credentials and TLS
//! files. Parsed once into [`StoreConfig`]; the store opens connections
//! from [`RedisSettings`] as they are.
//!
//! # What it owns
//!
//! - The rules between keys (`url` or `urls`; `sentinel_master` only and
//!   always with `mode = "sentinel"`; TLS files only with `rediss://`; a
//!   client certificate with its key), each error naming its key.
//! - Reading passwords (`password_env`/`password_file`, and the Sentinels'
//!   own) and TLS files once, at load.
//! - Redaction: `Debug` never shows a password, neither a configured one
//!   nor one inside a URL, nor a private key.
//!
//! # What it does not own
//!
//! Connecting (`crate::store`), and which URLs the Redis client accepts
//! ([`super::redis_url`]).

use std::fmt;
use std::time::Duration;

use super::error::Problems;
use super::raw::RawStore;
use super::redis_url::{self, redacted_url};
use super::{Environment, Secret, StoreConfig};

/// How the Redis deployment is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisMode {
    /// One server (`url`).
    Standalone,
    /// The master named `master`, found through the Sentinels in `urls`.
    Sentinel { master: String },
    /// A Redis Cluster; `urls` are seed nodes.
    Cluster,
}

impl RedisMode {
    pub fn name(&self) -> &'static str {
        match self {
            RedisMode::Standalone => "standalone",
            RedisMode::Sentinel { .. } => "sentinel",
            RedisMode::Cluster => "cluster",
        }
    }
}

/// TLS material for `rediss://` connections, read at load. No field
/// turns verification off.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTls {
    /// PEM CA bundle that signs the servers' certificates; `None` = the
    /// system's roots.
    pub ca: Option<Vec<u8>>,
    /// PEM client certificate chain and private key, for servers that
    /// require one (`tls-auth-clients yes`).
    pub client: Option<(Vec<u8>, Secret)>,
}

impl fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTls")
            .field("ca", &self.ca.as_ref().map(|_| "<pem>"))
            .field("client", &self.client.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Everything the Redis backend needs.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSettings {
    pub mode: RedisMode,
    /// Standalone: one URL. Sentinel: the Sentinels. Cluster: seed nodes.
    pub urls: Vec<String>,
    /// ACL user and password for the data nodes (override any in the URL).
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Credentials for the Sentinels themselves (Sentinel mode).
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<Secret>,
    /// `Some` exactly when the URLs are `rediss://`.
    pub tls: Option<RedisTls>,
    /// Prefix of every key and of the revocation channel.
    pub key_prefix: String,
    /// Bound on establishing one connection.
    pub connect_timeout: Duration,
    /// Bound on one store operation, including waiting for a reconnect.
    pub response_timeout: Duration,
    /// Replicas that must acknowledge a new session or a revocation
    /// (`WAIT`) before it is answered; 0 = do not wait.
    pub wait_replicas: u32,
    /// How long that wait may take; past it the write stands, with a
    /// warning.
    pub wait_timeout: Duration,
}

impl RedisSettings {
    /// One server at `url`, no ACL user or TLS, no replica wait, the
    /// default timeouts.
    pub fn standalone(url: impl Into<String>, key_prefix: impl Into<String>) -> RedisSettings {
        RedisSettings {
            mode: RedisMode::Standalone,
            urls: vec![url.into()],
            username: None,
            password: None,
            sentinel_username: None,
            sentinel_password: None,
            tls: None,
            key_prefix: key_prefix.into(),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_millis(500),
            wait_replicas: 0,
            wait_timeout: Duration::from_millis(200),
        }
    }

    /// The keys whose values differ from `other`'s (for reload: a store
    /// change needs a restart).
    pub fn changed_keys(&self, other: &RedisSettings) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut check = |key, changed: bool| {
            if changed {
                keys.push(key);
            }
        };
        check("store.mode", self.mode != other.mode);
        let urls_key = if self.urls.len() == 1 && other.urls.len() == 1 {
            "store.url"
        } else {
            "store.urls"
        };
        check(urls_key, self.urls != other.urls);
        check("store.username", self.username != other.username);
        check("store.password_env", self.password != other.password);
        check(
            "store.sentinel_username",
            self.sentinel_username != other.sentinel_username,
        );
        check(
            "store.sentinel_password_env",
            self.sentinel_password != other.sentinel_password,
        );
        check("store.tls_ca_file", self.tls != other.tls);
        check("store.key_prefix", self.key_prefix != other.key_prefix);
        check(
            "store.connect_timeout",
            self.connect_timeout != other.connect_timeout,
        );
        check(
            "store.response_timeout",
            self.response_timeout != other.response_timeout,
        );
        check(
            "store.wait_replicas",
            self.wait_replicas != other.wait_replicas,
        );
        check(
            "store.wait_timeout",
            self.wait_timeout != other.wait_timeout,
        );
        keys
    }
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let urls: Vec<String> = self.urls.iter().map(|u| redacted_url(u)).collect();
        f.debug_struct("RedisSettings")
            .field("mode", &self.mode)
            .field("urls", &urls)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("sentinel_username", &self.sentinel_username)
            .field("sentinel_password", &self.sentinel_password)
            .field("tls", &self.tls)
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("wait_replicas", &self.wait_replicas)
            .field("wait_timeout", &self.wait_timeout)
            .finish()
    }
}

const DEFAULT_URL: &str = "redis://127.0.0.1:6379/0";

/// `[store]` → [`StoreConfig`]; problems are recorded under their keys.
pub(super) fn store_config(
    raw: RawStore,
    env: &dyn Environment,
    p: &mut Problems,
) -> Option<StoreConfig> {
    match raw.backend.as_deref().unwrap_or("memory") {
        "memory" => Some(StoreConfig::Memory),
        "redis" => redis_settings(raw, env, p).map(StoreConfig::Redis),
        other => {
            p.add(
                "store.backend",
                format!("{other:?} is not one of \"memory\", \"redis\""),
            );
            None
        }
    }
}

fn redis_settings(raw: RawStore, env: &dyn Environment, p: &mut Problems) -> Option<RedisSettings> {
    let RawStore {
        backend: _,
        mode,
        url,
        urls,
        sentinel_master,
        username,
        password_env,
        password_file,
        sentinel_username,
        sentinel_password_env,
        sentinel_password_file,
        tls_ca_file,
        tls_cert_file,
        tls_key_file,
        key_prefix,
        connect_timeout,
        response_timeout,
        wait_replicas,
        wait_timeout,
    } = raw;
    let before = p.0.len();
    let mode = match (mode.as_deref().unwrap_or("standalone"), sentinel_master) {
        ("standalone", None) => RedisMode::Standalone,
        ("cluster", None) => RedisMode::Cluster,
        ("sentinel", Some(master)) if !master.trim().is_empty() => RedisMode::Sentinel {
            master: master.trim().to_owned(),
        },
        ("sentinel", _) => {
            p.add(
                "store.sentinel_master",
                "mode = \"sentinel\" needs the name the Sentinels watch the master under (e.g. \"mymaster\")",
            );
            return None;
        }
        ("standalone" | "cluster", Some(_)) => {
            p.add(
                "store.sentinel_master",
                "is only used with mode = \"sentinel\"",
            );
            return None;
        }
        (other, _) => {
            p.add(
                "store.mode",
                format!("{other:?} is not one of \"standalone\", \"sentinel\", \"cluster\""),
            );
            return None;
        }
    };
    let (urls, key) = match (url, urls) {
        (Some(_), Some(_)) => {
            p.add("store.urls", "set either store.url or store.urls, not both");
            return None;
        }
        (Some(u), None) => (vec![u], "store.url"),
        (None, Some(list)) => (list, "store.urls"),
        (None, None) if mode == RedisMode::Standalone => {
            (vec![DEFAULT_URL.to_owned()], "store.url")
        }
        (None, None) => {
            p.add(
                "store.urls",
                format!(
                    "mode = \"{}\" needs the addresses of its {}",
                    mode.name(),
                    if mode == RedisMode::Cluster {
                        "seed nodes"
                    } else {
                        "Sentinels"
                    }
                ),
            );
            return None;
        }
    };
    if urls.is_empty() {
        p.add(key, "is empty");
        return None;
    }
    if mode == RedisMode::Standalone && urls.len() > 1 {
        p.add(
            key,
            "mode = \"standalone\" takes one URL; several are for \"sentinel\" or \"cluster\"",
        );
    }
    let mut tls_schemes = Vec::new();
    for (i, u) in urls.iter().enumerate() {
        let name = if urls.len() > 1 || key == "store.urls" {
            format!("{key}[{i}]")
        } else {
            key.to_owned()
        };
        if let Err(why) = redis_url::check(u) {
            p.add(&name, why);
            continue;
        }
        if mode != RedisMode::Standalone && !redis_url::is_tcp(u) {
            p.add(
                &name,
                format!(
                    "mode = \"{}\" needs redis:// or rediss:// addresses",
                    mode.name()
                ),
            );
        }
        tls_schemes.push(redis_url::is_tls(u));
    }
    let tls_on = tls_schemes.first().copied().unwrap_or(false);
    if tls_schemes.iter().any(|t| *t != tls_on) {
        p.add(key, "mixes redis:// and rediss://; use one for all");
    }
    let sentinel = matches!(mode, RedisMode::Sentinel { .. });
    if !sentinel {
        for (name, set) in [
            ("store.sentinel_username", sentinel_username.is_some()),
            (
                "store.sentinel_password_env",
                sentinel_password_env.is_some(),
            ),
            (
                "store.sentinel_password_file",
                sentinel_password_file.is_some(),
            ),
        ] {
            if set {
                p.add(name, "is only used with mode = \"sentinel\"");
            }
        }
    }
    let password = super::convert::secret_from(
        p,
        "store.password_env",
        "store.password_file",
        password_env,
        password_file,
        env,
    );
    let sentinel_password = super::convert::secret_from(
        p,
        "store.sentinel_password_env",
        "store.sentinel_password_file",
        sentinel_password_env,
        sentinel_password_file,
        env,
    );
    let tls = tls_files(tls_on, tls_ca_file, tls_cert_file, tls_key_file, p);
    let key_prefix = key_prefix.unwrap_or_else(|| "portcullis:".into());
    if mode == RedisMode::Cluster && key_prefix.contains(['{', '}']) {
        p.add(
            "store.key_prefix",
            "must not contain { or } in cluster mode (the store puts hash tags after it)",
        );
    }
    let replicated = mode != RedisMode::Standalone;
    let wait_replicas = wait_replicas.unwrap_or(if replicated { 1 } else { 0 });
    let settings = RedisSettings {
        mode,
        urls,
        username: username.filter(|u| !u.is_empty()),
        password: password.flatten(),
        sentinel_username: sentinel_username.filter(|u| !u.is_empty()),
        sentinel_password: sentinel_password.flatten(),
        tls,
        key_prefix,
        connect_timeout: super::convert::duration_or(
            p,
            "store.connect_timeout",
            connect_timeout,
            Duration::from_secs(1),
        ),
        response_timeout: super::convert::duration_or(
            p,
            "store.response_timeout",
            response_timeout,
            Duration::from_millis(500),
        ),
        wait_replicas,
        wait_timeout: super::convert::duration_or(
            p,
            "store.wait_timeout",
            wait_timeout,
            Duration::from_millis(200),
        ),
    };
    (p.0.len() == before).then_some(settings)
}

/// Reads the TLS files; `None` without TLS (then none may be set).
fn tls_files(
    tls_on: bool,
    ca: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    p: &mut Problems,
) -> Option<RedisTls> {
    if !tls_on {
        for (name, set) in [
            ("store.tls_ca_file", ca.is_some()),
            ("store.tls_cert_file", cert.is_some()),
            ("store.tls_key_file", key.is_some()),
        ] {
            if set {
                p.add(name, "is only used with rediss:// URLs");
            }
        }
        return None;
    }
    let read = |p: &mut Problems, name: &str, path: &str| match std::fs::read(path) {
        Ok(bytes) if bytes.is_empty() => {
            p.add(name, format!("the file {path:?} is empty"));
            None
        }
        Ok(bytes) => Some(bytes),
        Err(e) => {
            p.add(name, format!("cannot read {path:?}: {e}"));
            None
        }
    };
    let ca = ca.and_then(|path| read(p, "store.tls_ca_file", &path));
    let client = match (cert, key) {
        (Some(c), Some(k)) => {
            let cert = read(p, "store.tls_cert_file", &c);
            let key = read(p, "store.tls_key_file", &k);
            cert.zip(key).map(|(c, k)| (c, Secret::new(k)))
        }
        (Some(_), None) => {
            p.add(
                "store.tls_key_file",
                "store.tls_cert_file needs its private key here",
            );
            None
        }
        (None, Some(_)) => {
            p.add(
                "store.tls_cert_file",
                "store.tls_key_file needs its certificate here",
            );
            None
        }
        (None, None) => None,
    };
    Some(RedisTls { ca, client })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Env(HashMap<&'static str, &'static str>);
    impl Environment for Env {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| (*v).to_owned())
        }
    }

    fn parse(toml_text: &str) -> Result<RedisSettings, Vec<(String, String)>> {
        let raw: RawStore = toml::from_str(toml_text).unwrap();
        let env = Env(HashMap::from([
            ("REDIS_PW", "hunter2"),
            ("SENT_PW", "s3cret"),
        ]));
        let mut p = Problems(Vec::new());
        match store_config(raw, &env, &mut p) {
            Some(StoreConfig::Redis(s)) if p.0.is_empty() => Ok(s),
            _ => Err(p.0.into_iter().map(|x| (x.key, x.message)).collect()),
        }
    }

    #[test]
    fn sentinel_with_both_credentials_parses_and_debug_hides_them() {
        let s = parse(
            r#"backend = "redis"
mode = "sentinel"
urls = ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379"]
sentinel_master = "mymaster"
username = "portcullis"
password_env = "REDIS_PW"
sentinel_username = "watcher"
sentinel_password_env = "SENT_PW""#,
        )
        .unwrap();
        assert_eq!(
            s.mode,
            RedisMode::Sentinel {
                master: "mymaster".into()
            }
        );
        assert_eq!(s.urls.len(), 2);
        assert_eq!(s.wait_replicas, 1);
        assert_eq!(
            s.password.as_ref().map(|p| p.expose()),
            Some(&b"hunter2"[..])
        );
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn url_passwords_are_redacted_in_debug() {
        let s = parse("backend = \"redis\"\nurl = \"redis://u:hunter2@localhost:6379/0\"").unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("u:***@localhost"), "{shown}");
    }

    #[test]
    fn errors_name_their_keys() {
        let cases: &[(&str, &str)] = &[
            (
                "mode = \"sentinel\"\nurls = [\"redis://a:1\"]",
                "store.sentinel_master",
            ),
            ("mode = \"cluster\"", "store.urls"),
            ("mode = \"ring\"", "store.mode"),
            (
                "url = \"redis://a:1\"\nurls = [\"redis://b:1\"]",
                "store.urls",
            ),
            ("urls = [\"redis://a:1\", \"redis://b:1\"]", "store.urls"),
            (
                "mode = \"cluster\"\nurls = [\"redis://a:1\", \"rediss://b:1\"]",
                "store.urls",
            ),
            (
                "mode = \"cluster\"\nurls = [\"redis+unix:///r.sock\"]",
                "store.urls[0]",
            ),
            (
                "url = \"redis://a:1\"\ntls_ca_file = \"/ca.pem\"",
                "store.tls_ca_file",
            ),
            (
                "url = \"rediss://a:1\"\ntls_cert_file = \"/c.pem\"",
                "store.tls_key_file",
            ),
            (
                "url = \"rediss://a:1\"\ntls_ca_file = \"/nonexistent/ca.pem\"",
                "store.tls_ca_file",
            ),
            ("url = \"rediss://a:1/0#insecure\"", "store.url"),
            ("sentinel_username = \"x\"", "store.sentinel_username"),
            ("password_env = \"UNSET\"", "store.password_env"),
            (
                "mode = \"cluster\"\nurls = [\"redis://a:1\"]\nkey_prefix = \"{p}\"",
                "store.key_prefix",
            ),
        ];
        for (body, key) in cases {
            let got = parse(&format!("backend = \"redis\"\n{body}")).unwrap_err();
            assert!(got.iter().any(|(k, _)| k == key), "{body}: {got:?}");
            for (_, m) in &got {
                assert!(!m.contains("hunter2"), "{m}");
            }
        }
    }
}
