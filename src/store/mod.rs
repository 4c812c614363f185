//! Server-side state of the gateway: sign-in attempts, sessions, the
//! per-address session index, rate-limit counters and the revocation
//! broadcast, kept either in process memory or in Redis behind one type,
//! [`Store`].
//!
//! # What this module owns
//!
//! - The data model of stored state ([`Attempt`], [`SessionRecord`]) and its
//!   JSON encoding (`records`).
//! - The key layout (`{prefix}att:{token}`, `{prefix}brw:{browser}`,
//!   `{prefix}fail:{token}`, `{prefix}ses:{id}`, `{prefix}idx:{email_hash}`,
//!   `{prefix}rl:{key}`, `{prefix}pend:{ip key}`, `{prefix}pend:all`,
//!   `{prefix}shr:{share id}`,
//!   channel `{prefix}revoked`; in a Redis Cluster sign-in state is under
//!   `{prefix}{signin}:…` and sessions and indexes are `{prefix}ses:{id}`
//!   and `{prefix}idx:{hash}`, each in its own slot) and the rule that
//!   every key has a TTL (its bounds and the session TTLs in `ttl`).
//! - Admitting a sign-in request ([`Store::admit_sign_in`]): the caps on
//!   stored sign-ins per IP and in total, and the rule that a request over
//!   a cap or over the IP rate stores nothing of its own.
//! - The atomicity of the operations that must be atomic (taking an attempt,
//!   counting wrong codes, replacing a browser's older attempt).
//! - Mapping backend failures to [`StoreError`] within a bounded time.
//! - Knowing whether it is usable ([`Store::is_up`], [`Store::ready`]) and
//!   starting without Redis ([`Store::open`]).
//!
//! # What it does not own
//!
//! - Hashing. Callers pass identifiers that are already keyed HMACs (hex);
//!   the store never sees a raw token, code, cookie or verifier. It does not
//!   know the key and cannot reverse them.
//! - Policy: window lengths, attempt limits, session lifetimes and what to do
//!   when the store is unavailable are decided by the caller.
//! - Caching of sessions in the proxy (the caller listens to
//!   [`Store::revocations`] to drop cached entries, and drops them all when
//!   [`Store::revocation_epoch`] moves on).
//!
//! # Threat model
//!
//! - A read of the store (a Redis dump, a memory image) must not yield
//!   anything that signs a person in: keys hold only HMACs of secrets, and the
//!   only personal data (the email address) lives inside values.
//! - A link must work once: [`Store::take_attempt`] is a single atomic step,
//!   so of any number of concurrent callers exactly one receives the attempt.
//! - Guessing the short code is bounded: [`Store::fail_attempt`] counts wrong
//!   codes and deletes the attempt in the same atomic step that reaches the
//!   limit.
//! - State cannot outlive its purpose: every key carries a TTL, sessions can
//!   never be refreshed past their absolute end.
//! - A flood of sign-in requests cannot grow state without bound: a request
//!   over the IP rate or a pending cap stores nothing new, and the memory
//!   backend holds sign-in state (attempts, counters, claims) to a hard
//!   bound of [`KEYS_PER_ATTEMPT`] entries per `max_pending` (sessions are
//!   never refused by it).
//! - An unreachable or stalled Redis must not hang requests: every Redis
//!   operation is bounded by the configured response timeout and fails with
//!   [`StoreError::Unavailable`].
//! - Nothing here logs identifiers, values or the Redis URL's password.

mod health;
mod keyspace;
mod memory;
mod op_errors;
mod records;
mod redis;
mod redis_cluster;
mod redis_conn;
mod redis_scripts;
mod settings;
mod subscriber;
mod ttl;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use op_errors::{Op, OpErrors};
pub use records::{Attempt, SessionRecord};
pub use settings::{RedisMode, RedisSettings, RedisTls, StoreSettings};

/// The limits one sign-in request is admitted under
/// ([`Store::admit_sign_in`]). Keys are short strings made by the caller
/// from keyed hashes, like those given to [`Store::hit`].
#[derive(Debug, Clone, Copy)]
pub struct SignInLimits<'a> {
    /// The client's rate key (its IP, or its IPv6 /64).
    pub ip_key: &'a str,
    pub ip_window: Duration,
    pub ip_rate: u64,
    /// Cap on sign-ins stored for `ip_key` within `pending_window`.
    pub max_pending_per_ip: u64,
    /// Cap on sign-ins stored in total within `pending_window`.
    pub max_pending: u64,
    /// How long a stored sign-in counts (the link's lifetime).
    pub pending_window: Duration,
    pub address_key: &'a str,
    pub address_window: Duration,
    /// The resend claim and its lifetime, when there is a resend delay.
    pub resend: Option<(&'a str, Duration)>,
    /// The attempt the caller will store when admitted.
    pub token_hash: &'a str,
}

/// What [`Store::admit_sign_in`] decided. Only `Admitted` stored anything
/// new; the others at most counted on a counter the client already had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// `max_pending` sign-ins are stored (or the memory backend is at its
    /// bound): nothing was counted or stored.
    TotalFull,
    /// The IP's counter went over `ip_rate`; nothing else was touched.
    IpRate,
    /// `max_pending_per_ip` sign-ins are stored for this IP.
    IpFull,
    /// Room for one attempt was reserved under `token_hash`; the address
    /// counter and the resend claim were counted.
    Admitted {
        ip_count: u64,
        address_count: u64,
        /// The resend claim was free (or there is no resend delay).
        fresh: bool,
    },
}

/// The most entries one admitted sign-in adds to the memory backend (IP
/// counter, its pending list, the total list, address counter, resend
/// claim, attempt, browser index, wrong-code counter).
pub const KEYS_PER_ATTEMPT: usize = 8;

/// The memory backend's hard bound on sign-in entries for a `max_pending`.
pub(super) fn memory_bound(max_pending: u64) -> usize {
    usize::try_from(max_pending)
        .unwrap_or(usize::MAX)
        .saturating_mul(KEYS_PER_ATTEMPT)
        .saturating_add(1024)
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// The backend could not be reached, timed out or refused the operation
    /// (also used for an unusable Redis URL at start).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored value could not be decoded. The message never contains the
    /// value itself.
    #[error("corrupt value: {0}")]
    Corrupt(String),
}

/// Capacity of the revocation broadcast; slow receivers lag (and are told
/// so by `RecvError::Lagged`) rather than block senders.
const REVOCATION_CAPACITY: usize = 1024;

/// The gateway's state store. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Store {
    backend: Arc<Backend>,
    errors: Arc<OpErrors>,
}

enum Backend {
    Memory(memory::MemoryStore),
    Redis(self::redis::RedisStore),
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend_name())
            .finish()
    }
}

impl Store {
    /// Memory: ready at once. Redis: a `ConnectionManager` with the given
    /// connect/response timeouts; fails with [`StoreError::Unavailable`] if
    /// Redis cannot be reached at start. Also starts the revocation
    /// subscriber task (Redis pub/sub on its own connection, subscribed before
    /// this returns, reconnecting with backoff when Redis goes away). Must be
    /// called inside a tokio runtime.
    pub async fn connect(settings: &StoreSettings) -> Result<Store, StoreError> {
        let backend = match settings {
            StoreSettings::Memory => Backend::Memory(memory::MemoryStore::new()),
            StoreSettings::Redis(r) => Backend::Redis(self::redis::RedisStore::connect(r).await?),
        };
        Ok(Store {
            backend: Arc::new(backend),
            errors: Arc::default(),
        })
    }

    /// Like [`Store::connect`], but a Redis that cannot be reached now is
    /// not an error: the store starts at once, every operation answers
    /// [`StoreError::Unavailable`] until Redis answers, and the connection
    /// and the revocation subscription come up by themselves when it does
    /// ([`Store::is_up`] tells when). Fails only for a URL that cannot be
    /// used. Must be called inside a tokio runtime.
    pub fn open(settings: &StoreSettings) -> Result<Store, StoreError> {
        let backend = match settings {
            StoreSettings::Memory => Backend::Memory(memory::MemoryStore::new()),
            StoreSettings::Redis(r) => Backend::Redis(self::redis::RedisStore::open(r)?),
        };
        Ok(Store {
            backend: Arc::new(backend),
            errors: Arc::default(),
        })
    }

    /// Whether the store is usable as far as this process knows, without
    /// asking it: memory always; Redis when the revocation subscription is
    /// live and the last command reached Redis.
    pub fn is_up(&self) -> bool {
        match &*self.backend {
            Backend::Memory(_) => true,
            Backend::Redis(r) => r.is_up(),
        }
    }

    /// [`Store::is_up`], confirmed by a PING when the last command failed
    /// while the subscription is live (so a probe sees recovery even when
    /// no request has reached Redis since). Bounded by the response
    /// timeout.
    pub async fn ready(&self) -> bool {
        match &*self.backend {
            Backend::Memory(_) => true,
            Backend::Redis(r) if r.is_up() => true,
            Backend::Redis(r) if r.is_subscribed() => r.ping().await.is_ok() && r.is_up(),
            Backend::Redis(_) => false,
        }
    }

    /// Changes every time the revocation subscription is (re)established,
    /// i.e. whenever revocations published earlier may not have reached
    /// this process. A session cached under an older value must be
    /// confirmed with the store again. Always 0 in memory.
    pub fn revocation_epoch(&self) -> u64 {
        match &*self.backend {
            Backend::Memory(_) => 0,
            Backend::Redis(r) => r.revocation_epoch(),
        }
    }

    /// `"memory"` or `"redis"`.
    pub fn backend_name(&self) -> &'static str {
        match &*self.backend {
            Backend::Memory(_) => "memory",
            Backend::Redis(_) => "redis",
        }
    }

    /// Increments the fixed-window counter `key` (a short string made by the
    /// caller, e.g. `"ip:1.2.3.4"`). The window starts with the first hit
    /// (TTL = `window`, set only when the key is new). Returns the count
    /// after this hit. Memory: when sign-in state is at its hard bound, a
    /// new counter is not created and `u64::MAX` (over every limit) is
    /// returned.
    pub async fn hit(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        let result = match &*self.backend {
            Backend::Memory(m) => m.hit(key, window),
            Backend::Redis(r) => r.hit(key, window).await,
        };
        self.counted(Op::Hit, result)
    }

    /// Admits one sign-in request, in one atomic step (one round trip on
    /// Redis), in this order: the total cap (nothing touched when full),
    /// the IP counter (over `ip_rate`: nothing more), the IP's pending cap,
    /// then the address counter and the resend claim, and finally one place
    /// in both pending lists for `token_hash`. Only an `Admitted` request
    /// has stored anything new, and the caller then stores an attempt
    /// (real or decoy) with [`Store::put_attempt`].
    pub async fn admit_sign_in(&self, limits: &SignInLimits<'_>) -> Result<Admission, StoreError> {
        let result = match &*self.backend {
            Backend::Memory(m) => m.admit_sign_in(limits),
            Backend::Redis(r) => r.admit_sign_in(limits).await,
        };
        self.counted(Op::AdmitSignIn, result)
    }

    /// Number of live keys this store holds (memory: entries; Redis: keys
    /// under the prefix, by SCAN). For tests and diagnostics: O(keys).
    pub async fn key_count(&self) -> Result<usize, StoreError> {
        let result = match &*self.backend {
            Backend::Memory(m) => m.key_count(),
            Backend::Redis(r) => r.key_count().await,
        };
        self.counted(Op::KeyCount, result)
    }

    /// The current count of a [`Store::hit`] counter (0 when absent or
    /// expired), without counting.
    pub async fn count(&self, key: &str) -> Result<u64, StoreError> {
        let result = match &*self.backend {
            Backend::Memory(m) => m.count(key),
            Backend::Redis(r) => r.count(key).await,
        };
        self.counted(Op::Count, result)
    }

    /// Takes `key` for `ttl` if it is free (SET NX): true if it was free
    /// (the caller may go ahead), false if it is taken.
    pub async fn claim(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let result = match &*self.backend {
            Backend::Memory(m) => m.claim(key, ttl),
            Backend::Redis(r) => r.claim(key, ttl).await,
        };
        self.counted(Op::Claim, result)
    }

    /// Stores `attempt` under `token_hash` with `ttl` and points the browser
    /// index (`attempt.browser`) at it. An older attempt the index pointed at
    /// is deleted (with its failure counter): a newer link for the same
    /// browser replaces older ones. Atomic on Redis.
    pub async fn put_attempt(
        &self,
        token_hash: &str,
        attempt: &Attempt,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let result = match &*self.backend {
            Backend::Memory(m) => m.put_attempt(token_hash, attempt, ttl),
            Backend::Redis(r) => r.put_attempt(token_hash, attempt, ttl).await,
        };
        self.counted(Op::PutAttempt, result)
    }

    /// Reads an attempt without consuming it (the GET landing page).
    pub async fn peek_attempt(&self, token_hash: &str) -> Result<Option<Attempt>, StoreError> {
        let result = match &*self.backend {
            Backend::Memory(m) => m.peek_attempt(token_hash),
            Backend::Redis(r) => r.peek_attempt(token_hash).await,
        };
        self.counted(Op::PeekAttempt, result)
    }

    /// Atomically takes an attempt: of N concurrent callers exactly one gets
    /// `Some`. Also removes the browser index entry if it still points at
    /// this token, and the failure counter.
    pub async fn take_attempt(&self, token_hash: &str) -> Result<Option<Attempt>, StoreError> {
        let result = match &*self.backend {
            Backend::Memory(m) => m.take_attempt(token_hash),
            Backend::Redis(r) => r.take_attempt(token_hash).await,
        };
        self.counted(Op::TakeAttempt, result)
    }

    /// The pending attempt of a browser (by verifier hash):
    /// `(token_hash, attempt)`.
    pub async fn attempt_for_browser(
        &self,
        browser: &str,
    ) -> Result<Option<(String, Attempt)>, StoreError> {
        let result = match &*self.backend {
            Backend::Memory(m) => m.attempt_for_browser(browser),
            Backend::Redis(r) => r.attempt_for_browser(browser).await,
        };
        self.counted(Op::AttemptForBrowser, result)
    }

    /// Records one wrong code for the attempt and returns the number of
    /// failures so far. When it reaches `max`, the attempt (and its browser
    /// index) is deleted in the same atomic step. If the attempt does not
    /// exist (taken, expired, already exhausted) nothing is recorded and
    /// `max` is returned, so callers fail closed.
    pub async fn fail_attempt(&self, token_hash: &str, max: u32) -> Result<u32, StoreError> {
        let result = match &*self.backend {
            Backend::Memory(m) => m.fail_attempt(token_hash, max),
            Backend::Redis(r) => r.fail_attempt(token_hash, max).await,
        };
        self.counted(Op::FailAttempt, result)
    }

    /// Stores the session under `id_hash` with key TTL = `idle` capped by the
    /// time left until `record.expires_at` (by the system clock), and adds
    /// `id_hash` to the per-address index `email_hash`, whose TTL is extended
    /// to cover the longest session in it. A record already past its
    /// `expires_at` is not stored.
    pub async fn put_session(
        &self,
        id_hash: &str,
        email_hash: &str,
        record: &SessionRecord,
        idle: Duration,
    ) -> Result<(), StoreError> {
        let result = match &*self.backend {
            Backend::Memory(m) => m.put_session(id_hash, email_hash, record, idle),
            Backend::Redis(r) => r.put_session(id_hash, email_hash, record, idle).await,
        };
        self.counted(Op::PutSession, result)
    }

    /// Reads a session. If found and `now` (unix seconds, from the caller) is
    /// before `expires_at`, its TTL is refreshed to
    /// `min(idle, expires_at - now)`: the idle timeout counts from last use.
    /// A record at or past `expires_at` is deleted and `None` returned.
    pub async fn get_session(
        &self,
        id_hash: &str,
        idle: Duration,
        now: u64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let result = match &*self.backend {
            Backend::Memory(m) => m.get_session(id_hash, idle, now),
            // Boxed: the Redis round trip's future is large, and without
            // the box its room would be part of every request's future
            // (signed-in requests await this), also on the memory store.
            Backend::Redis(r) => Box::pin(r.get_session(id_hash, idle, now)).await,
        };
        self.counted(Op::GetSession, result)
    }

    /// Deletes one session, removes it from its index and publishes `id_hash`
    /// on the revocation channel (also when it was already gone, so other
    /// instances drop any cached copy).
    pub async fn delete_session(&self, id_hash: &str, email_hash: &str) -> Result<(), StoreError> {
        let result = match &*self.backend {
            Backend::Memory(m) => m.delete_session(id_hash, email_hash),
            Backend::Redis(r) => r.delete_session(id_hash, email_hash).await,
        };
        self.counted(Op::DeleteSession, result)
    }

    /// Deletes every session of the address (its index) and publishes each
    /// id; returns how many live sessions were deleted.
    pub async fn revoke_all(&self, email_hash: &str) -> Result<usize, StoreError> {
        let result = match &*self.backend {
            Backend::Memory(m) => m.revoke_all(email_hash),
            Backend::Redis(r) => r.revoke_all(email_hash).await,
        };
        self.counted(Op::RevokeAll, result)
    }

    /// Number of live sessions in the index (dead entries are pruned).
    pub async fn count_sessions(&self, email_hash: &str) -> Result<usize, StoreError> {
        let result = match &*self.backend {
            Backend::Memory(m) => m.count_sessions(email_hash),
            Backend::Redis(r) => r.count_sessions(email_hash).await,
        };
        self.counted(Op::CountSessions, result)
    }

    /// Every address index (its email hash) that holds sessions: for
    /// `sessions revoke --all`. O(keys) (SCAN on Redis).
    pub async fn indexes(&self) -> Result<Vec<String>, StoreError> {
        let result = match &*self.backend {
            Backend::Memory(m) => m.indexes(),
            Backend::Redis(r) => r.indexes().await,
        };
        self.counted(Op::Indexes, result)
    }

    /// The live sessions in the index `email_hash`: `(id hash, record)`,
    /// sorted by creation. Reads only (no session's idle time is renewed).
    pub async fn list_sessions(
        &self,
        email_hash: &str,
    ) -> Result<Vec<(String, SessionRecord)>, StoreError> {
        let result = match &*self.backend {
            Backend::Memory(m) => m.list_sessions(email_hash),
            Backend::Redis(r) => r.list_sessions(email_hash).await,
        };
        let mut list = self.counted(Op::ListSessions, result)?;
        list.sort_by_key(|(_, r)| r.created_at);
        Ok(list)
    }

    /// Keeps the record of share link `id` (its scope as JSON, never the
    /// token) until `ttl`, for `portcullis share list`.
    pub async fn put_share(&self, id: &str, record: &str, ttl: Duration) -> Result<(), StoreError> {
        let result = match &*self.backend {
            Backend::Memory(m) => m.put_share(id, record, ttl),
            Backend::Redis(r) => r.put_share(id, record, ttl).await,
        };
        self.counted(Op::PutShare, result)
    }

    /// Every live share record ([`Store::put_share`]). O(keys) (SCAN on
    /// Redis): for the command line.
    pub async fn shares(&self) -> Result<Vec<String>, StoreError> {
        let result = match &*self.backend {
            Backend::Memory(m) => m.shares(),
            Backend::Redis(r) => r.shares().await,
        };
        self.counted(Op::Shares, result)
    }

    /// Revoked session id hashes from any instance sharing this store (Redis
    /// pub/sub; memory: this process). Messages published while the
    /// subscriber is reconnecting are lost, and a slow receiver lags; callers
    /// must also revalidate cached sessions periodically.
    pub fn revocations(&self) -> broadcast::Receiver<String> {
        match &*self.backend {
            Backend::Memory(m) => m.revocations(),
            Backend::Redis(r) => r.revocations(),
        }
    }

    /// `(operation, failures)` for every operation since start.
    pub fn error_counts(&self) -> Vec<(&'static str, u64)> {
        self.errors.snapshot()
    }

    /// Counts `result` against `op` when it is an error.
    fn counted<T>(&self, op: Op, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_err() {
            self.errors.failed(op);
        }
        result
    }

    /// Health probe: PING on Redis, always ok in memory.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let result = match &*self.backend {
            Backend::Memory(_) => Ok(()),
            Backend::Redis(r) => r.ping().await,
        };
        self.counted(Op::Ping, result)
    }
}

/// Key names, without the prefix (the Redis backend prepends it).
mod key {
    pub(super) fn attempt(token_hash: &str) -> String {
        format!("att:{token_hash}")
    }
    pub(super) fn browser(browser: &str) -> String {
        format!("brw:{browser}")
    }
    pub(super) fn failures(token_hash: &str) -> String {
        format!("fail:{token_hash}")
    }
    pub(super) fn session(id_hash: &str) -> String {
        format!("ses:{id_hash}")
    }
    pub(super) fn index(email_hash: &str) -> String {
        format!("idx:{email_hash}")
    }
    pub(super) fn rate(key: &str) -> String {
        format!("rl:{key}")
    }
    pub(super) fn pending(ip_key: &str) -> String {
        format!("pend:{ip_key}")
    }
    pub(super) fn share(id: &str) -> String {
        format!("shr:{id}")
    }
    pub(super) const PENDING_TOTAL: &str = "pend:all";
    pub(super) const REVOKED_CHANNEL: &str = "revoked";
}
