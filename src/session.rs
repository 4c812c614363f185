//! Sessions: the signed cookie and the in-process cache in front of the
//! store.
//!
//! Threat model. The cookie is `v1.<id>.<tag>` where `id` is 32 random
//! bytes and `tag = HMAC(key, "session", id)`; a forged or altered cookie
//! fails the constant-time tag check and is rejected without touching the
//! store. The store knows a session only by `hex(tag)`, so a copy of the
//! store cannot be turned back into a cookie. A valid cookie is checked
//! against the store at most once per `revalidate` interval (the hot path
//! does not wait on the store); revocations from any instance arrive over
//! the store's broadcast and drop the cached entry at once. Whenever the
//! broadcast may have missed some (the store's revocation subscription was
//! re-established, e.g. after a Redis restart, or this listener lagged),
//! the whole cache is dropped, so every session is confirmed with the store
//! again on its next use. When the store
//! cannot be reached, a session this process validated within
//! `store_grace` keeps working; after that the request gets 503, never a
//! redirect loop and never a pass.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::crypto::TagMap;
use crate::crypto::{self, Key};
use crate::store::{SessionRecord, Store, StoreError};

const PURPOSE: &str = "session";
const PREFIX: &str = "v1.";
/// Entries kept in process before stale ones are dropped.
const MAX_CACHED: usize = 500_000;

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A freshly made session id: the cookie value and the store's name for it.
pub struct NewSession {
    pub cookie: String,
    pub tag: [u8; 32],
}

pub fn new_session(key: &Key) -> NewSession {
    let id = crypto::random_bytes::<32>();
    let tag = key.tag(PURPOSE, &id);
    NewSession {
        cookie: format!("{PREFIX}{}.{}", crypto::b64(&id), crypto::b64(&tag)),
        tag,
    }
}

/// Verifies a cookie value; returns its tag (the session's store name).
pub fn verify_cookie(key: &Key, value: &str) -> Option<[u8; 32]> {
    let rest = value.strip_prefix(PREFIX)?;
    if rest.len() > 100 {
        return None;
    }
    let (id, tag) = rest.split_once('.')?;
    let id = crypto::unb64_32(id)?;
    let tag = crypto::unb64_32(tag)?;
    let expected = key.tag(PURPOSE, &id);
    if crypto::ct_eq(&expected, &tag) {
        Some(expected)
    } else {
        None
    }
}

/// Who a valid session belongs to.
#[derive(Debug, Clone)]
pub struct Identity {
    pub email: Arc<str>,
    pub tag: [u8; 32],
    /// How it signed in, when not by the email link or code
    /// (`oidc:NAME`, `github:NAME`: the session record's `amr`).
    pub amr: Option<Arc<str>>,
}

#[derive(Debug, Clone)]
struct Cached {
    email: Arc<str>,
    amr: Option<Arc<str>>,
    expires_at: u64,
    /// Last time the store confirmed the session.
    confirmed: Instant,
}

/// Sessions this process has seen recently.
pub struct SessionCache {
    entries: RwLock<TagMap<Cached>>,
    /// The store's [`Store::revocation_epoch`] the entries belong to.
    epoch: AtomicU64,
    revalidate: Duration,
    grace: Duration,
}

impl SessionCache {
    pub fn new(revalidate: Duration, grace: Duration) -> SessionCache {
        SessionCache {
            entries: RwLock::new(TagMap::default()),
            epoch: AtomicU64::new(0),
            revalidate,
            grace,
        }
    }

    fn cached(&self, tag: &[u8; 32]) -> Option<Cached> {
        self.entries.read().ok()?.get(tag).cloned()
    }

    pub fn forget(&self, tag: &[u8; 32]) {
        if let Ok(mut map) = self.entries.write() {
            map.remove(tag);
        }
    }

    /// Forgets a session named by the store (hex of its tag).
    pub fn forget_hex(&self, hex_tag: &str) {
        if let Some(tag) = parse_hex32(hex_tag) {
            self.forget(&tag);
        }
    }

    pub fn remember(&self, tag: [u8; 32], record: &SessionRecord) {
        let Ok(mut map) = self.entries.write() else {
            return;
        };
        if map.len() >= MAX_CACHED {
            let stale = self.revalidate;
            map.retain(|_, c| c.confirmed.elapsed() < stale);
        }
        map.insert(
            tag,
            Cached {
                email: Arc::from(record.email.as_str()),
                amr: provider_amr(record),
                expires_at: record.expires_at,
                confirmed: Instant::now(),
            },
        );
    }

    /// Forgets every session: revocations may have been missed.
    pub fn clear(&self) {
        if let Ok(mut map) = self.entries.write() {
            map.clear();
        }
    }

    /// Drops every entry if the store's revocation epoch moved on since
    /// they were confirmed (one atomic read when it did not).
    fn follow_epoch(&self, epoch: u64) {
        if self.epoch.load(Ordering::Acquire) == epoch {
            return;
        }
        if let Ok(mut map) = self.entries.write() {
            // Checked again under the lock: one caller clears.
            if self.epoch.load(Ordering::Acquire) != epoch {
                map.clear();
                self.epoch.store(epoch, Ordering::Release);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.read().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The identity of a verified session tag, asking the store only when
    /// the cached answer is older than `revalidate`.
    pub async fn check(
        &self,
        store: &Store,
        tag: [u8; 32],
        idle: Duration,
    ) -> Result<Option<Identity>, StoreError> {
        let now = now_unix();
        let epoch = store.revocation_epoch();
        self.follow_epoch(epoch);
        let cached = self.cached(&tag);
        if let Some(c) = &cached {
            if c.expires_at <= now {
                self.forget(&tag);
                return Ok(None);
            }
            if c.confirmed.elapsed() < self.revalidate {
                return Ok(Some(Identity {
                    email: c.email.clone(),
                    tag,
                    amr: c.amr.clone(),
                }));
            }
        }
        match store.get_session(&crypto::hex(&tag), idle, now).await {
            Ok(Some(record)) if record.expires_at > now => {
                // Read before a resubscription: not cached (a revocation
                // between the read and the subscription was missed).
                if store.revocation_epoch() == epoch {
                    self.remember(tag, &record);
                }
                Ok(Some(Identity {
                    email: Arc::from(record.email.as_str()),
                    tag,
                    amr: provider_amr(&record),
                }))
            }
            Ok(_) => {
                self.forget(&tag);
                Ok(None)
            }
            Err(e) => match cached {
                Some(c) if c.confirmed.elapsed() < self.grace => Ok(Some(Identity {
                    email: c.email,
                    tag,
                    amr: c.amr,
                })),
                _ => Err(e),
            },
        }
    }
}

/// A record's `amr` when it names a provider (`None` for the email link
/// or code, and for records written before `amr` existed).
fn provider_amr(record: &SessionRecord) -> Option<Arc<str>> {
    match record.amr.as_deref() {
        None | Some("link" | "code") => None,
        Some(other) => Some(Arc::from(other)),
    }
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_round_trip_and_tamper() {
        let key = Key::new(b"k0123456789abcdef0123456789abcdef");
        let s = new_session(&key);
        assert_eq!(verify_cookie(&key, &s.cookie), Some(s.tag));
        // Another key, a flipped character, a truncated value, junk.
        let other = Key::new(b"k1123456789abcdef0123456789abcdef");
        assert_eq!(verify_cookie(&other, &s.cookie), None);
        let mut flipped = s.cookie.clone().into_bytes();
        let i = flipped.len() - 3;
        flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            verify_cookie(&key, &String::from_utf8(flipped).unwrap()),
            None
        );
        assert_eq!(verify_cookie(&key, &s.cookie[..s.cookie.len() - 1]), None);
        for junk in [
            "",
            "v1.",
            "v1..",
            "v2.a.b",
            "\"v1.x.y\"",
            &"v1.".repeat(100),
        ] {
            assert_eq!(verify_cookie(&key, junk), None, "{junk}");
        }
    }

    #[test]
    fn hex_round_trip() {
        let t = [7u8; 32];
        assert_eq!(parse_hex32(&crypto::hex(&t)), Some(t));
        assert_eq!(parse_hex32("zz"), None);
    }
}
