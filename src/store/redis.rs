//! The Redis backend: the store's operations as Redis commands and Lua
//! scripts over one auto-reconnecting `ConnectionManager`, plus the
//! revocation subscriber ([`super::subscriber`]).
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
//! some keys from the prefix and from stored token hashes (single-instance
//! Redis; not cluster-safe by design). Error texts never include keys or
//! values.

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, ErrorKind, RedisError, RedisResult, Script};
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::health::Health;
use super::subscriber::{Subscriber, Target};
use super::{
    decode, encode, key, new_session_ttls, refreshed_session_ttl, ttl_ms, unix_now_ms, Admission,
    Attempt, SessionRecord, SignInLimits, StoreError, REVOCATION_CAPACITY,
};

/// Deletes the browser index entry of a stored attempt if it points at the
/// given token. Shared by the scripts that remove attempts.
const DROP_BROWSER_LUA: &str = r#"
local function drop_browser(prefix, raw, token)
  local ok, a = pcall(cjson.decode, raw)
  if ok and type(a) == 'table' and type(a.browser) == 'string' then
    local bk = prefix .. 'brw:' .. a.browser
    if redis.call('GET', bk) == token then
      redis.call('DEL', bk)
    end
  end
end
"#;

/// KEYS: counter. ARGV: window ms. The TTL is set when the key has none,
/// i.e. on the first hit of a window.
static HIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
"#,
    )
});

/// One sign-in request's admission (see `Store::admit_sign_in`). KEYS:
/// total pending list, ip counter, ip pending list, address counter, resend
/// claim. ARGV: now ms, max pending, ip window ms, ip rate, max pending
/// per ip, pending window ms, address window ms, resend ttl ms (0 = no
/// claim), token. Pending lists are sorted sets of token by deadline ms.
/// Returns {verdict, ip count, address count, fresh}: verdict 0 admitted,
/// 1 total full, 2 over the ip rate, 3 ip full.
static ADMIT_SIGN_IN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local function hit(k, ms)
  local n = redis.call('INCR', k)
  if redis.call('PTTL', k) < 0 then
    redis.call('PEXPIRE', k, ms)
  end
  return n
end
local function live(k, now)
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
  return redis.call('ZCARD', k)
end
local now = tonumber(ARGV[1])
if live(KEYS[1], now) >= tonumber(ARGV[2]) then return {1, 0, 0, 0} end
local ip = hit(KEYS[2], ARGV[3])
if ip > tonumber(ARGV[4]) then return {2, ip, 0, 0} end
if live(KEYS[3], now) >= tonumber(ARGV[5]) then return {3, ip, 0, 0} end
local a = hit(KEYS[4], ARGV[7])
local fresh = 1
if ARGV[8] ~= '0' then
  if not redis.call('SET', KEYS[5], '1', 'NX', 'PX', ARGV[8]) then
    fresh = 0
  end
end
local deadline = now + tonumber(ARGV[6])
for _, k in ipairs({KEYS[1], KEYS[3]}) do
  redis.call('ZADD', k, deadline, ARGV[9])
  redis.call('PEXPIRE', k, ARGV[6])
end
return {0, ip, a, fresh}
"#,
    )
});

/// KEYS: attempt, browser index, failures of the new token.
/// ARGV: value, ttl ms, token, prefix.
static PUT_ATTEMPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local old = redis.call('GET', KEYS[2])
if old and old ~= ARGV[3] then
  redis.call('DEL', ARGV[4] .. 'att:' .. old, ARGV[4] .. 'fail:' .. old)
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
redis.call('DEL', KEYS[3])
return 1
"#,
    )
});

/// KEYS: attempt, failures. ARGV: prefix, token.
static TAKE_ATTEMPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{DROP_BROWSER_LUA}
local v = redis.call('GET', KEYS[1])
if not v then return false end
redis.call('DEL', KEYS[1], KEYS[2])
drop_browser(ARGV[1], v, ARGV[2])
return v
"#
    ))
});

/// KEYS: browser index. ARGV: prefix. Returns `{token, value}` or nil.
static ATTEMPT_FOR_BROWSER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('GET', KEYS[1])
if not t then return false end
local v = redis.call('GET', ARGV[1] .. 'att:' .. t)
if not v then return false end
return {t, v}
"#,
    )
});

/// KEYS: attempt, failures. ARGV: max, prefix, token. The failure counter
/// expires with the attempt; reaching `max` deletes both.
static FAIL_ATTEMPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{DROP_BROWSER_LUA}
local max = tonumber(ARGV[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then return max end
local n = redis.call('INCR', KEYS[2])
if n < max then
  redis.call('PEXPIRE', KEYS[2], left)
  return n
end
local v = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
drop_browser(ARGV[2], v, ARGV[3])
return n
"#
    ))
});

/// KEYS: session, index. ARGV: value, ttl ms, id, lifetime ms, prefix.
/// Prunes dead ids and keeps the index TTL at least the new lifetime.
static PUT_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local cur = redis.call('PTTL', KEYS[2])
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', ARGV[5] .. 'ses:' .. id) == 0 then
    redis.call('SREM', KEYS[2], id)
  end
end
redis.call('SADD', KEYS[2], ARGV[3])
local want = tonumber(ARGV[4])
if cur > want then want = cur end
redis.call('PEXPIRE', KEYS[2], want)
return 1
"#,
    )
});

/// KEYS: session, index. ARGV: id, channel.
static DELETE_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[1])
return 1
"#,
    )
});

/// KEYS: index. ARGV: prefix, channel. Returns the number of live sessions
/// deleted; publishes every id in the index.
static REVOKE_ALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  n = n + redis.call('DEL', ARGV[1] .. 'ses:' .. id)
  redis.call('PUBLISH', ARGV[2], id)
end
redis.call('DEL', KEYS[1])
return n
"#,
    )
});

/// KEYS: index. ARGV: prefix. Prunes dead ids, returns how many remain.
static COUNT_SESSIONS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. 'ses:' .. id) == 0 then
    redis.call('SREM', KEYS[1], id)
  end
end
return redis.call('SCARD', KEYS[1])
"#,
    )
});

/// The live sessions of an index, as `id, record, id, record, …` (dead
/// ids pruned as in COUNT_SESSIONS). Reads only: no TTL is refreshed.
static LIST_SESSIONS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local v = redis.call('GET', ARGV[1] .. 'ses:' .. id)
  if v then
    table.insert(out, id)
    table.insert(out, v)
  else
    redis.call('SREM', KEYS[1], id)
  end
end
return out
"#,
    )
});

pub(super) struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    response_timeout: Duration,
    revoked: broadcast::Sender<String>,
    health: Arc<Health>,
    _subscriber: Subscriber,
}

/// The client for `url` and the connection manager's settings. The URL may
/// hold a password: never echo it or the parser's message.
fn client_and_config(
    url: &str,
    connect_timeout: Duration,
    response_timeout: Duration,
) -> Result<(Client, ConnectionManagerConfig), StoreError> {
    // The rule `portcullis check` applies too (config conversion), so a
    // configuration that passed it never fails here.
    crate::config::redis_url::check(url).map_err(StoreError::Unavailable)?;
    let client =
        Client::open(url).map_err(|_| StoreError::Unavailable("invalid Redis URL".to_owned()))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(connect_timeout))
        .set_response_timeout(Some(response_timeout))
        // Few, short retries: a command waiting on a reconnect is cut
        // off by the response timeout anyway, and the next command
        // starts a fresh reconnect.
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500));
    Ok((client, config))
}

fn target(
    client: Client,
    prefix: &str,
    connect_timeout: Duration,
    response_timeout: Duration,
    health: &Arc<Health>,
) -> Target {
    Target {
        client,
        channel: format!("{prefix}{}", key::REVOKED_CHANNEL),
        connect_timeout,
        response_timeout,
        health: health.clone(),
    }
}

impl RedisStore {
    /// Connects now: fails with `Unavailable` unless Redis answers and the
    /// revocation subscription is live before this returns (the CLI).
    pub(super) async fn connect(
        url: &str,
        connect_timeout: Duration,
        response_timeout: Duration,
        prefix: &str,
    ) -> Result<RedisStore, StoreError> {
        let (client, config) = client_and_config(url, connect_timeout, response_timeout)?;
        let start_bound = connect_timeout
            .saturating_mul(2)
            .saturating_add(response_timeout);
        let conn = tokio::time::timeout(
            start_bound,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| StoreError::Unavailable("connecting to Redis timed out".to_owned()))?
        .map_err(|e| map_error(&e))?;
        let health = Arc::new(Health::default());
        let (revoked, _) = broadcast::channel(REVOCATION_CAPACITY);
        let subscriber = Subscriber::start(
            target(client, prefix, connect_timeout, response_timeout, &health),
            revoked.clone(),
        )
        .await?;
        let store = RedisStore {
            conn,
            prefix: prefix.to_owned(),
            response_timeout,
            revoked,
            health,
            _subscriber: subscriber,
        };
        store.ping().await?;
        Ok(store)
    }

    /// Connects in the background: fails only for a URL that cannot be
    /// used. Commands fail with `Unavailable` until Redis answers; the
    /// connection and the subscription come up by themselves when it does
    /// (the gateway, which must start while Redis is down).
    pub(super) fn open(
        url: &str,
        connect_timeout: Duration,
        response_timeout: Duration,
        prefix: &str,
    ) -> Result<RedisStore, StoreError> {
        let (client, config) = client_and_config(url, connect_timeout, response_timeout)?;
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| map_error(&e))?;
        let health = Arc::new(Health::default());
        let (revoked, _) = broadcast::channel(REVOCATION_CAPACITY);
        let subscriber = Subscriber::spawn(
            target(client, prefix, connect_timeout, response_timeout, &health),
            revoked.clone(),
        );
        Ok(RedisStore {
            conn,
            prefix: prefix.to_owned(),
            response_timeout,
            revoked,
            health,
            _subscriber: subscriber,
        })
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

    fn k(&self, unprefixed: &str) -> String {
        format!("{}{unprefixed}", self.prefix)
    }

    fn channel(&self) -> String {
        self.k(key::REVOKED_CHANNEL)
    }

    fn deadline(&self) -> Instant {
        let now = Instant::now();
        // A configured timeout too large to add is as good as none.
        now.checked_add(self.response_timeout)
            .unwrap_or_else(|| now + super::MAX_TTL)
    }

    /// Runs `op` on a clone of the connection, bounded by `deadline`. If the
    /// connection was refused (so nothing was sent), `op` is retried once on
    /// the reconnect that the failure started.
    async fn run_by<T, F, Fut>(&self, deadline: Instant, op: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let attempt = async {
            match op(self.conn.clone()).await {
                Err(e) if e.is_connection_refusal() => op(self.conn.clone()).await,
                other => other,
            }
        };
        let result = match tokio::time::timeout_at(deadline, attempt).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(map_error(&e)),
            Err(_) => Err(StoreError::Unavailable(
                "Redis did not answer in time".to_owned(),
            )),
        };
        self.health
            .command(!matches!(result, Err(StoreError::Unavailable(_))));
        result
    }

    async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
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

    /// Every key matching `pattern`, by SCAN (O(keys): not for requests).
    /// SCAN may return a key twice while Redis rehashes: each is kept once.
    async fn scan(&self, pattern: &str) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let mut cursor: u64 = 0;
        let mut seen = std::collections::BTreeSet::new();
        loop {
            let mut cmd = ::redis::cmd("SCAN");
            cmd.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000);
            let cmd = &cmd;
            let (next, keys): (u64, Vec<String>) = self
                .run(|mut c| async move { cmd.query_async(&mut c).await })
                .await?;
            seen.extend(keys);
            if next == 0 {
                return Ok(seen);
            }
            cursor = next;
        }
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
            .arg(&self.prefix);
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
            .arg(&self.prefix)
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
        inv.key(self.k(&key::browser(browser))).arg(&self.prefix);
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
            .arg(&self.prefix)
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
        let mut inv = PUT_SESSION.prepare_invoke();
        inv.key(self.k(&key::session(id_hash)))
            .key(self.k(&key::index(email_hash)))
            .arg(value)
            .arg(ttl_ms(ttl))
            .arg(id_hash)
            .arg(ttl_ms(lifetime))
            .arg(&self.prefix);
        let inv = &inv;
        self.run(|mut c| async move { inv.invoke_async::<()>(&mut c).await })
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
        let session_key = self.k(&key::session(id_hash));
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
        let mut inv = DELETE_SESSION.prepare_invoke();
        inv.key(self.k(&key::session(id_hash)))
            .key(self.k(&key::index(email_hash)))
            .arg(id_hash)
            .arg(self.channel());
        let inv = &inv;
        self.run(|mut c| async move { inv.invoke_async::<()>(&mut c).await })
            .await
    }

    pub(super) async fn revoke_all(&self, email_hash: &str) -> Result<usize, StoreError> {
        let mut inv = REVOKE_ALL.prepare_invoke();
        inv.key(self.k(&key::index(email_hash)))
            .arg(&self.prefix)
            .arg(self.channel());
        let inv = &inv;
        self.run(|mut c| async move { inv.invoke_async::<usize>(&mut c).await })
            .await
    }

    pub(super) async fn count_sessions(&self, email_hash: &str) -> Result<usize, StoreError> {
        let mut inv = COUNT_SESSIONS.prepare_invoke();
        inv.key(self.k(&key::index(email_hash))).arg(&self.prefix);
        let inv = &inv;
        self.run(|mut c| async move { inv.invoke_async::<usize>(&mut c).await })
            .await
    }

    pub(super) async fn indexes(&self) -> Result<Vec<String>, StoreError> {
        let start = self.k(&key::index(""));
        let keys = self.scan(&format!("{}*", escape_glob(&start))).await?;
        Ok(keys
            .into_iter()
            .filter_map(|k| k.strip_prefix(&start).map(String::from))
            .collect())
    }

    pub(super) async fn list_sessions(
        &self,
        email_hash: &str,
    ) -> Result<Vec<(String, SessionRecord)>, StoreError> {
        let mut inv = LIST_SESSIONS.prepare_invoke();
        inv.key(self.k(&key::index(email_hash))).arg(&self.prefix);
        let inv = &inv;
        let flat: Vec<String> = self
            .run(|mut c| async move { inv.invoke_async::<Vec<String>>(&mut c).await })
            .await?;
        flat.chunks(2)
            .map(|pair| match pair {
                [id, raw] => Ok((id.clone(), decode::<SessionRecord>("session", raw)?)),
                _ => Err(StoreError::Corrupt("unexpected reply from Redis".into())),
            })
            .collect()
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
fn map_error(e: &RedisError) -> StoreError {
    match e.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => {
            StoreError::Corrupt("unexpected reply from Redis".to_owned())
        }
        _ => StoreError::Unavailable(e.to_string()),
    }
}
