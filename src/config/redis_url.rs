//! Which Redis URLs the store can use: the one rule that `portcullis check`
//! (through config conversion) and serving (the store, as it opens its
//! clients) both apply, so `check` refuses exactly what serving would.
//!
//! `rediss://` is TLS with certificate and host name verification, always:
//! the `#insecure` fragment the Redis client knows is refused here.
//!
//! # Threat model
//!
//! A URL may hold a password: the reasons returned here are fixed words
//! and never repeat the URL or any part of it; [`redacted_url`] is the
//! only form of a URL that may be shown.

use redis::{ConnectionAddr, IntoConnectionInfo as _};

/// What `rediss://…#insecure` gets.
pub const NO_INSECURE: &str = "turns off TLS verification (#insecure), which Portcullis does \
not do; give the CA that signs the server's certificate in store.tls_ca_file instead";

/// `Ok` if the store's Redis client accepts `url`; else why not, in words
/// that never repeat the URL.
pub fn check(url: &str) -> Result<(), String> {
    let info = url.into_connection_info().map_err(|e| {
        // The client's description is a fixed phrase ("Missing hostname",
        // "Invalid database number"); what follows it may quote the URL.
        let text = e.to_string();
        let phrase = text.split(" - ").next().unwrap_or("");
        format!(
            "is not a Redis URL the store can use ({phrase}); e.g. redis://127.0.0.1:6379/0, \
             rediss://redis.internal:6380/0 or redis+unix:///path/to/redis.sock"
        )
    })?;
    match info.addr() {
        ConnectionAddr::TcpTls { insecure: true, .. } => Err(NO_INSECURE.to_owned()),
        _ => Ok(()),
    }
}

/// `redis://` or `rediss://` (host and port, not a unix socket).
pub fn is_tcp(url: &str) -> bool {
    matches!(
        url.into_connection_info().map(|i| i.addr().clone()),
        Ok(ConnectionAddr::Tcp(..) | ConnectionAddr::TcpTls { .. })
    )
}

/// `rediss://` (or `valkeys://`).
pub fn is_tls(url: &str) -> bool {
    matches!(
        url.into_connection_info().map(|i| i.addr().clone()),
        Ok(ConnectionAddr::TcpTls { .. })
    )
}

/// The URL with any password replaced, for Debug output and logs.
pub fn redacted_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut parsed) => {
            if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
                return "<redacted>".to_owned();
            }
            parsed.to_string()
        }
        Err(_) => "<unparseable>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_client_accepts_passes() {
        for ok in [
            "redis://127.0.0.1:6379/0",
            "redis://:secret@redis.internal:6380/2",
            "rediss://:secret@redis.internal:6380/2",
            "redis+unix:///run/redis.sock",
            "unix:///run/redis.sock?db=1",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        assert!(is_tls("rediss://a:1") && !is_tls("redis://a:1"));
        assert!(is_tcp("rediss://a:1") && !is_tcp("redis+unix:///r.sock"));
    }

    #[test]
    fn insecure_tls_and_broken_urls_are_refused_without_repeating_them() {
        assert_eq!(
            check("rediss://:hunter2@redis.example.com:6380/0#insecure"),
            Err(NO_INSECURE.to_owned())
        );
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
