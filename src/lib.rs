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
//! - `address`: strict parsing and normalisation of one email address.
//! - `path`: request-path normalisation (the one canonical path that is both
//!   matched and forwarded).
//! - `redirect`: the `rd` check (same-origin path or allow-listed https URL).
//! - `store`: tokens, sessions and counters, in memory or in Redis.
//! - `mail`: the mail queue and its transports (SMTP, file, console).
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod address;
pub mod mail;
pub mod path;
pub mod redirect;
pub mod store;
