//! A request's id: a trusted proxy's `X-Request-Id`, or one made here;
//! sent upstream, in every log line of the request and on the gateway's
//! error answers.

use http::header::{self, HeaderMap, HeaderValue};

use crate::forwarded;
use crate::state::Live;
use crate::transport::ConnInfo;

pub(super) const REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// A request's id: a trusted proxy's `X-Request-Id` (1 to 128 visible
/// characters without spaces), else 16 hex digits made here. Neither
/// allocates: a given id shares the request's header bytes.
pub(super) enum RequestId {
    Given(HeaderValue),
    Made([u8; 16]),
}

impl RequestId {
    pub(super) fn as_str(&self) -> &str {
        let bytes = match self {
            RequestId::Given(v) => v.as_bytes(),
            RequestId::Made(b) => b,
        };
        std::str::from_utf8(bytes).unwrap_or_default()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

thread_local! {
    /// The next made id of this thread: a random start, then a splitmix64
    /// step per request (unique and spread out; an id is a label, not a
    /// secret).
    static NEXT_ID: std::cell::Cell<u64> = std::cell::Cell::new({
        use rand::RngExt;
        rand::rng().random::<u64>()
    });
}

pub(super) fn request_id(live: &Live, conn: &ConnInfo, headers: &HeaderMap) -> RequestId {
    if let Some(v) = headers.get(&REQUEST_ID) {
        let ok = (1..=128).contains(&v.len()) && v.as_bytes().iter().all(|b| b.is_ascii_graphic());
        if ok && forwarded::is_trusted(conn.peer.ip(), &live.config.server.trusted_proxies) {
            return RequestId::Given(v.clone());
        }
    }
    let n = NEXT_ID.with(|c| {
        let n = c.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        c.set(n);
        n
    });
    let mut z = n;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = HEX[((z >> (60 - 4 * i)) & 0xf) as usize];
    }
    RequestId::Made(out)
}
