//! The signed tokens kept for reuse, per session and host, so the hot path
//! signs once per session, host and four minutes rather than per request.
//!
//! Bounded: at most [`MAX_SESSIONS`] sessions, each with at most
//! [`MAX_HOSTS`] hosts (about 0.6 KiB a token: ~50 MiB at the very worst,
//! ~12 MiB when every session uses one host). When full, tokens past their
//! refresh time are dropped first, then everything (the next request of
//! each session signs again). Keyed by the session's tag, which nobody
//! without the server key can choose.

use std::sync::RwLock;

use http::HeaderValue;

use crate::crypto::TagMap;

/// Sessions with cached tokens, at most.
pub const MAX_SESSIONS: usize = 20_000;
/// Hosts per session, at most (the oldest is replaced).
pub const MAX_HOSTS: usize = 4;

struct Slot {
    /// The token's `aud`.
    host: Box<str>,
    token: HeaderValue,
    /// Unix seconds from which the token is signed again.
    refresh_at: u64,
}

#[derive(Default)]
pub struct TokenCache {
    map: RwLock<TagMap<Vec<Slot>>>,
}

impl TokenCache {
    /// The token of `tag` for `host`, while before its refresh time.
    pub fn get(&self, tag: &[u8; 32], host: &str, now: u64) -> Option<HeaderValue> {
        let map = self.map.read().ok()?;
        map.get(tag)?
            .iter()
            .find(|s| &*s.host == host && now < s.refresh_at)
            .map(|s| s.token.clone())
    }

    pub fn put(&self, tag: [u8; 32], host: &str, token: HeaderValue, refresh_at: u64, now: u64) {
        let Ok(mut map) = self.map.write() else {
            return;
        };
        if map.len() >= MAX_SESSIONS && !map.contains_key(&tag) {
            map.retain(|_, slots| {
                slots.retain(|s| now < s.refresh_at);
                !slots.is_empty()
            });
            if map.len() >= MAX_SESSIONS {
                map.clear();
            }
        }
        let slots = map.entry(tag).or_default();
        slots.retain(|s| &*s.host != host && now < s.refresh_at);
        if slots.len() >= MAX_HOSTS {
            slots.remove(0);
        }
        slots.push(Slot {
            host: host.into(),
            token,
            refresh_at,
        });
    }

    /// Sessions with a token here.
    pub fn len(&self) -> usize {
        self.map.read().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(n: usize) -> [u8; 32] {
        let mut t = [0u8; 32];
        t[..8].copy_from_slice(&(n as u64).to_le_bytes());
        t
    }

    #[test]
    fn hits_until_refresh_per_host() {
        let c = TokenCache::default();
        let v = HeaderValue::from_static("t1");
        c.put(tag(1), "a.test", v.clone(), 100, 10);
        assert_eq!(c.get(&tag(1), "a.test", 99), Some(v));
        assert_eq!(c.get(&tag(1), "a.test", 100), None);
        assert_eq!(c.get(&tag(1), "b.test", 50), None);
        assert_eq!(c.get(&tag(2), "a.test", 50), None);
    }

    #[test]
    fn hosts_and_sessions_are_bounded() {
        let c = TokenCache::default();
        for h in 0..MAX_HOSTS + 3 {
            c.put(
                tag(1),
                &format!("h{h}"),
                HeaderValue::from_static("t"),
                100,
                10,
            );
        }
        let kept = (0..MAX_HOSTS + 3)
            .filter(|h| c.get(&tag(1), &format!("h{h}"), 10).is_some())
            .count();
        assert_eq!(kept, MAX_HOSTS);
        assert!(c.get(&tag(1), &format!("h{}", MAX_HOSTS + 2), 10).is_some());
        for n in 0..MAX_SESSIONS {
            c.put(tag(n), "a", HeaderValue::from_static("t"), 100, 10);
        }
        assert_eq!(c.len(), MAX_SESSIONS);
        // Full, nothing stale: cleared, then the new one.
        c.put(
            tag(MAX_SESSIONS),
            "a",
            HeaderValue::from_static("t"),
            100,
            10,
        );
        assert_eq!(c.len(), 1);
    }
}
