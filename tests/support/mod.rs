//! Fixtures shared by the integration tests: real servers on
//! `127.0.0.1:0` (the gateway, an echo upstream, an SMTP server, a private
//! redis-server), never mocks. Each test binary uses a part of this.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod chrome;
pub mod client;
pub mod faulty;
pub mod flow;
pub mod gateway;
pub mod h2raw;
pub mod misbehaving;
pub mod mode;
pub mod oidc;
pub mod pki;
pub mod ports;
pub mod proxies;
pub mod raw_upstream;
pub mod redis;
pub mod redis_ha;
pub mod rng;
pub mod smtp;
pub mod upstream;
