//! An in-process keyspace with a deadline on every entry: the data structure
//! under the memory backend, shaped like the small part of Redis the store
//! uses (strings, counters, sets, TTLs).
//!
//! # What it owns
//!
//! - Expiry: an entry past its deadline is never returned (lazy check on
//!   access), and every write first removes up to [`SWEEP_LIMIT`] expired
//!   entries in deadline order, so memory stays bounded by live entries plus
//!   a small lag without a background task.
//! - The invariant that every entry has a deadline (there is no way to
//!   insert one without a TTL).
//! - Freeing: the map's and index's room is given back once most of it is
//!   empty (after a flood has expired), not kept at its high-water mark.
//! - Counting the entries written as sign-in state ([`Keyspace::set_limited`])
//!   apart from the rest, so that the memory backend can hold that state to
//!   a hard bound without ever refusing a session.
//!
//! # What it does not own
//!
//! Locking (the memory backend wraps it in a mutex) and the meaning of keys.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// Most expired entries removed by one write.
pub(super) const SWEEP_LIMIT: usize = 256;

/// Below this many slots the map is never shrunk.
const SHRINK_FLOOR: usize = 1024;

/// A stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    Str(String),
    Count(u64),
    Set(HashSet<String>),
    /// Deadlines of things counted in a sliding window, oldest first.
    Deadlines(VecDeque<Instant>),
}

#[derive(Debug)]
struct Entry {
    value: Value,
    deadline: Instant,
    /// Written by [`Keyspace::set_limited`].
    limited: bool,
}

/// Keys with values and deadlines; see the module docs.
#[derive(Debug, Default)]
pub(super) struct Keyspace {
    map: HashMap<String, Entry>,
    /// `(deadline, key)` for every entry in `map`, kept in step with it.
    expiry: BTreeSet<(Instant, String)>,
    /// How many entries of `map` are `limited`.
    limited: usize,
}

/// `now + ttl`, saturating far in the future instead of overflowing.
pub(super) fn deadline_after(now: Instant, ttl: Duration) -> Instant {
    now.checked_add(ttl)
        .or_else(|| now.checked_add(super::ttl::MAX_TTL))
        .unwrap_or(now)
}

impl Keyspace {
    /// Number of entries held, live or not yet swept.
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// The live keys that start with `prefix` (O(keys): for the command
    /// line, not for requests).
    pub(super) fn keys_with_prefix(&mut self, prefix: &str, now: Instant) -> Vec<String> {
        self.sweep_all(now);
        self.map
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Number of entries written with [`Keyspace::set_limited`], live or not
    /// yet swept.
    pub(super) fn limited_len(&self) -> usize {
        self.limited
    }

    /// Removes up to [`SWEEP_LIMIT`] entries whose deadline is at or before
    /// `now`, oldest first.
    pub(super) fn sweep(&mut self, now: Instant) {
        self.sweep_up_to(now, SWEEP_LIMIT);
    }

    /// Removes every entry whose deadline is at or before `now`.
    pub(super) fn sweep_all(&mut self, now: Instant) {
        self.sweep_up_to(now, usize::MAX);
    }

    fn sweep_up_to(&mut self, now: Instant, limit: usize) {
        let mut removed = 0;
        while removed < limit {
            let Some((deadline, _)) = self.expiry.first() else {
                break;
            };
            if *deadline > now {
                break;
            }
            if let Some((_, key)) = self.expiry.pop_first() {
                self.drop_entry(&key);
            }
            removed += 1;
        }
        if removed > 0 {
            self.give_back_room();
        }
    }

    /// Removes `key` from the map only (the caller keeps `expiry` in step).
    fn drop_entry(&mut self, key: &str) -> Option<Entry> {
        let entry = self.map.remove(key)?;
        if entry.limited {
            self.limited -= 1;
        }
        Some(entry)
    }

    /// Shrinks the map once three quarters of its slots are empty, so a
    /// flood that has expired does not keep its memory.
    fn give_back_room(&mut self) {
        let capacity = self.map.capacity();
        if capacity > SHRINK_FLOOR && self.map.len() < capacity / 4 {
            self.map.shrink_to(self.map.len() * 2);
        }
    }

    /// Drops `key` if it has expired; true if a live entry remains.
    fn live(&mut self, key: &str, now: Instant) -> bool {
        let deadline = match self.map.get(key) {
            None => return false,
            Some(entry) => entry.deadline,
        };
        if deadline > now {
            return true;
        }
        self.remove(key);
        false
    }

    /// The live value of `key`.
    pub(super) fn get(&mut self, key: &str, now: Instant) -> Option<&Value> {
        if !self.live(key, now) {
            return None;
        }
        self.map.get(key).map(|e| &e.value)
    }

    /// The live value of `key`, mutable (the deadline is unchanged).
    pub(super) fn get_mut(&mut self, key: &str, now: Instant) -> Option<&mut Value> {
        if !self.live(key, now) {
            return None;
        }
        self.map.get_mut(key).map(|e| &mut e.value)
    }

    /// The time left before `key` expires, if it is live.
    pub(super) fn ttl(&mut self, key: &str, now: Instant) -> Option<Duration> {
        if !self.live(key, now) {
            return None;
        }
        self.map
            .get(key)
            .map(|e| e.deadline.saturating_duration_since(now))
    }

    /// Stores `value` under `key` for `ttl`, replacing any entry.
    pub(super) fn set(&mut self, key: &str, value: Value, ttl: Duration, now: Instant) {
        self.insert(key, value, ttl, now, false);
    }

    /// [`Keyspace::set`] for sign-in state: the entry counts in
    /// [`Keyspace::limited_len`].
    pub(super) fn set_limited(&mut self, key: &str, value: Value, ttl: Duration, now: Instant) {
        self.insert(key, value, ttl, now, true);
    }

    fn insert(&mut self, key: &str, value: Value, ttl: Duration, now: Instant, limited: bool) {
        self.sweep(now);
        let deadline = deadline_after(now, super::ttl::clamp_ttl(ttl));
        let entry = Entry {
            value,
            deadline,
            limited,
        };
        if let Some(old) = self.map.insert(key.to_owned(), entry) {
            self.expiry.remove(&(old.deadline, key.to_owned()));
            if old.limited {
                self.limited -= 1;
            }
        }
        if limited {
            self.limited += 1;
        }
        self.expiry.insert((deadline, key.to_owned()));
    }

    /// Sets a new TTL on a live `key`; false if there is none.
    pub(super) fn expire(&mut self, key: &str, ttl: Duration, now: Instant) -> bool {
        self.sweep(now);
        if !self.live(key, now) {
            return false;
        }
        let deadline = deadline_after(now, super::ttl::clamp_ttl(ttl));
        match self.map.get_mut(key) {
            Some(entry) => {
                let old = std::mem::replace(&mut entry.deadline, deadline);
                self.expiry.remove(&(old, key.to_owned()));
                self.expiry.insert((deadline, key.to_owned()));
                true
            }
            None => false,
        }
    }

    /// Removes `key`, returning its value if it was live.
    pub(super) fn take(&mut self, key: &str, now: Instant) -> Option<Value> {
        if !self.live(key, now) {
            return None;
        }
        self.remove(key)
    }

    /// Removes `key` whether live or not.
    pub(super) fn remove(&mut self, key: &str) -> Option<Value> {
        let entry = self.drop_entry(key)?;
        self.expiry.remove(&(entry.deadline, key.to_owned()));
        Some(entry.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_entries_are_invisible_and_removed() {
        let t0 = Instant::now();
        let mut ks = Keyspace::default();
        ks.set("a", Value::Count(1), Duration::from_secs(1), t0);
        assert_eq!(ks.get("a", t0), Some(&Value::Count(1)));
        let later = t0 + Duration::from_secs(1);
        assert_eq!(ks.get("a", later), None);
        assert_eq!(ks.len(), 0);
        assert!(ks.expiry.is_empty());
    }

    #[test]
    fn expire_moves_the_deadline() {
        let t0 = Instant::now();
        let mut ks = Keyspace::default();
        ks.set("a", Value::Str("x".into()), Duration::from_secs(1), t0);
        assert!(ks.expire("a", Duration::from_secs(10), t0));
        assert_eq!(ks.ttl("a", t0), Some(Duration::from_secs(10)));
        assert_eq!(ks.expiry.len(), 1);
        assert!(ks.get("a", t0 + Duration::from_secs(5)).is_some());
        assert!(!ks.expire("missing", Duration::from_secs(1), t0));
    }

    #[test]
    fn writes_sweep_expired_entries_in_bounded_steps() {
        let t0 = Instant::now();
        let mut ks = Keyspace::default();
        for i in 0..(SWEEP_LIMIT * 2) {
            ks.set(
                &format!("k{i}"),
                Value::Count(1),
                Duration::from_millis(10),
                t0,
            );
        }
        let later = t0 + Duration::from_secs(1);
        ks.set("fresh", Value::Count(1), Duration::from_secs(10), later);
        assert_eq!(ks.len(), SWEEP_LIMIT + 1);
        ks.set("fresh2", Value::Count(1), Duration::from_secs(10), later);
        assert_eq!(ks.len(), 2);
        assert_eq!(ks.expiry.len(), 2);
    }

    #[test]
    fn replacing_keeps_expiry_index_in_step() {
        let t0 = Instant::now();
        let mut ks = Keyspace::default();
        ks.set("a", Value::Count(1), Duration::from_secs(1), t0);
        ks.set("a", Value::Count(2), Duration::from_secs(2), t0);
        assert_eq!(ks.expiry.len(), 1);
        assert_eq!(ks.take("a", t0), Some(Value::Count(2)));
        assert!(ks.expiry.is_empty());
        assert_eq!(ks.take("a", t0), None);
    }

    #[test]
    fn limited_entries_are_counted_apart() {
        let t0 = Instant::now();
        let mut ks = Keyspace::default();
        ks.set("s", Value::Count(1), Duration::from_secs(10), t0);
        ks.set_limited("a", Value::Count(1), Duration::from_secs(1), t0);
        ks.set_limited("b", Value::Count(1), Duration::from_secs(10), t0);
        assert_eq!((ks.len(), ks.limited_len()), (3, 2));
        ks.set("b", Value::Count(2), Duration::from_secs(10), t0);
        assert_eq!((ks.len(), ks.limited_len()), (3, 1));
        ks.sweep_all(t0 + Duration::from_secs(2));
        assert_eq!((ks.len(), ks.limited_len()), (2, 0));
    }

    #[test]
    fn expired_floods_give_their_room_back() {
        let t0 = Instant::now();
        let mut ks = Keyspace::default();
        for i in 0..100_000 {
            ks.set_limited(
                &format!("k{i}"),
                Value::Count(1),
                Duration::from_millis(10),
                t0,
            );
        }
        let high = ks.map.capacity();
        ks.sweep_all(t0 + Duration::from_secs(1));
        assert_eq!((ks.len(), ks.limited_len()), (0, 0));
        assert!(ks.expiry.is_empty());
        assert!(
            ks.map.capacity() <= SHRINK_FLOOR,
            "{high} -> {}",
            ks.map.capacity()
        );
    }

    #[test]
    fn huge_ttl_does_not_overflow() {
        let t0 = Instant::now();
        let mut ks = Keyspace::default();
        ks.set("a", Value::Count(1), Duration::MAX, t0);
        assert_eq!(ks.ttl("a", t0), Some(super::super::ttl::MAX_TTL));
    }
}
