//! Who a client is for rate limits ([`client_bucket`]: an IPv4 address or
//! an IPv6 /64), and the limit on failed link and code checks per client:
//! a client over it is refused before any lookup.
//!
//! Not here: the admission limits of `POST /login` (the store applies
//! them in one call, see `request`) and the wrong-code count of one
//! attempt (`code_entry`).

use std::net::IpAddr;

use http::Response;

use super::shared_pages::invalid_link;
use crate::body::Body;
use crate::error::Error;
use crate::metrics::SigninMethod;
use crate::state::Ctx;

/// Failed link and code checks allowed per client IP per `ip_rate` window
/// (a person needs a handful; guessing needs millions).
fn failure_limit(cx: &Ctx<'_>) -> u64 {
    cx.live.config.login.ip_rate.count.saturating_mul(4).max(20)
}

pub(super) fn failure_key(cx: &Ctx<'_>) -> String {
    format!("fail:{}", client_bucket_hash(cx))
}

/// The keyed hash of the client's rate bucket ([`client_bucket`]).
pub(super) fn client_bucket_hash(cx: &Ctx<'_>) -> String {
    cx.app
        .key
        .hash_hex("ip", client_bucket(cx.client.ip).as_bytes())
}

/// What one client is, for rate limits and failure counts: its IPv4
/// address, or the /64 of its IPv6 address (a /64 is one network, and
/// usually one host can use all of it). An IPv4-mapped IPv6 address is its
/// IPv4 address.
fn client_bucket(ip: IpAddr) -> String {
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

/// Refuses a client that has failed too many checks, before any lookup.
pub(super) async fn refuse_if_failing(cx: &Ctx<'_>) -> Result<(), Error> {
    if cx.app.store.count(&failure_key(cx)).await? >= failure_limit(cx) {
        return Err(Error::TooManyRequests);
    }
    Ok(())
}

/// Counts one failed check and answers with the invalid-link page.
pub(super) async fn failed_check(
    cx: &Ctx<'_>,
    method: SigninMethod,
) -> Result<Response<Body>, Error> {
    let window = cx.live.config.login.ip_rate.window;
    cx.app.store.hit(&failure_key(cx), window).await?;
    cx.app.metrics.signin(method, false);
    super::audit(
        cx,
        crate::audit::Event::SigninFailed,
        crate::audit::Outcome::Failure,
        "",
        None,
        "unknown, used or expired link or code",
    );
    Ok(invalid_link(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let b = |s: &str| client_bucket(s.parse().unwrap());
        assert_eq!(b("192.0.2.7"), "192.0.2.7");
        assert_eq!(b("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(b("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(b("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_ne!(b("2001:db8:1:3::1"), b("2001:db8:1:2::1"));
    }
}
