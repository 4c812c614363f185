//! The Redis backend: the store's operations as Redis commands and Lua
//! scripts over the connection of [`super::redis_conn`] (one server, a
//! Sentinel master or a Cluster), plus the revocation subscriber
//! ([`super::subscriber`]).
//!
//! # What it owns
//!
//! - Atomicity on a shared Redis: every operation that reads and then writes
//!   (putting, taking and failing attempts, sessions and their index,
//!   revocations) is one Lua script, so concurrent instances cannot
//!   interleave inside it.
//! - Bounded waiting: each operation (including waiting for a reconnect) is
//!   cut off after the response timeout and fails with
//!   [`StoreError::Unavailable`]; an operation whose command could not even
//!   be sent because the connection was refused is retried once within that
//!   bound, so the first request after Redis comes back usually succeeds.
//! - Setting a TTL on every key it writes.
//! - Starting with Redis down ([`RedisStore::open`]): the connection and
//!   the subscription come up by themselves when Redis appears; until then
//!   every operation is `Unavailable`.
//!
//! # What it does not own
//!
//! The data model, key names and TTL arithmetic (in the parent module), and
//! running Redis.
//!
//! # Threat model
//!
//! Redis is trusted storage but may be unreachable or slow; that must only
//! ever cost an `Unavailable` error, never a hang or a panic. Scripts build
//! some keys from the prefix and from stored token hashes; in a Cluster
//! those keys share the `{signin}` hash tag, so every script stays in one
//! slot, and the session steps that span two slots are not scripts
//! ([`super::redis_cluster`]). A new session or a revocation is answered
//! only after `WAIT` for `wait_replicas` replicas (or its timeout), so a
//! failover does not undo it. Error texts never include keys or values.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::redis::{ErrorKind, RedisError, RedisResult};
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::health::Health;
use super::records::{decode, encode};
use super::redis_conn::{Conn, Connector, Lane};
use super::redis_scripts::{
    ADMIT_SIGN_IN, ATTEMPT_FOR_BROWSER, COUNT_SESSIONS, DELETE_SESSION, FAIL_ATTEMPT, HIT,
    LIST_SESSIONS, PUT_ATTEMPT, PUT_SESSION, REVOKE_ALL, TAKE_ATTEMPT,
};
use super::subscriber::{Subscriber, Target};
use super::ttl::{new_session_ttls, refreshed_session_ttl, ttl_ms, unix_now_ms, MAX_TTL};
use super::{
    key, Admission, Attempt, RedisMode, RedisSettings, SessionRecord, SignInLimits, StoreError,
    REVOCATION_CAPACITY,
};

pub(super) struct RedisStore {
    pub(super) connector: Arc<Connector>,
    /// Every key and the channel start with it.
    pub(super) prefix: String,
    /// Sign-in state and rate counters: the prefix, plus (cluster) the
    /// hash tag that puts them all in one slot.
    pub(super) signin_prefix: String,
    /// Cluster layout: sessions and indexes hash-tagged each in their own
    /// slot, and their multi-key steps done without scripts.
    pub(super) cluster: bool,
    response_timeout: Duration,
    wait_replicas: u32,
    wait_timeout: Duration,
    revoked: broadcast::Sender<String>,
    health: Arc<Health>,
    _subscriber: Subscriber,
}

/// The hash tag of all sign-in state in cluster mode: the total pending
/// cap and the browser → attempt index tie every attempt to the others.
pub(super) const SIGNIN_TAG: &str = "{signin}:";

fn target(
    connector: &Arc<Connector>,
    prefix: &str,
    s: &RedisSettings,
    health: &Arc<Health>,
) -> Target {
    Target {
        connector: connector.clone(),
        channel: format!("{prefix}{}", key::REVOKED_CHANNEL),
        connect_timeout: s.connect_timeout,
        response_timeout: s.response_timeout,
        health: health.clone(),
    }
}

/// A store's connector, health, revocation sender and subscriber target.
type Parts = (
    Arc<Connector>,
    Arc<Health>,
    broadcast::Sender<String>,
    Target,
);

/// What every store of these settings is made of, before the subscriber.
fn parts(s: &RedisSettings) -> Result<Parts, StoreError> {
    let connector = Arc::new(Connector::new(s)?);
    let health = Arc::new(Health::default());
    let (revoked, _) = broadcast::channel(REVOCATION_CAPACITY);
    let target = target(&connector, &s.key_prefix, s, &health);
    Ok((connector, health, revoked, target))
}

impl RedisStore {
    fn assemble(
        s: &RedisSettings,
        (connector, health, revoked): (Arc<Connector>, Arc<Health>, broadcast::Sender<String>),
        subscriber: Subscriber,
    ) -> RedisStore {
        let cluster = s.mode == RedisMode::Cluster;
        RedisStore {
            connector,
            prefix: s.key_prefix.clone(),
            signin_prefix: if cluster {
                format!("{}{SIGNIN_TAG}", s.key_prefix)
            } else {
                s.key_prefix.clone()
            },
            cluster,
            response_timeout: s.response_timeout,
            wait_replicas: s.wait_replicas,
            wait_timeout: s.wait_timeout,
            revoked,
            health,
            _subscriber: subscriber,
        }
    }

    /// Connects now: fails with `Unavailable` unless Redis answers and the
    /// revocation subscription is live before this returns (the CLI).
    pub(super) async fn connect(s: &RedisSettings) -> Result<RedisStore, StoreError> {
        let start_bound = s
            .connect_timeout
            .saturating_mul(3)
            .saturating_add(s.response_timeout);
        let (connector, health, revoked, target) = parts(s)?;
        let subscriber =
            tokio::time::timeout(start_bound, Subscriber::start(target, revoked.clone()))
                .await
                .map_err(|_| {
                    StoreError::Unavailable("connecting to Redis timed out".to_owned())
                })??;
        let store = RedisStore::assemble(s, (connector, health, revoked), subscriber);
        store.ping().await?;
        Ok(store)
    }

    /// Connects in the background: fails only for settings that cannot be
    /// used. Commands fail with `Unavailable` until Redis answers; the
    /// connection and the subscription come up by themselves when it does
    /// (the gateway, which must start while Redis is down).
    pub(super) fn open(s: &RedisSettings) -> Result<RedisStore, StoreError> {
        let (connector, health, revoked, target) = parts(s)?;
        let subscriber = Subscriber::spawn(target, revoked.clone());
        Ok(RedisStore::assemble(
            s,
            (connector, health, revoked),
            subscriber,
        ))
    }

    pub(super) fn is_up(&self) -> bool {
        self.health.is_up()
    }

    pub(super) fn is_subscribed(&self) -> bool {
        self.health.is_subscribed()
    }

    pub(super) fn revocation_epoch(&self) -> u64 {
        self.health.epoch()
    }

    /// A sign-in or rate-limit key.
    fn k(&self, unprefixed: &str) -> String {
        format!("{}{unprefixed}", self.signin_prefix)
    }

    /// A session's key: `{prefix}ses:{id}` (cluster: the id is its hash
    /// tag, so each session has its own slot).
    pub(super) fn session_key(&self, id_hash: &str) -> String {
        if self.cluster {
            format!("{}ses:{{{id_hash}}}", self.prefix)
        } else {
            format!("{}{}", self.prefix, key::session(id_hash))
        }
    }

    /// An address's session index (cluster: its own slot).
    pub(super) fn index_key(&self, email_hash: &str) -> String {
        if self.cluster {
            format!("{}idx:{{{email_hash}}}", self.prefix)
        } else {
            format!("{}{}", self.prefix, key::index(email_hash))
        }
    }

    pub(super) fn channel(&self) -> String {
        format!("{}{}", self.prefix, key::REVOKED_CHANNEL)
    }

    pub(super) fn deadline(&self) -> Instant {
        let now = Instant::now();
        // A configured timeout too large to add is as good as none.
        now.checked_add(self.response_timeout)
            .unwrap_or_else(|| now + MAX_TTL)
    }

    /// Runs `op` on the connection of `lane`, bounded by `deadline`. If
    /// nothing ran (the connection was refused, or a Sentinel master
    /// turned replica refused the write), `op` is retried once, after the
    /// reconnect or the new master that the failure started.
    pub(super) async fn run_on<T, F, Fut>(
        &self,
        lane: Lane,
        deadline: Instant,
        op: F,
    ) -> Result<T, StoreError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let attempt = async {
            let first = op(self.connector.conn(lane).await?).await;
            match first {
                Err(e) => {
                    let again = self.connector.failed(&e) || e.is_connection_refusal();
                    if !again {
                        return Err(map_error(&e));
                    }
                    let second = op(self.connector.conn(lane).await?).await;
                    if let Err(e) = &second {
                        self.connector.failed(e);
                    }
                    second.map_err(|e| map_error(&e))
                }
                Ok(v) => Ok(v),
            }
        };
        let result = match tokio::time::timeout_at(deadline, attempt).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(
                "Redis did not answer in time".to_owned(),
            )),
        };
        self.health
            .command(!matches!(result, Err(StoreError::Unavailable(_))));
        result
    }

    async fn run_by<T, F, Fut>(&self, deadline: Instant, op: F) -> Result<T, StoreError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.run_on(Lane::Main, deadline, op).await
    }

    /// A write that must survive a failover once answered (a new session,
    /// a revocation): `op` on the durable lane, then `WAIT` until
    /// `wait_replicas` replicas have it. Too few in `wait_timeout` while
    /// the Sentinels name another master means the write landed on a
    /// master being demoted (`SENTINEL FAILOVER` leaves it writable for a
    /// moment) and will be lost: `op` (idempotent) runs again on the new
    /// master. Too few with the same master (a replica down) is logged;
    /// the write stands.
    pub(super) async fn durable_write<T, F, Fut>(&self, key: &str, op: F) -> Result<T, StoreError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let generation = self.connector.generation();
        let v = self.run_on(Lane::Durable, self.deadline(), &op).await?;
        if self.wait_for_replicas(key).await || !self.connector.master_moved_since(generation).await
        {
            return Ok(v);
        }
        tracing::warn!("a session write reached a demoted Redis master; writing it again");
        let v = self.run_on(Lane::Durable, self.deadline(), &op).await?;
        self.wait_for_replicas(key).await;
        Ok(v)
    }

    /// Waits (bounded by `wait_timeout`) until `wait_replicas` replicas
    /// have every write of the durable lane; true if they do (or none are
    /// asked for).
    async fn wait_for_replicas(&self, key: &str) -> bool {
        if self.wait_replicas == 0 {
            return true;
        }
        let (n, t) = (self.wait_replicas, self.wait_timeout);
        let deadline = Instant::now() + t + self.response_timeout;
        let acked = self
            .run_on(Lane::Durable, deadline, |mut c| async move {
                c.wait(key, n, t).await
            })
            .await;
        match acked {
            Ok(got) if got >= u64::from(n) => true,
            Ok(got) => {
                tracing::warn!(
                    acked = got,
                    wanted = n,
                    "a session write reached fewer Redis replicas than store.wait_replicas in store.wait_timeout"
                );
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "WAIT for Redis replicas failed");
                false
            }
        }
    }

    async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.run_by(self.deadline(), op).await
    }

    pub(super) async fn hit(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        let mut inv = HIT.prepare_invoke();
        inv.key(self.k(&key::rate(key))).arg(ttl_ms(window));
        let inv = &inv;
        self.run(|mut c| async move { inv.invoke_async::<u64>(&mut c).await })
            .await
    }

    pub(super) async fn count(&self, key: &str) -> Result<u64, StoreError> {
        let mut cmd = ::redis::cmd("GET");
        cmd.arg(self.k(&key::rate(key)));
        let cmd = &cmd;
        let reply = self
            .run(|mut c| async move { cmd.query_async::<Option<u64>>(&mut c).await })
            .await?;
        Ok(reply.unwrap_or(0))
    }

    pub(super) async fn admit_sign_in(
        &self,
        l: &SignInLimits<'_>,
    ) -> Result<Admission, StoreError> {
        let mut inv = ADMIT_SIGN_IN.prepare_invoke();
        inv.key(self.k(key::PENDING_TOTAL))
            .key(self.k(&key::rate(l.ip_key)))
            .key(self.k(&key::pending(l.ip_key)))
            .key(self.k(&key::rate(l.address_key)))
            .key(self.k(&key::rate(l.resend.map_or("resend:none", |r| r.0))))
            .arg(unix_now_ms())
            .arg(l.max_pending)
            .arg(ttl_ms(l.ip_window))
            .arg(l.ip_rate)
            .arg(l.max_pending_per_ip)
            .arg(ttl_ms(l.pending_window))
            .arg(ttl_ms(l.address_window))
            .arg(l.resend.map_or(0, |r| ttl_ms(r.1)))
            .arg(l.token_hash);
        let inv = &inv;
        let reply: Vec<u64> = self
            .run(|mut c| async move { inv.invoke_async::<Vec<u64>>(&mut c).await })
            .await?;
        match reply.as_slice() {
            [0, ip_count, address_count, fresh] => Ok(Admission::Admitted {
                ip_count: *ip_count,
                address_count: *address_count,
                fresh: *fresh == 1,
            }),
            [1, ..] => Ok(Admission::TotalFull),
            [2, ..] => Ok(Admission::IpRate),
            [3, ..] => Ok(Admission::IpFull),
            _ => Err(StoreError::Corrupt(
                "sign-in admission: unexpected reply".into(),
            )),
        }
    }

    pub(super) async fn key_count(&self) -> Result<usize, StoreError> {
        let pattern = format!("{}*", escape_glob(&self.prefix));
        Ok(self.scan(&pattern).await?.len())
    }

    /// Every key matching `pattern`, by SCAN on every master (O(keys):
    /// not for requests). SCAN may return a key twice while Redis
    /// rehashes: each is kept once.
    async fn scan(&self, pattern: &str) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let mut seen = std::collections::BTreeSet::new();
        let nodes = tokio::time::timeout_at(self.deadline(), self.connector.scan_targets())
            .await
            .map_err(|_| StoreError::Unavailable("Redis did not answer in time".to_owned()))??;
        for node in nodes {
            let mut cursor: u64 = 0;
            loop {
                let mut cmd = ::redis::cmd("SCAN");
                cmd.arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000);
                let mut conn = node.clone();
                let (next, keys): (u64, Vec<String>) =
                    tokio::time::timeout_at(self.deadline(), cmd.query_async(&mut conn))
                        .await
                        .map_err(|_| {
                            StoreError::Unavailable("Redis did not answer in time".to_owned())
                        })?
                        .map_err(|e| map_error(&e))?;
                seen.extend(keys);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(seen)
    }

    pub(super) async fn claim(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(self.k(&key::rate(key)))
            .arg("1")
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms(ttl));
        let cmd = &cmd;
        let reply = self
            .run(|mut c| async move { cmd.query_async::<Option<String>>(&mut c).await })
            .await?;
        Ok(reply.is_some())
    }

    pub(super) async fn put_attempt(
        &self,
        token_hash: &str,
        attempt: &Attempt,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let value = encode("attempt", attempt)?;
        let mut inv = PUT_ATTEMPT.prepare_invoke();
        inv.key(self.k(&key::attempt(token_hash)))
            .key(self.k(&key::browser(&attempt.browser)))
            .key(self.k(&key::failures(token_hash)))
            .arg(value)
            .arg(ttl_ms(ttl))
            .arg(token_hash)
            .arg(&self.signin_prefix);
        let inv = &inv;
        self.run(|mut c| async move { inv.invoke_async::<()>(&mut c).await })
            .await
    }

    pub(super) async fn peek_attempt(
        &self,
        token_hash: &str,
    ) -> Result<Option<Attempt>, StoreError> {
        let mut cmd = ::redis::cmd("GET");
        cmd.arg(self.k(&key::attempt(token_hash)));
        let cmd = &cmd;
        let raw = self
            .run(|mut c| async move { cmd.query_async::<Option<String>>(&mut c).await })
            .await?;
        raw.map(|raw| decode("attempt", &raw)).transpose()
    }

    pub(super) async fn take_attempt(
        &self,
        token_hash: &str,
    ) -> Result<Option<Attempt>, StoreError> {
        let mut inv = TAKE_ATTEMPT.prepare_invoke();
        inv.key(self.k(&key::attempt(token_hash)))
            .key(self.k(&key::failures(token_hash)))
            .arg(&self.signin_prefix)
            .arg(token_hash);
        let inv = &inv;
        let raw = self
            .run(|mut c| async move { inv.invoke_async::<Option<String>>(&mut c).await })
            .await?;
        raw.map(|raw| decode("attempt", &raw)).transpose()
    }

    pub(super) async fn attempt_for_browser(
        &self,
        browser: &str,
    ) -> Result<Option<(String, Attempt)>, StoreError> {
        let mut inv = ATTEMPT_FOR_BROWSER.prepare_invoke();
        inv.key(self.k(&key::browser(browser)))
            .arg(&self.signin_prefix);
        let inv = &inv;
        let found = self
            .run(|mut c| async move { inv.invoke_async::<Option<(String, String)>>(&mut c).await })
            .await?;
        let Some((token, raw)) = found else {
            return Ok(None);
        };
        let attempt: Attempt = decode("attempt", &raw)?;
        if attempt.browser != browser {
            return Ok(None);
        }
        Ok(Some((token, attempt)))
    }

    pub(super) async fn fail_attempt(&self, token_hash: &str, max: u32) -> Result<u32, StoreError> {
        let mut inv = FAIL_ATTEMPT.prepare_invoke();
        inv.key(self.k(&key::attempt(token_hash)))
            .key(self.k(&key::failures(token_hash)))
            .arg(max)
            .arg(&self.signin_prefix)
            .arg(token_hash);
        let inv = &inv;
        let n = self
            .run(|mut c| async move { inv.invoke_async::<u64>(&mut c).await })
            .await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    pub(super) async fn put_session(
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
        if self.cluster {
            return self
                .cluster_put_session(id_hash, email_hash, &value, ttl, lifetime)
                .await;
        }
        let mut inv = PUT_SESSION.prepare_invoke();
        let session_key = self.session_key(id_hash);
        inv.key(&session_key)
            .key(self.index_key(email_hash))
            .arg(value)
            .arg(ttl_ms(ttl))
            .arg(id_hash)
            .arg(ttl_ms(lifetime))
            .arg(&self.prefix);
        let inv = &inv;
        self.durable_write(&session_key, |mut c| async move {
            inv.invoke_async::<()>(&mut c).await
        })
        .await
    }

    pub(super) async fn get_session(
        &self,
        id_hash: &str,
        idle: Duration,
        now: u64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        // Both round trips share one deadline.
        let deadline = self.deadline();
        let session_key = self.session_key(id_hash);
        let mut get = ::redis::cmd("GET");
        get.arg(&session_key);
        let get = &get;
        let raw = self
            .run_by(deadline, |mut c| async move {
                get.query_async::<Option<String>>(&mut c).await
            })
            .await?;
        let Some(raw) = raw else {
            return Ok(None);
        };
        let record: SessionRecord = decode("session", &raw)?;
        let refreshed = refreshed_session_ttl(&record, idle, now);
        let update = match refreshed {
            // PEXPIRE on a key deleted meanwhile is a no-op: it cannot
            // resurrect a revoked session.
            Some(ttl) => {
                let mut cmd = ::redis::cmd("PEXPIRE");
                cmd.arg(&session_key).arg(ttl_ms(ttl));
                cmd
            }
            None => {
                let mut cmd = ::redis::cmd("DEL");
                cmd.arg(&session_key);
                cmd
            }
        };
        let update = &update;
        self.run_by(deadline, |mut c| async move {
            update.query_async::<()>(&mut c).await
        })
        .await?;
        Ok(refreshed.map(|_| record))
    }

    pub(super) async fn delete_session(
        &self,
        id_hash: &str,
        email_hash: &str,
    ) -> Result<(), StoreError> {
        if self.cluster {
            return self.cluster_delete_session(id_hash, email_hash).await;
        }
        let mut inv = DELETE_SESSION.prepare_invoke();
        let session_key = self.session_key(id_hash);
        inv.key(&session_key)
            .key(self.index_key(email_hash))
            .arg(id_hash)
            .arg(self.channel());
        let inv = &inv;
        self.durable_write(&session_key, |mut c| async move {
            inv.invoke_async::<()>(&mut c).await
        })
        .await
    }

    pub(super) async fn revoke_all(&self, email_hash: &str) -> Result<usize, StoreError> {
        if self.cluster {
            return self.cluster_revoke_all(email_hash).await;
        }
        let mut inv = REVOKE_ALL.prepare_invoke();
        let index_key = self.index_key(email_hash);
        inv.key(&index_key).arg(&self.prefix).arg(self.channel());
        let inv = &inv;
        self.durable_write(&index_key, |mut c| async move {
            inv.invoke_async::<usize>(&mut c).await
        })
        .await
    }

    pub(super) async fn count_sessions(&self, email_hash: &str) -> Result<usize, StoreError> {
        if self.cluster {
            return Ok(self.cluster_live_sessions(email_hash).await?.len());
        }
        let mut inv = COUNT_SESSIONS.prepare_invoke();
        inv.key(self.index_key(email_hash)).arg(&self.prefix);
        let inv = &inv;
        self.run(|mut c| async move { inv.invoke_async::<usize>(&mut c).await })
            .await
    }

    pub(super) async fn indexes(&self) -> Result<Vec<String>, StoreError> {
        let start = format!("{}{}", self.prefix, key::index(""));
        let open = if self.cluster { "{" } else { "" };
        let keys = self
            .scan(&format!("{}{open}*", escape_glob(&start)))
            .await?;
        Ok(keys
            .into_iter()
            .filter_map(|k| {
                let rest = k.strip_prefix(&start)?;
                if self.cluster {
                    rest.strip_prefix('{')?.strip_suffix('}').map(String::from)
                } else {
                    Some(rest.to_owned())
                }
            })
            .collect())
    }

    pub(super) async fn list_sessions(
        &self,
        email_hash: &str,
    ) -> Result<Vec<(String, SessionRecord)>, StoreError> {
        let flat: Vec<String> = if self.cluster {
            self.cluster_live_sessions(email_hash)
                .await?
                .into_iter()
                .flat_map(|(id, raw)| [id, raw])
                .collect()
        } else {
            let mut inv = LIST_SESSIONS.prepare_invoke();
            inv.key(self.index_key(email_hash)).arg(&self.prefix);
            let inv = &inv;
            self.run(|mut c| async move { inv.invoke_async::<Vec<String>>(&mut c).await })
                .await?
        };
        flat.chunks(2)
            .map(|pair| match pair {
                [id, raw] => Ok((id.clone(), decode::<SessionRecord>("session", raw)?)),
                _ => Err(StoreError::Corrupt("unexpected reply from Redis".into())),
            })
            .collect()
    }

    pub(super) async fn put_share(
        &self,
        id: &str,
        record: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(self.k(&key::share(id)))
            .arg(record)
            .arg("PX")
            .arg(ttl_ms(ttl));
        let cmd = &cmd;
        self.run(|mut c| async move { cmd.query_async::<()>(&mut c).await })
            .await
    }

    pub(super) async fn shares(&self) -> Result<Vec<String>, StoreError> {
        let start = self.k(&key::share(""));
        let keys = self.scan(&format!("{}*", escape_glob(&start))).await?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let mut cmd = ::redis::cmd("GET");
            cmd.arg(&k);
            let cmd = &cmd;
            let v = self
                .run(|mut c| async move { cmd.query_async::<Option<String>>(&mut c).await })
                .await?;
            out.extend(v);
        }
        Ok(out)
    }

    pub(super) fn revocations(&self) -> broadcast::Receiver<String> {
        self.revoked.subscribe()
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        let cmd = ::redis::cmd("PING");
        let cmd = &cmd;
        self.run(|mut c| async move { cmd.query_async::<()>(&mut c).await })
            .await
    }
}

/// `s` with the glob characters of Redis `MATCH` escaped.
fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Reply-shape problems are `Corrupt`; everything else (I/O, timeouts,
/// refused connections, server errors) is `Unavailable`. Parse errors are
/// not echoed: their text can quote the reply.
pub(super) fn map_error(e: &RedisError) -> StoreError {
    match e.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => {
            StoreError::Corrupt("unexpected reply from Redis".to_owned())
        }
        _ => StoreError::Unavailable(e.to_string()),
    }
}
