//! Who the client is and how it reached us: the client IP, the scheme and
//! the host, believing `X-Forwarded-*` only from `trusted_proxies`.
//!
//! From an untrusted peer the incoming `X-Forwarded-For/-Proto/-Host` are
//! ignored for every decision (rate keys, cookie security, links) and
//! replaced on the way upstream. From a trusted peer the client is the
//! rightmost address in `X-Forwarded-For` that is not itself trusted.

use std::net::IpAddr;

use http::header::{HeaderMap, HeaderName};
use ipnet::IpNet;

use crate::config::Scheme;
use crate::headers::{FORWARDED_FOR, FORWARDED_HOST, FORWARDED_PROTO};

/// What the gateway concluded about one request's client.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: IpAddr,
    pub peer: IpAddr,
    /// The scheme the client used (https when our TLS listener took it, or
    /// a trusted proxy says so).
    pub scheme: Scheme,
    /// The value for `X-Forwarded-For` upstream.
    pub forwarded_for: String,
    /// The host the client asked for (`X-Forwarded-Host` from a trusted
    /// proxy, else the request's own host).
    pub forwarded_host: Option<String>,
}

/// Whether `ip` (a connection's peer) is one of `[server] trusted_proxies`.
pub fn is_trusted(ip: IpAddr, nets: &[IpNet]) -> bool {
    trusted(ip, nets)
}

fn trusted(ip: IpAddr, nets: &[IpNet]) -> bool {
    let ip = canonical_ip(ip);
    nets.iter().any(|n| n.contains(&ip))
}

fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// An address as text; IPv4 without the formatting machinery (this runs
/// for every proxied request).
fn ip_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut out = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
    }
    out
}

fn header_str<'a>(headers: &'a HeaderMap, name: &http::HeaderName) -> Option<&'a str> {
    let mut all = headers.get_all(name).iter();
    let first = all.next()?.to_str().ok()?;
    // A repeated header is ambiguous: use none of it.
    if all.next().is_some() {
        return None;
    }
    Some(first)
}

/// A trusted proxy's `X-Forwarded-Host` that is not one valid host
/// ([`crate::routes::valid_host`]): the request is refused (400), as a
/// bad `Host` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("X-Forwarded-Host from a trusted proxy is not a valid host")]
pub struct BadForwardedHost;

pub fn client_info(
    peer: IpAddr,
    tls: bool,
    host: Option<&str>,
    headers: &HeaderMap,
    trusted_proxies: &[IpNet],
) -> Result<ClientInfo, BadForwardedHost> {
    let peer = canonical_ip(peer);
    let own_scheme = if tls { Scheme::Https } else { Scheme::Http };
    if !trusted(peer, trusted_proxies) {
        return Ok(ClientInfo {
            ip: peer,
            peer,
            scheme: own_scheme,
            forwarded_for: ip_text(peer),
            forwarded_host: host.map(String::from),
        });
    }
    let chain: Vec<IpAddr> = header_str(headers, &FORWARDED_FOR)
        .map(|v| {
            v.split(',')
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .map(canonical_ip)
                .collect()
        })
        .unwrap_or_default();
    let ip = chain
        .iter()
        .rev()
        .copied()
        .find(|ip| !trusted(*ip, trusted_proxies))
        .or_else(|| chain.first().copied())
        .unwrap_or(peer);
    let scheme = match header_str(headers, &FORWARDED_PROTO).map(|s| s.trim().to_ascii_lowercase())
    {
        Some(s) if s == "https" => Scheme::Https,
        Some(s) if s == "http" => Scheme::Http,
        _ => own_scheme,
    };
    let mut forwarded_for: Vec<String> = chain.iter().map(|i| ip_text(*i)).collect();
    forwarded_for.push(ip_text(peer));
    // Sent once: it must be a valid host, like the request's own (a
    // repeated one is ambiguous and ignored, as above).
    let forwarded_host = match header_str(headers, &FORWARDED_HOST).map(str::trim) {
        Some(h) if crate::routes::valid_host(h) => Some(h.to_string()),
        Some(_) => return Err(BadForwardedHost),
        None => host.map(String::from),
    };
    Ok(ClientInfo {
        ip,
        peer,
        scheme,
        forwarded_for: forwarded_for.join(", "),
        forwarded_host,
    })
}

/// Headers that say where a request came from, or what it first asked
/// for: only the gateway sets them (the three `X-Forwarded-*`), or nobody.
/// `X-Original-URL` and `X-Rewrite-URL` are the path IIS URL Rewrite and
/// older Symfony and Zend route on. Compared case-insensitively with `_`
/// and `-` equal (CGI-style servers read `X_Original_URL` as
/// `X-Original-URL`). Every one starts with `x` or `f`: most names are
/// decided by one byte.
pub fn from_client(name: &HeaderName) -> bool {
    const NAMES: [&str; 11] = [
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "forwarded",
        "x-real-ip",
        "x-forwarded-prefix",
        "x-forwarded-uri",
        "x-forwarded-port",
        "x-original-url",
        "x-rewrite-url",
        // The gateway sends its own (a trusted proxy's, or a new one).
        "x-request-id",
    ];
    let n = name.as_str().as_bytes();
    matches!(n.first(), Some(b'x' | b'f')) && NAMES.iter().any(|t| crate::headers::folded_eq(n, t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderValue;

    #[test]
    fn from_client_names() {
        for n in [
            FORWARDED_FOR,
            FORWARDED_PROTO,
            FORWARDED_HOST,
            http::header::FORWARDED,
        ] {
            assert!(from_client(&n), "{n}");
        }
        for n in [
            "x-real-ip",
            "x-forwarded-prefix",
            "x-forwarded-uri",
            "x-forwarded-port",
            "x-original-url",
            "x-rewrite-url",
            "x_original_url",
            "x_rewrite-url",
            "x_forwarded_for",
        ] {
            assert!(from_client(&HeaderName::from_static(n)), "{n}");
        }
        for n in [
            "host",
            "x-forwarded-user",
            "x-forwarded-email",
            "forwarded-for",
            "x-real",
            "x-original-urls",
            "x-original",
        ] {
            assert!(!from_client(&HeaderName::from_static(n)), "{n}");
        }
    }

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    #[test]
    fn ip_text_matches_display() {
        for ip in [
            "0.0.0.0",
            "1.2.3.4",
            "10.20.30.40",
            "100.200.255.9",
            "255.255.255.255",
            "::1",
            "2001:db8::7",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_text(ip), ip.to_string());
        }
        for n in 0..=255u8 {
            let ip = IpAddr::from([n, n / 3, 255 - n, n / 10]);
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }

    #[test]
    fn untrusted_peer_cannot_spoof() {
        let headers = h(&[
            ("x-forwarded-for", "127.0.0.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "admin.internal"),
        ]);
        let info = client_info(
            "203.0.113.9".parse().unwrap(),
            false,
            Some("app.test"),
            &headers,
            &[],
        )
        .unwrap();
        assert_eq!(info.ip.to_string(), "203.0.113.9");
        assert_eq!(info.scheme, Scheme::Http);
        assert_eq!(info.forwarded_for, "203.0.113.9");
        assert_eq!(info.forwarded_host.as_deref(), Some("app.test"));
    }

    #[test]
    fn trusted_proxy_chain_rightmost_untrusted() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let headers = h(&[
            ("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.0.0.5"),
            ("x-forwarded-proto", "https"),
        ]);
        let info = client_info(
            "10.0.0.2".parse().unwrap(),
            false,
            Some("a"),
            &headers,
            &trusted,
        )
        .unwrap();
        assert_eq!(info.ip.to_string(), "198.51.100.7");
        assert_eq!(info.scheme, Scheme::Https);
        assert_eq!(
            info.forwarded_for,
            "1.1.1.1, 198.51.100.7, 10.0.0.5, 10.0.0.2"
        );
    }
}
