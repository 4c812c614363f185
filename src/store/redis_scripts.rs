//! The Lua scripts of the Redis backend: every operation that reads and
//! then writes in one atomic step. Each touches only the keys it is given
//! and keys built from the prefix it is given (which, in a Cluster,
//! carries the `{signin}` hash tag, so they share the slot).

use std::sync::LazyLock;

use ::redis::Script;

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
pub(super) static HIT: LazyLock<Script> = LazyLock::new(|| {
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
pub(super) static ADMIT_SIGN_IN: LazyLock<Script> = LazyLock::new(|| {
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
pub(super) static PUT_ATTEMPT: LazyLock<Script> = LazyLock::new(|| {
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
pub(super) static TAKE_ATTEMPT: LazyLock<Script> = LazyLock::new(|| {
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
pub(super) static ATTEMPT_FOR_BROWSER: LazyLock<Script> = LazyLock::new(|| {
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
pub(super) static FAIL_ATTEMPT: LazyLock<Script> = LazyLock::new(|| {
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
pub(super) static PUT_SESSION: LazyLock<Script> = LazyLock::new(|| {
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
pub(super) static DELETE_SESSION: LazyLock<Script> = LazyLock::new(|| {
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
pub(super) static REVOKE_ALL: LazyLock<Script> = LazyLock::new(|| {
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
pub(super) static COUNT_SESSIONS: LazyLock<Script> = LazyLock::new(|| {
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
pub(super) static LIST_SESSIONS: LazyLock<Script> = LazyLock::new(|| {
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
