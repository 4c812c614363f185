//! Which Redis URLs the store can use: the one rule that `portcullis check`
//! (through config conversion) and serving (the store, as it opens its
//! client) both apply, so `check` refuses exactly what serving would.
//!
//! The Redis client is built without TLS, so `rediss://` is refused here,
//! with the key named, instead of at start-up.
//!
//! # Threat model
//!
//! A URL may hold a password: the reasons returned here are fixed words
//! and never repeat the URL or any part of it.

use redis::IntoConnectionInfo as _;

/// What `rediss://` (and `valkeys://`) get: TLS to Redis is not built in.
pub const NO_TLS: &str = "rediss:// (TLS to Redis) is not supported by this build; \
use redis:// to a Redis on this host or a private network, or redis+unix:///path/to/redis.sock";

/// `Ok` if the store's Redis client accepts `url`; else why not, in words
/// that never repeat the URL.
pub fn check(url: &str) -> Result<(), String> {
    let scheme = url.split_once("://").map_or("", |(s, _)| s);
    if scheme.eq_ignore_ascii_case("rediss") || scheme.eq_ignore_ascii_case("valkeys") {
        return Err(NO_TLS.to_owned());
    }
    url.into_connection_info().map(|_| ()).map_err(|e| {
        // The client's description is a fixed phrase ("Missing hostname",
        // "Invalid database number"); what follows it may quote the URL.
        let text = e.to_string();
        let phrase = text.split(" - ").next().unwrap_or("");
        format!(
            "is not a Redis URL the store can use ({phrase}); e.g. redis://127.0.0.1:6379/0 \
             or redis+unix:///path/to/redis.sock"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_client_accepts_passes() {
        for ok in [
            "redis://127.0.0.1:6379/0",
            "redis://:secret@redis.internal:6380/2",
            "redis+unix:///run/redis.sock",
            "unix:///run/redis.sock?db=1",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn tls_and_broken_urls_are_refused_without_repeating_them() {
        assert_eq!(
            check("rediss://:hunter2@redis.example.com:6380/0"),
            Err(NO_TLS.to_owned())
        );
        assert_eq!(check("REDISS://redis.example.com"), Err(NO_TLS.to_owned()));
        for bad in [
            "redis://:hunter2@redis.example.com:6379/notanumber",
            "redis://:hunter2@0.0.0.0:6379/0",
        ] {
            let why = check(bad).unwrap_err();
            assert!(
                why.starts_with("is not a Redis URL the store can use ("),
                "{why}"
            );
            assert!(!why.contains("hunter2"), "{why}");
        }
    }
}
