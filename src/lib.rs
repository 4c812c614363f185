//! # Portcullis
//!
//! An authenticating reverse proxy: people who are not signed in are sent to
//! an email sign-in page; signed-in requests are forwarded to the app with
//! headers that say who the user is.
//!
//! # Layout
//!
//! The request's path through the modules, where state lives and the
//! rules are in `docs/architecture.md`. In short: the transport moves
//! bytes, the hub sequences a request, leaf modules return values.
//!
//! - `transport`: everything on a socket. `downstream` (listeners, TLS,
//!   the own HTTP/1.1 loop and hyper's server, the CL+TE watch),
//!   `upstream` (`Upstream::send`: the raw client or hyper's, one pool,
//!   answer hygiene, `UpstreamError`), `codec` (head spans, `Date`).
//! - `app`: the hub, the one place that sequences a request, in phases.
//! - `state`: the shared state behind one `Arc`, and the live config.
//! - `audit`: the audit trail (JSON lines, `[log] audit_file`).
//! - `authorize`: the one decision whether a request may pass.
//! - `assertion`: the signed identity for upstreams (`[assertion]`), its
//!   keys, token cache and JWKS.
//! - `groups`: `[groups]` resolved into address and domain lookups.
//! - `config`: `gateway.toml` → typed values; errors name file and key.
//! - `request_checks`, `path`, `routes`, `forwarded`: limits, the one
//!   host, the canonical path and its matching view, routes, trusted
//!   proxies.
//! - `outgoing`, `headers`, `cookie_header`: the upstream's request
//!   headers, header names, the `Cookie` and `Set-Cookie` headers.
//! - `signin`, `code`, `cookies`, `session`, `crypto`: the sign-in flow
//!   (`signin` holds the `/.portcullis/*` endpoints, one step per file).
//! - `address`: strict parsing of one email address.
//! - `redirect`: the `rd` check.
//! - `user_agent`: the browser-family label shown with a sign-in code.
//! - `store`: attempts, sessions and counters in memory or Redis.
//! - `mail`: the mail queue and its transports.
//! - `theme`, `pages`, `body`, `demo`: templates and colours, what the
//!   gateway answers itself.
//! - `error`: the request error type and its one mapping to HTTP status.
//! - `token`, `share`, `access`: machine tokens (`Authorization:
//!   Bearer`), share links (a scope inside a MAC), and the reading of
//!   what a request presents (session, token or share) for the decision.
//! - `cli`: the bodies of `portcullis token`, `share` and `link`.
//! - `health_probe`: `portcullis health`, a probe for a container's
//!   `HEALTHCHECK` (no shell or curl in the image).
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod access;
pub mod address;
pub mod app;
pub mod assertion;
pub mod audit;
pub mod authorize;
pub mod body;
pub mod cli;
pub mod code;
pub mod config;
pub mod cookie_header;
pub mod cookies;
pub mod crypto;
pub mod demo;
pub mod error;
pub mod failures;
pub mod forwarded;
pub mod groups;
pub mod headers;
pub mod health_probe;
pub mod mail;
pub mod metrics;
pub mod oidc;
pub mod outgoing;
pub mod pages;
pub mod path;
pub mod policy;
pub mod redirect;
pub mod request_checks;
pub mod routes;
pub mod session;
pub mod share;
pub mod signin;
pub mod state;
pub mod store;
pub mod theme;
pub mod token;
pub mod transport;
pub mod user_agent;

pub use app::App;
pub use config::Config;
