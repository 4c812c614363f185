//! The configuration file exactly as written: serde structs with
//! `deny_unknown_fields`, every value optional or defaulted. Nothing here is
//! validated; [`super::Config::from_toml_str`] turns it into typed values.
//! This layer is never used outside the `config` module.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub session: RawSession,
    #[serde(default)]
    pub login: RawLogin,
    #[serde(default)]
    pub mail: RawMail,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub ui: RawUi,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub admin: RawAdmin,
    #[serde(default)]
    pub groups: RawGroups,
    pub assertion: Option<RawAssertion>,
    #[serde(default, rename = "route")]
    pub routes: Vec<RawRoute>,
    #[serde(default, rename = "token")]
    pub tokens: Vec<RawToken>,
    #[serde(default)]
    pub share: RawShare,
    #[serde(default, rename = "provider")]
    pub providers: Vec<RawProvider>,
}

/// `[[token]]`: a machine token.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawToken {
    pub name: Option<String>,
    pub sha256: Option<String>,
    pub secret_file: Option<String>,
    pub groups: Option<Vec<String>>,
    pub expires: Option<RawDate>,
}

/// A date or date-time: TOML's own (`2027-01-31`) or a string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawDate {
    Toml(toml::value::Datetime),
    Text(String),
}

/// `[share]`: share links.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawShare {
    pub enabled: Option<bool>,
    pub default_ttl: Option<String>,
    pub max_ttl: Option<String>,
    pub methods: Option<Vec<String>>,
}

/// `[assertion]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAssertion {
    pub enabled: Option<bool>,
    pub signing_key_file: Option<OneOrMany>,
    pub algorithm: Option<String>,
    pub issuer: Option<String>,
}

/// A string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// `[[provider]]`: an identity provider beside the email link.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    pub name: Option<String>,
    pub label: Option<String>,
    pub kind: Option<String>,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub allowed_domains: Option<Vec<String>>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub api_url: Option<String>,
}

/// `[groups]`, and the whole of a `groups_file`: group name → members.
pub(super) type RawGroups = std::collections::BTreeMap<String, Vec<String>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub audit_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    pub listen: Option<String>,
    pub metrics: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub listen: Option<String>,
    pub tls_listen: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub public_url: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub strip_headers: Option<Vec<String>>,
    pub max_header_count: Option<i64>,
    pub max_header_bytes: Option<i64>,
    pub max_uri_bytes: Option<i64>,
    pub max_body_bytes: Option<i64>,
    pub header_read_timeout: Option<String>,
    pub body_read_timeout: Option<String>,
    pub tls_handshake_timeout: Option<String>,
    pub shutdown_timeout: Option<String>,
    pub threads: Option<i64>,
    pub fast_path: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSession {
    pub secret_env: Option<String>,
    pub secret_file: Option<String>,
    pub lifetime: Option<String>,
    pub idle_timeout: Option<String>,
    pub cookie_domain: Option<String>,
    pub revalidate: Option<String>,
    pub store_grace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLogin {
    pub link_ttl: Option<String>,
    pub allow_emails: Option<Vec<String>>,
    pub allow_domains: Option<Vec<String>>,
    pub groups_file: Option<String>,
    pub address_rate: Option<String>,
    pub ip_rate: Option<String>,
    pub resend_delay: Option<String>,
    pub code_attempts: Option<i64>,
    pub max_pending_per_ip: Option<i64>,
    pub max_pending: Option<i64>,
    pub email: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMail {
    pub from: Option<String>,
    pub transport: Option<String>,
    pub queue_capacity: Option<i64>,
    pub smtp: Option<RawSmtp>,
    pub file: Option<RawMailFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    pub host: Option<String>,
    pub port: Option<i64>,
    pub tls: Option<String>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMailFile {
    pub dir: Option<String>,
    pub fsync: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub backend: Option<String>,
    pub mode: Option<String>,
    pub url: Option<String>,
    pub urls: Option<Vec<String>>,
    pub sentinel_master: Option<String>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub sentinel_username: Option<String>,
    pub sentinel_password_env: Option<String>,
    pub sentinel_password_file: Option<String>,
    pub tls_ca_file: Option<String>,
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
    pub key_prefix: Option<String>,
    pub connect_timeout: Option<String>,
    pub response_timeout: Option<String>,
    pub wait_replicas: Option<u32>,
    pub wait_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUi {
    pub title: Option<String>,
    pub accent: Option<String>,
    pub logo: Option<String>,
    pub logo_file: Option<String>,
    pub footer: Option<String>,
    pub templates: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub name: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    pub upstream: Option<String>,
    pub access: Option<String>,
    pub allow_emails: Option<Vec<String>>,
    pub allow_domains: Option<Vec<String>>,
    pub allow_groups: Option<Vec<String>>,
    pub methods: Option<Vec<String>>,
    pub bypass_networks: Option<Vec<String>>,
    pub deny: Option<bool>,
    pub connect_timeout: Option<String>,
    pub timeout: Option<String>,
    // Upstream options (read in `route_options.rs`).
    pub upstreams: Option<Vec<String>>,
    pub lb: Option<String>,
    pub strip_prefix: Option<bool>,
    pub rewrite_prefix: Option<String>,
    pub preserve_host: Option<bool>,
    pub upstream_host: Option<String>,
    pub set_request_headers: Option<BTreeMap<String, String>>,
    pub remove_request_headers: Option<Vec<String>>,
    pub set_response_headers: Option<BTreeMap<String, String>>,
    pub tls_ca_file: Option<String>,
    pub tls_client_cert_file: Option<String>,
    pub tls_client_key_file: Option<String>,
    pub tls_server_name: Option<String>,
    pub health_path: Option<String>,
    pub health_interval: Option<String>,
    pub health_timeout: Option<String>,
    pub healthy_threshold: Option<u32>,
    pub unhealthy_threshold: Option<u32>,
    pub health_backoff: Option<String>,
}
