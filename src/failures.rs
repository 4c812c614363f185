//! One budget of failed secret checks per client: wrong or dead sign-in
//! links and codes, forged or dead share links and wrong or expired
//! machine tokens all count on the same store counter, and a client over
//! [`limit`] is refused (429) before any lookup. Who a client is: its
//! IPv4 address, or the /64 of its IPv6 address ([`bucket`]).

use std::net::IpAddr;

use crate::config::Config;
use crate::crypto::Key;

/// Failed checks allowed per client per `[login] ip_rate` window (a
/// person needs a handful; guessing needs millions).
pub fn limit(config: &Config) -> u64 {
    config.login.ip_rate.count.saturating_mul(4).max(20)
}

/// The store counter ([`crate::store::Store::hit`]) of client `ip`.
pub fn key(key: &Key, ip: IpAddr) -> String {
    format!("fail:{}", key.hash_hex("ip", bucket(ip).as_bytes()))
}

/// What one client is, for rate limits and failure counts: its IPv4
/// address, or the /64 of its IPv6 address (a /64 is one network, and
/// usually one host can use all of it). An IPv4-mapped IPv6 address is its
/// IPv4 address.
pub fn bucket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let b = |s: &str| bucket(s.parse().unwrap());
        assert_eq!(b("192.0.2.7"), "192.0.2.7");
        assert_eq!(b("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(b("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(b("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_ne!(b("2001:db8:1:3::1"), b("2001:db8:1:2::1"));
    }
}
