//! Server-side state of the gateway: sign-in attempts, sessions, the
//! per-address session index, rate-limit counters and the revocation
//! broadcast, kept either in process memory or in Redis behind one type,
//! [`Store`].
//!
//! # What this module owns
//!
//! - The data model of stored state ([`Attempt`], [`SessionRecord`]) and its
//!   JSON encoding.
//! - The key layout (`{prefix}att:{token}`, `{prefix}brw:{browser}`,
//!   `{prefix}fail:{token}`, `{prefix}ses:{id}`, `{prefix}idx:{email_hash}`,
//!   `{prefix}rl:{key}`, `{prefix}pend:{ip key}`, `{prefix}pend:all`,
//!   `{prefix}shr:{share id}`,
//!   channel `{prefix}revoked`; in a Redis Cluster sign-in state is under
//!   `{prefix}{signin}:…` and sessions and indexes are `{prefix}ses:{id}`
//!   and `{prefix}idx:{hash}`, each in its own slot) and the rule that
//!   every key has a TTL.
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
mod redis;
mod redis_cluster;
mod redis_conn;
mod redis_scripts;
mod settings;
mod subscriber;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tokio::sync::broadcast;

use op_errors::{Op, OpErrors};
pub use settings::{RedisMode, RedisSettings, RedisTls, StoreSettings};

/// One pending sign-in: what was asked for, stored under the HMAC of the
/// emailed link's token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Normalised address.
    pub email: String,
    /// Checked redirect target.
    pub rd: String,
    /// Hex HMAC of the short code.
    pub code_hash: String,
    /// Hex HMAC of the verifier cookie of the asking browser.
    pub browser: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Browser family of the asking request ("Firefox on Windows", at most
    /// 64 bytes), shown to another browser with the code.
    #[serde(default)]
    pub asked_agent: String,
    /// The asking client's IP as the gateway saw it, shown likewise.
    #[serde(default)]
    pub asked_ip: String,
}

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

/// One signed-in session, stored under the HMAC of the session cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub email: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Absolute end, unix seconds.
    pub expires_at: u64,
    /// How the session was signed in: `link`, `code`, or `oidc:NAME` /
    /// `github:NAME` for a `[[provider]]`. Absent in records written
    /// before it existed (read as unknown), and then not written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<String>,
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

/// Longest TTL the store will set (ten years); larger requests are capped so
/// that deadline arithmetic cannot overflow.
const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

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

/// `d` capped to [`MAX_TTL`] and at least one millisecond (a zero TTL would
/// be rejected by Redis, and would make a key that never existed).
fn clamp_ttl(d: Duration) -> Duration {
    d.clamp(Duration::from_millis(1), MAX_TTL)
}

/// [`clamp_ttl`] in whole milliseconds, for Redis `PX`/`PEXPIRE`.
fn ttl_ms(d: Duration) -> u64 {
    u64::try_from(clamp_ttl(d).as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds since the Unix epoch by the system clock (0 if the clock is
/// before 1970).
fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// TTLs for storing a new session at `now_ms`: `(session_ttl, lifetime)`,
/// where `session_ttl = min(idle, lifetime)` and `lifetime` is the time left
/// until `expires_at` (what the per-address index must cover). `None` if the
/// session has already ended.
fn new_session_ttls(
    record: &SessionRecord,
    idle: Duration,
    now_ms: u64,
) -> Option<(Duration, Duration)> {
    let end_ms = record.expires_at.saturating_mul(1000);
    let left_ms = end_ms.checked_sub(now_ms).filter(|left| *left > 0)?;
    let lifetime = Duration::from_millis(left_ms);
    Some((clamp_ttl(idle.min(lifetime)), clamp_ttl(lifetime)))
}

/// The refreshed TTL of a session read at `now` (unix seconds), or `None` if
/// the session has reached its absolute end.
fn refreshed_session_ttl(record: &SessionRecord, idle: Duration, now: u64) -> Option<Duration> {
    let left = record
        .expires_at
        .checked_sub(now)
        .filter(|left| *left > 0)?;
    Some(clamp_ttl(idle.min(Duration::from_secs(left))))
}

fn encode<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Corrupt(format!("{what}: {:?}", e.classify())))
}

/// Decodes a stored value. The error names the category and position only:
/// serde messages can quote the offending value, which holds an address.
fn decode<T: DeserializeOwned>(what: &str, raw: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| {
        StoreError::Corrupt(format!(
            "{what}: {:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(expires_at: u64) -> SessionRecord {
        SessionRecord {
            email: "a@example.com".to_owned(),
            created_at: 0,
            expires_at,
            amr: None,
        }
    }

    #[test]
    fn new_session_ttl_is_idle_capped_by_lifetime() {
        let now_ms = 1_000_000;
        assert_eq!(
            new_session_ttls(&record(1_100), Duration::from_secs(30), now_ms),
            Some((Duration::from_secs(30), Duration::from_secs(100)))
        );
        assert_eq!(
            new_session_ttls(&record(1_010), Duration::from_secs(30), now_ms),
            Some((Duration::from_secs(10), Duration::from_secs(10)))
        );
        assert_eq!(
            new_session_ttls(&record(1_000), Duration::from_secs(30), now_ms),
            None
        );
        assert_eq!(
            new_session_ttls(&record(10), Duration::from_secs(30), now_ms),
            None
        );
    }

    #[test]
    fn refreshed_ttl_stops_at_absolute_end() {
        assert_eq!(
            refreshed_session_ttl(&record(100), Duration::from_secs(30), 50),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            refreshed_session_ttl(&record(100), Duration::from_secs(30), 90),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            refreshed_session_ttl(&record(100), Duration::from_secs(30), 100),
            None
        );
        assert_eq!(
            refreshed_session_ttl(&record(100), Duration::from_secs(30), 200),
            None
        );
    }

    #[test]
    fn ttl_is_clamped() {
        assert_eq!(ttl_ms(Duration::ZERO), 1);
        assert_eq!(ttl_ms(Duration::from_millis(1500)), 1500);
        assert_eq!(ttl_ms(Duration::MAX), ttl_ms(MAX_TTL));
    }

    #[test]
    fn session_records_without_amr_still_read() {
        // Written before `amr` existed: reads, and writes back unchanged.
        let old = r#"{"email":"a@example.com","created_at":1,"expires_at":2}"#;
        let r = decode::<SessionRecord>("session", old).unwrap();
        assert_eq!(r.amr, None);
        assert_eq!(serde_json::to_string(&r).unwrap(), old);
        let new = SessionRecord {
            amr: Some("oidc:google".into()),
            ..r
        };
        let text = serde_json::to_string(&new).unwrap();
        assert!(text.ends_with(r#""amr":"oidc:google"}"#), "{text}");
        assert_eq!(decode::<SessionRecord>("session", &text).unwrap(), new);
    }

    #[test]
    fn decode_error_does_not_quote_the_value() {
        let err = decode::<SessionRecord>(
            "session",
            r#"{"email":"secret@example.com","created_at":"x","expires_at":1}"#,
        )
        .unwrap_err();
        match err {
            StoreError::Corrupt(msg) => {
                assert!(!msg.contains("secret"), "{msg}");
                assert!(!msg.contains("\"x\""), "{msg}");
                assert!(msg.starts_with("session: Data error at line 1"), "{msg}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
