//! # Portcullis
//!
//! An authenticating reverse proxy: people who are not signed in are sent to
//! an email sign-in page; signed-in requests are forwarded to the app with
//! headers that say who the user is.
//!
//! # Layout
//!
//! Leaf modules return values; only [`app`] sequences a request.
//!
//! - `config`: `gateway.toml` → typed values; errors name file and key.
//! - `server`, `tls`: listeners, TLS, hyper connection settings, shutdown.
//! - `app`: shared state and the request hub.
//! - `routes`: which route a request belongs to.
//! - `path`: the one canonical path that is both matched and forwarded.
//! - `request_checks`: limits, `Transfer-Encoding` and the one host of a
//!   request, before anything else looks at it.
//! - `framing`: the CL+TE watch on HTTP/1 client bytes.
//! - `proxy`, `pool`, `h1`, `outgoing`, `headers`, `forwarded`: forwarding,
//!   upstream connections, the upstream's headers and header hygiene.
//! - `signin`, `code`, `cookies`, `session`, `crypto`: the sign-in flow
//!   (`signin` holds the `/.portcullis/*` endpoints, one step per file).
//! - `address`: strict parsing of one email address.
//! - `redirect`: the `rd` check.
//! - `user_agent`: the browser-family label shown with a sign-in code.
//! - `store`: attempts, sessions and counters in memory or Redis.
//! - `mail`: the mail queue and its transports.
//! - `pages`, `body`, `demo`: what the gateway answers itself.
//! - `error`: the request error type and its one mapping to HTTP status.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod address;
pub mod app;
pub mod body;
pub mod code;
pub mod config;
pub mod cookies;
pub mod crypto;
pub mod demo;
pub mod error;
pub mod forwarded;
pub mod framing;
pub mod h1;
pub mod h1_server;
pub mod headers;
pub mod mail;
pub mod outgoing;
pub mod pages;
pub mod path;
pub mod pool;
pub mod proxy;
pub mod redirect;
pub mod request_checks;
pub mod routes;
pub mod server;
pub mod session;
pub mod signin;
pub mod state;
pub mod store;
pub mod tls;
pub mod user_agent;

pub use app::App;
pub use config::Config;
