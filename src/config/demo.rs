//! The demo, moved: `portcullis demo --listen ADDR` serves the embedded
//! configuration ([`super::EMBEDDED_DEFAULT`]) on another address, and the
//! links in its mail point at that address.
//!
//! Owns: [`Config::demo`] and [`PublicUrl::for_listener`], the one rule
//! for which URL a browser on this machine opens to reach a listener.
//! Does not own: binding (the binary binds, then points `public_url` at
//! the address it got, so `--listen 127.0.0.1:0` works too).

use std::net::{IpAddr, SocketAddr};

use super::{Config, ConfigError, PublicUrl, Scheme};

impl Config {
    /// The embedded demo configuration, listening on `listen` (absent: its
    /// own `127.0.0.1:8080`) with `public_url` pointing there.
    pub fn demo(listen: Option<SocketAddr>) -> Result<Config, ConfigError> {
        let mut config = Config::embedded()?;
        if let Some(addr) = listen {
            config.server.listen = Some(addr);
            config.server.public_url = PublicUrl::for_listener(addr);
        }
        Ok(config)
    }
}

impl PublicUrl {
    /// `http://localhost:PORT` for a loopback or wildcard address (the
    /// demo's routes answer `localhost` and `127.0.0.1` on any port), else
    /// `http://IP:PORT`, the address itself.
    pub fn for_listener(addr: SocketAddr) -> PublicUrl {
        let ip = addr.ip();
        let host = if ip.is_loopback() || ip.is_unspecified() {
            "localhost".to_string()
        } else {
            match ip {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            }
        };
        let port = addr.port();
        PublicUrl {
            scheme: Scheme::Http,
            host,
            port: (port != Scheme::Http.default_port()).then_some(port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_is_opened_by_the_name_a_browser_uses() {
        let origin = |a: &str| PublicUrl::for_listener(a.parse().unwrap()).origin();
        assert_eq!(origin("127.0.0.1:9000"), "http://localhost:9000");
        assert_eq!(origin("0.0.0.0:9000"), "http://localhost:9000");
        assert_eq!(origin("[::1]:9000"), "http://localhost:9000");
        assert_eq!(origin("[::]:80"), "http://localhost");
        assert_eq!(origin("192.0.2.7:8081"), "http://192.0.2.7:8081");
        assert_eq!(origin("[2001:db8::1]:8081"), "http://[2001:db8::1]:8081");
    }

    #[test]
    fn the_demo_moves_its_listener_and_its_links() {
        let moved = Config::demo(Some("127.0.0.1:9123".parse().unwrap())).unwrap();
        assert_eq!(moved.server.listen, Some("127.0.0.1:9123".parse().unwrap()));
        assert_eq!(moved.server.public_url.origin(), "http://localhost:9123");
        let same = Config::demo(None).unwrap();
        let embedded = Config::embedded().unwrap();
        assert_eq!(same.server.listen, embedded.server.listen);
        assert_eq!(same.server.public_url, embedded.server.public_url);
        assert_eq!(same.server.public_url.origin(), "http://localhost:8080");
    }
}
