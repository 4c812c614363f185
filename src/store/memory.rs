//! The memory backend: the store's semantics over a [`Keyspace`] behind one
//! `std::sync::Mutex`, for a single instance (state is lost on restart and
//! not shared between processes).
//!
//! # What it owns
//!
//! Doing each store operation as one critical section, which gives the same
//! atomicity the Redis backend gets from Lua scripts: the lock is never held
//! across an `.await` (no method here is async). Revocations go to a local
//! broadcast channel only.
//!
//! The hard bound on sign-in state: attempts, browser index entries,
//! counters, claims and pending lists are written as limited entries, and
//! no new one is created while [`super::memory_bound`] of them (for the
//! `max_pending` last given to [`MemoryStore::admit_sign_in`]) are held;
//! expired ones are swept first. Sessions are not limited.
//!
//! # What it does not own
//!
//! Expiry mechanics (in [`Keyspace`]) and the key layout (in the parent).
//!
//! # Threat model
//!
//! Same as the store's: keys are HMACs from the caller; a poisoned lock (a
//! panic elsewhere while holding it) is recovered rather than propagated, as
//! every critical section leaves the keyspace consistent between calls.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::keyspace::{deadline_after, Keyspace, Value};
use super::records::{decode, encode};
use super::ttl::{new_session_ttls, refreshed_session_ttl, unix_now_ms};
use super::{
    key, memory_bound, Admission, Attempt, SessionRecord, SignInLimits, StoreError,
    KEYS_PER_ATTEMPT, REVOCATION_CAPACITY,
};

/// `max_pending` assumed until the first sign-in request gives the
/// configured one (the config default).
const DEFAULT_MAX_PENDING: u64 = 10_000;

pub(super) struct MemoryStore {
    state: Mutex<Keyspace>,
    revoked: broadcast::Sender<String>,
    /// Most limited (sign-in) entries held; see the module docs.
    bound: AtomicUsize,
}

impl MemoryStore {
    pub(super) fn new() -> Self {
        let (revoked, _) = broadcast::channel(REVOCATION_CAPACITY);
        MemoryStore {
            state: Mutex::new(Keyspace::default()),
            revoked,
            bound: AtomicUsize::new(memory_bound(DEFAULT_MAX_PENDING)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Keyspace> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True if `more` limited entries may be added (after sweeping every
    /// expired entry when the bound is near).
    fn room(&self, ks: &mut Keyspace, more: usize, now: Instant) -> bool {
        let bound = self.bound.load(Ordering::Relaxed);
        if ks.limited_len().saturating_add(more) <= bound {
            return true;
        }
        ks.sweep_all(now);
        ks.limited_len().saturating_add(more) <= bound
    }

    pub(super) fn hit(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        let k = key::rate(key);
        let now = Instant::now();
        let mut ks = self.lock();
        if let Some(Value::Count(n)) = ks.get_mut(&k, now) {
            *n = n.saturating_add(1);
            return Ok(*n);
        }
        if !self.room(&mut ks, 1, now) {
            return Ok(u64::MAX);
        }
        ks.set_limited(&k, Value::Count(1), window, now);
        Ok(1)
    }

    pub(super) fn admit_sign_in(&self, l: &SignInLimits<'_>) -> Result<Admission, StoreError> {
        self.bound
            .store(memory_bound(l.max_pending), Ordering::Relaxed);
        let now = Instant::now();
        let mut ks = self.lock();
        let total_key = key::PENDING_TOTAL;
        if pending_count(&mut ks, total_key, now) >= l.max_pending
            || !self.room(&mut ks, KEYS_PER_ATTEMPT, now)
        {
            return Ok(Admission::TotalFull);
        }
        let ip_count = hit_in(&mut ks, &key::rate(l.ip_key), l.ip_window, now);
        if ip_count > l.ip_rate {
            return Ok(Admission::IpRate);
        }
        let ip_pending_key = key::pending(l.ip_key);
        if pending_count(&mut ks, &ip_pending_key, now) >= l.max_pending_per_ip {
            return Ok(Admission::IpFull);
        }
        let address_count = hit_in(&mut ks, &key::rate(l.address_key), l.address_window, now);
        let fresh = match l.resend {
            Some((k, ttl)) => {
                let k = key::rate(k);
                let free = ks.get(&k, now).is_none();
                if free {
                    ks.set_limited(&k, Value::Str("1".to_owned()), ttl, now);
                }
                free
            }
            None => true,
        };
        for k in [total_key, ip_pending_key.as_str()] {
            pending_push(&mut ks, k, l.pending_window, now);
        }
        Ok(Admission::Admitted {
            ip_count,
            address_count,
            fresh,
        })
    }

    pub(super) fn key_count(&self) -> Result<usize, StoreError> {
        let mut ks = self.lock();
        ks.sweep_all(Instant::now());
        Ok(ks.len())
    }

    pub(super) fn count(&self, key: &str) -> Result<u64, StoreError> {
        let k = key::rate(key);
        let now = Instant::now();
        let mut ks = self.lock();
        match ks.get(&k, now) {
            Some(Value::Count(n)) => Ok(*n),
            _ => Ok(0),
        }
    }

    pub(super) fn claim(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let k = key::rate(key);
        let now = Instant::now();
        let mut ks = self.lock();
        if ks.get(&k, now).is_some() || !self.room(&mut ks, 1, now) {
            return Ok(false);
        }
        ks.set_limited(&k, Value::Str("1".to_owned()), ttl, now);
        Ok(true)
    }

    pub(super) fn put_attempt(
        &self,
        token_hash: &str,
        attempt: &Attempt,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let value = encode("attempt", attempt)?;
        let browser_key = key::browser(&attempt.browser);
        let now = Instant::now();
        let mut ks = self.lock();
        if let Some(Value::Str(old)) = ks.get(&browser_key, now) {
            if old != token_hash {
                let old = old.clone();
                ks.remove(&key::attempt(&old));
                ks.remove(&key::failures(&old));
            }
        }
        // Room was checked when the request was admitted.
        ks.set_limited(&key::attempt(token_hash), Value::Str(value), ttl, now);
        ks.set_limited(&browser_key, Value::Str(token_hash.to_owned()), ttl, now);
        ks.remove(&key::failures(token_hash));
        Ok(())
    }

    pub(super) fn peek_attempt(&self, token_hash: &str) -> Result<Option<Attempt>, StoreError> {
        let raw = match self.lock().get(&key::attempt(token_hash), Instant::now()) {
            Some(Value::Str(raw)) => raw.clone(),
            _ => return Ok(None),
        };
        decode("attempt", &raw).map(Some)
    }

    pub(super) fn take_attempt(&self, token_hash: &str) -> Result<Option<Attempt>, StoreError> {
        let now = Instant::now();
        let mut ks = self.lock();
        let raw = match ks.take(&key::attempt(token_hash), now) {
            Some(Value::Str(raw)) => raw,
            _ => return Ok(None),
        };
        ks.remove(&key::failures(token_hash));
        let attempt: Attempt = decode("attempt", &raw)?;
        remove_browser_index_if(&mut ks, &attempt.browser, token_hash, now);
        Ok(Some(attempt))
    }

    pub(super) fn attempt_for_browser(
        &self,
        browser: &str,
    ) -> Result<Option<(String, Attempt)>, StoreError> {
        let now = Instant::now();
        let (token, raw) = {
            let mut ks = self.lock();
            let token = match ks.get(&key::browser(browser), now) {
                Some(Value::Str(token)) => token.clone(),
                _ => return Ok(None),
            };
            match ks.get(&key::attempt(&token), now) {
                Some(Value::Str(raw)) => (token, raw.clone()),
                _ => return Ok(None),
            }
        };
        let attempt: Attempt = decode("attempt", &raw)?;
        if attempt.browser != browser {
            return Ok(None);
        }
        Ok(Some((token, attempt)))
    }

    pub(super) fn fail_attempt(&self, token_hash: &str, max: u32) -> Result<u32, StoreError> {
        let now = Instant::now();
        let attempt_key = key::attempt(token_hash);
        let fail_key = key::failures(token_hash);
        let mut ks = self.lock();
        let Some(left) = ks.ttl(&attempt_key, now) else {
            return Ok(max);
        };
        let count = match ks.get(&fail_key, now) {
            Some(Value::Count(n)) => n.saturating_add(1),
            _ => 1,
        };
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        if count < max {
            ks.set_limited(&fail_key, Value::Count(u64::from(count)), left, now);
            return Ok(count);
        }
        ks.remove(&fail_key);
        if let Some(Value::Str(raw)) = ks.take(&attempt_key, now) {
            if let Ok(attempt) = decode::<Attempt>("attempt", &raw) {
                remove_browser_index_if(&mut ks, &attempt.browser, token_hash, now);
            }
        }
        Ok(count)
    }

    pub(super) fn put_session(
        &self,
        id_hash: &str,
        email_hash: &str,
        record: &SessionRecord,
        idle: Duration,
    ) -> Result<(), StoreError> {
        let value = encode("session", record)?;
        let Some((ttl, lifetime)) = new_session_ttls(record, idle, unix_now_ms()) else {
            return Ok(());
        };
        let now = Instant::now();
        let index_key = key::index(email_hash);
        let mut ks = self.lock();
        ks.set(&key::session(id_hash), Value::Str(value), ttl, now);
        // The index must outlive every session in it: sessions are
        // refreshed without touching the index, up to their absolute end.
        let index_ttl = ks
            .ttl(&index_key, now)
            .map_or(lifetime, |t| t.max(lifetime));
        let mut members = match ks.take(&index_key, now) {
            Some(Value::Set(members)) => members,
            _ => HashSet::new(),
        };
        prune_index(&mut ks, &mut members, now);
        members.insert(id_hash.to_owned());
        ks.set(&index_key, Value::Set(members), index_ttl, now);
        Ok(())
    }

    pub(super) fn get_session(
        &self,
        id_hash: &str,
        idle: Duration,
        now_unix: u64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let session_key = key::session(id_hash);
        let now = Instant::now();
        let mut ks = self.lock();
        let raw = match ks.get(&session_key, now) {
            Some(Value::Str(raw)) => raw.clone(),
            _ => return Ok(None),
        };
        let record: SessionRecord = decode("session", &raw)?;
        match refreshed_session_ttl(&record, idle, now_unix) {
            Some(ttl) => {
                ks.expire(&session_key, ttl, now);
                Ok(Some(record))
            }
            None => {
                ks.remove(&session_key);
                Ok(None)
            }
        }
    }

    pub(super) fn delete_session(&self, id_hash: &str, email_hash: &str) -> Result<(), StoreError> {
        let now = Instant::now();
        {
            let mut ks = self.lock();
            ks.remove(&key::session(id_hash));
            let index_key = key::index(email_hash);
            let now_empty = match ks.get_mut(&index_key, now) {
                Some(Value::Set(members)) => {
                    members.remove(id_hash);
                    members.is_empty()
                }
                _ => false,
            };
            if now_empty {
                ks.remove(&index_key);
            }
        }
        // No receivers is fine: nothing caches sessions then.
        let _ = self.revoked.send(id_hash.to_owned());
        Ok(())
    }

    pub(super) fn revoke_all(&self, email_hash: &str) -> Result<usize, StoreError> {
        let now = Instant::now();
        let (members, deleted) = {
            let mut ks = self.lock();
            let members = match ks.take(&key::index(email_hash), now) {
                Some(Value::Set(members)) => members,
                _ => return Ok(0),
            };
            let deleted = members
                .iter()
                .filter(|id| ks.take(&key::session(id), now).is_some())
                .count();
            (members, deleted)
        };
        for id in members {
            let _ = self.revoked.send(id);
        }
        Ok(deleted)
    }

    pub(super) fn count_sessions(&self, email_hash: &str) -> Result<usize, StoreError> {
        let now = Instant::now();
        let index_key = key::index(email_hash);
        let mut ks = self.lock();
        let Some(left) = ks.ttl(&index_key, now) else {
            return Ok(0);
        };
        let mut members = match ks.take(&index_key, now) {
            Some(Value::Set(members)) => members,
            _ => return Ok(0),
        };
        prune_index(&mut ks, &mut members, now);
        let count = members.len();
        if count > 0 {
            ks.set(&index_key, Value::Set(members), left, now);
        }
        Ok(count)
    }

    pub(super) fn indexes(&self) -> Result<Vec<String>, StoreError> {
        let mut ks = self.lock();
        let prefix = key::index("");
        Ok(ks
            .keys_with_prefix(&prefix, Instant::now())
            .into_iter()
            .filter_map(|k| k.strip_prefix(&prefix).map(String::from))
            .collect())
    }

    pub(super) fn list_sessions(
        &self,
        email_hash: &str,
    ) -> Result<Vec<(String, SessionRecord)>, StoreError> {
        let now = Instant::now();
        let mut ks = self.lock();
        let members = match ks.get(&key::index(email_hash), now) {
            Some(Value::Set(members)) => members.clone(),
            _ => return Ok(Vec::new()),
        };
        let mut out = Vec::new();
        for id in members {
            if let Some(Value::Str(raw)) = ks.get(&key::session(&id), now) {
                let record = decode("session", raw)?;
                out.push((id, record));
            }
        }
        Ok(out)
    }

    pub(super) fn put_share(
        &self,
        id: &str,
        record: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut ks = self.lock();
        ks.set(&key::share(id), Value::Str(record.to_owned()), ttl, now);
        Ok(())
    }

    pub(super) fn shares(&self) -> Result<Vec<String>, StoreError> {
        let now = Instant::now();
        let mut ks = self.lock();
        let keys = ks.keys_with_prefix(&key::share(""), now);
        Ok(keys
            .iter()
            .filter_map(|k| match ks.get(k, now) {
                Some(Value::Str(v)) => Some(v.clone()),
                _ => None,
            })
            .collect())
    }

    pub(super) fn revocations(&self) -> broadcast::Receiver<String> {
        self.revoked.subscribe()
    }
}

/// [`MemoryStore::hit`] inside a critical section (room already checked).
fn hit_in(ks: &mut Keyspace, k: &str, window: Duration, now: Instant) -> u64 {
    if let Some(Value::Count(n)) = ks.get_mut(k, now) {
        *n = n.saturating_add(1);
        return *n;
    }
    ks.set_limited(k, Value::Count(1), window, now);
    1
}

/// How many deadlines in the pending list `k` are still ahead (past ones
/// are dropped).
fn pending_count(ks: &mut Keyspace, k: &str, now: Instant) -> u64 {
    match ks.get_mut(k, now) {
        Some(Value::Deadlines(list)) => {
            while list.front().is_some_and(|d| *d <= now) {
                list.pop_front();
            }
            list.len() as u64
        }
        _ => 0,
    }
}

/// Adds one deadline `window` from now to the pending list `k`; the list
/// lives as long as its newest entry.
fn pending_push(ks: &mut Keyspace, k: &str, window: Duration, now: Instant) {
    let mut list = match ks.take(k, now) {
        Some(Value::Deadlines(list)) => list,
        _ => VecDeque::new(),
    };
    list.push_back(deadline_after(now, window));
    ks.set_limited(k, Value::Deadlines(list), window, now);
}

/// Removes the browser index entry of `browser` if it points at `token_hash`.
fn remove_browser_index_if(ks: &mut Keyspace, browser: &str, token_hash: &str, now: Instant) {
    let browser_key = key::browser(browser);
    if matches!(ks.get(&browser_key, now), Some(Value::Str(t)) if t == token_hash) {
        ks.remove(&browser_key);
    }
}

/// Drops ids whose session is gone from `members`.
fn prune_index(ks: &mut Keyspace, members: &mut HashSet<String>, now: Instant) {
    members.retain(|id| ks.ttl(&key::session(id), now).is_some());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits<'a>(ip: &'a str, token: &'a str, max_pending: u64) -> SignInLimits<'a> {
        let w = Duration::from_secs(60);
        SignInLimits {
            ip_key: ip,
            ip_window: w,
            ip_rate: u64::MAX,
            max_pending_per_ip: u64::MAX,
            max_pending,
            pending_window: w,
            address_key: token,
            address_window: w,
            resend: None,
            token_hash: token,
        }
    }

    #[test]
    fn sign_in_state_has_a_hard_bound_and_sessions_do_not_count() {
        let store = MemoryStore::new();
        let max = 10;
        let mut admitted = 0;
        for i in 0..100 {
            let (ip, token) = (format!("ip:{i}"), format!("t{i}"));
            if let Admission::Admitted { .. } =
                store.admit_sign_in(&limits(&ip, &token, max)).unwrap()
            {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 10);
        let bound = memory_bound(max);
        // 10 IP counters, 10 IP pending lists, 10 address counters, the
        // total list; the 90 over the cap stored nothing.
        let before = store.lock().limited_len();
        assert_eq!(before, 31);
        // New failure counters stop at the bound (over every limit).
        let mut refused = 0;
        for i in 0..(bound * 2) {
            if store
                .hit(&format!("fail:{i}"), Duration::from_secs(60))
                .unwrap()
                == u64::MAX
            {
                refused += 1;
            }
        }
        assert_eq!(refused, bound * 2 - (bound - before));
        assert_eq!(store.lock().limited_len(), bound);
        // Sessions are still stored.
        let record = SessionRecord {
            email: "a@example.com".into(),
            created_at: 0,
            expires_at: u64::MAX / 2000,
            amr: None,
        };
        store
            .put_session("s1", "e1", &record, Duration::from_secs(60))
            .unwrap();
        let got = store.get_session("s1", Duration::from_secs(60), 1).unwrap();
        assert_eq!(got, Some(record));
    }
}
