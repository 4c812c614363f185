//! The store's behaviour, checked against both backends with the same test
//! bodies (memory, and real Redis: one `redis-server` on a unix socket, a
//! local 3-master Cluster, a Sentinel set, and one TLS server with a
//! client certificate and an ACL user), plus the
//! Redis-only properties: every key has a TTL, revocations cross instances,
//! and outages cost a bounded `Unavailable` and heal without rebuilding the
//! store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support {
    pub mod ports;
    pub mod redis;
    pub mod redis_ha;
}

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portcullis::store::{
    Admission, Attempt, RedisSettings, SessionRecord, SignInLimits, Store, StoreError,
    StoreSettings,
};
use support::redis::RedisServer;
use support::redis_ha::{self as redis_ha, RedisCluster, SentinelSet, TlsRedis};
use tokio::sync::broadcast;

const POLL: Duration = Duration::from_millis(20);
const DEADLINE: Duration = Duration::from_secs(5);

fn redis_settings(server: &RedisServer, prefix: &str, response_timeout: Duration) -> StoreSettings {
    StoreSettings::Redis(RedisSettings {
        connect_timeout: Duration::from_secs(1),
        response_timeout,
        ..RedisSettings::standalone(server.url(), prefix)
    })
}

async fn memory_store() -> Store {
    Store::connect(&StoreSettings::Memory).await.unwrap()
}

async fn redis_store(server: &RedisServer, prefix: &str) -> Store {
    Store::connect(&redis_settings(server, prefix, Duration::from_secs(1)))
        .await
        .unwrap()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn attempt(browser: &str) -> Attempt {
    Attempt {
        email: "alice@example.com".to_owned(),
        rd: "https://app.example.com/".to_owned(),
        code_hash: "c0de".to_owned(),
        browser: browser.to_owned(),
        created_at: unix_now(),
        asked_agent: "Firefox on Windows".to_owned(),
        asked_ip: "192.0.2.1".to_owned(),
    }
}

fn session(expires_at: u64) -> SessionRecord {
    SessionRecord {
        email: "alice@example.com".to_owned(),
        created_at: unix_now(),
        expires_at,
        amr: None,
    }
}

/// Polls `cond` every [`POLL`] until it holds; panics after [`DEADLINE`].
async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(POLL).await;
    }
}

async fn recv_within(rx: &mut broadcast::Receiver<String>, limit: Duration) -> String {
    tokio::time::timeout(limit, rx.recv())
        .await
        .expect("revocation arrives in time")
        .expect("revocation channel open")
}

/// Every key under `prefix` has a TTL (PTTL -1 means none).
async fn assert_all_keys_have_ttl(server: &RedisServer, prefix: &str) -> Vec<String> {
    let client = redis::Client::open(server.url()).unwrap();
    redis_ha::keys_all_with_ttl(&[client], prefix).await
}

/// Runs each named `async fn(Store)` once per backend and Redis
/// deployment. The Redis runs use the shared deployment with the test's
/// name as key prefix, and afterwards check that every key it left has a
/// TTL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        // One module per deployment (tests named `cluster::put_peek_take`),
        // so a deployment's tests run one after another and share it
        // instead of starting it again for each test.
        mod memory {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::memory_store().await).await;
            }
        )*}

        mod standalone {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let server = super::RedisServer::shared();
                let prefix = concat!("t:", stringify!($name), ":");
                let store = super::redis_store(&server, prefix).await;
                assert_eq!(store.backend_name(), "redis");
                super::$name(store).await;
                super::assert_all_keys_have_ttl(&server, prefix).await;
            }
        )*}

        mod cluster {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let cluster = super::RedisCluster::shared();
                let prefix = concat!("t:", stringify!($name), ":");
                let settings = super::redis_ha::cluster_settings(&cluster, prefix);
                let store = super::Store::connect(&settings).await.unwrap();
                super::$name(store).await;
                let masters = super::redis_ha::cluster_master_clients(&cluster);
                super::redis_ha::keys_all_with_ttl(&masters, prefix).await;
            }
        )*}

        mod sentinel {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let set = super::SentinelSet::shared();
                let prefix = concat!("t:", stringify!($name), ":");
                let settings = super::redis_ha::sentinel_settings(&set, prefix);
                let store = super::Store::connect(&settings).await.unwrap();
                super::$name(store).await;
                let master = ::redis::Client::open(set.master().unwrap().url()).unwrap();
                super::redis_ha::keys_all_with_ttl(&[master], prefix).await;
            }
        )*}

        /// TLS with a client certificate, as the ACL user that may run
        /// only the commands the README lists.
        mod tls_acl {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let server = super::shared_tls();
                let prefix = concat!("portcullis:", stringify!($name), ":");
                let settings =
                    super::redis_ha::tls_settings(&server, prefix, Some(super::ACL_PASSWORD));
                let store = super::Store::connect(&settings).await.unwrap();
                super::$name(store).await;
                let client = super::redis_ha::tls_client(&server, Some(super::ACL_PASSWORD));
                super::redis_ha::keys_all_with_ttl(&[client], prefix).await;
            }
        )*}
    };
}

const ACL_PASSWORD: &str = "acl-test-password";

static SHARED_TLS: std::sync::Mutex<std::sync::Weak<TlsRedis>> =
    std::sync::Mutex::new(std::sync::Weak::new());

/// One TLS + ACL server for this binary's tests (client certificate
/// required, default user off).
fn shared_tls() -> Arc<TlsRedis> {
    let mut slot = SHARED_TLS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = slot.upgrade() {
        return s;
    }
    let s = Arc::new(TlsRedis::start(true, Some(ACL_PASSWORD)));
    *slot = Arc::downgrade(&s);
    s
}

on_both_backends!(
    hit_counts_in_a_fixed_window,
    claim_is_exclusive_until_it_expires,
    admission_counts_caps_and_claims_in_one_step,
    count_reads_without_counting,
    put_peek_take,
    concurrent_take_has_one_winner,
    newer_attempt_replaces_older_for_same_browser,
    fail_attempt_deletes_at_max,
    attempt_expires,
    session_idle_timeout_refreshes_on_use,
    session_absolute_expiry,
    session_delete_revoke_all_and_counts,
    sessions_are_listed_and_indexes_found,
    ping_is_ok,
);

/// `list_sessions` (live ones, oldest first, dead ids left out) and
/// `indexes` (every address index), for the command line.
async fn sessions_are_listed_and_indexes_found(store: Store) {
    let idle = Duration::from_secs(600);
    let mut older = session(unix_now() + 3600);
    older.created_at -= 60;
    let newer = session(unix_now() + 3600);
    store
        .put_session("l-new", "e-list", &newer, idle)
        .await
        .unwrap();
    store
        .put_session("l-old", "e-list", &older, idle)
        .await
        .unwrap();
    store
        .put_session("l-x", "e-list2", &newer, idle)
        .await
        .unwrap();
    let list = store.list_sessions("e-list").await.unwrap();
    assert_eq!(
        list,
        vec![
            ("l-old".to_string(), older.clone()),
            ("l-new".to_string(), newer.clone())
        ]
    );
    assert_eq!(store.list_sessions("e-none").await.unwrap(), vec![]);
    let mut indexes = store.indexes().await.unwrap();
    indexes.sort();
    assert_eq!(indexes, ["e-list", "e-list2"]);
    store.delete_session("l-new", "e-list").await.unwrap();
    assert_eq!(
        store.list_sessions("e-list").await.unwrap(),
        vec![("l-old".to_string(), older)]
    );
}

async fn hit_counts_in_a_fixed_window(store: Store) {
    let window = Duration::from_millis(500);
    let started = Instant::now();
    assert_eq!(store.hit("ip:192.0.2.1", window).await.unwrap(), 1);
    assert_eq!(store.hit("ip:192.0.2.1", window).await.unwrap(), 2);
    assert_eq!(store.hit("ip:192.0.2.2", window).await.unwrap(), 1);
    assert_eq!(store.hit("ip:192.0.2.1", window).await.unwrap(), 3);
    // Hitting keeps going; the window must still end (hits do not extend it)
    // and not before it is over.
    let deadline = started + DEADLINE;
    let mut last = 3;
    loop {
        let n = store.hit("ip:192.0.2.1", window).await.unwrap();
        if n == 1 {
            break;
        }
        assert_eq!(n, last + 1);
        last = n;
        assert!(Instant::now() < deadline, "the window never reset");
        tokio::time::sleep(POLL).await;
    }
    assert!(started.elapsed() >= window, "window ended early");
}

async fn claim_is_exclusive_until_it_expires(store: Store) {
    let ttl = Duration::from_millis(500);
    let started = Instant::now();
    assert!(store.claim("send:abc", ttl).await.unwrap());
    assert!(!store.claim("send:abc", ttl).await.unwrap());
    assert!(store.claim("send:other", ttl).await.unwrap());
    eventually("the claim expires", || {
        let store = store.clone();
        async move { store.claim("send:abc", ttl).await.unwrap() }
    })
    .await;
    assert!(started.elapsed() >= ttl, "claim expired early");
    assert!(!store.claim("send:abc", ttl).await.unwrap());
}

async fn admission_counts_caps_and_claims_in_one_step(store: Store) {
    let w = Duration::from_secs(60);
    let limits = |ip_key, address_key, resend, token_hash| SignInLimits {
        ip_key,
        ip_window: w,
        ip_rate: 3,
        max_pending_per_ip: 2,
        max_pending: 100,
        pending_window: w,
        address_key,
        address_window: w,
        resend,
        token_hash,
    };
    let resend = Some(("resend:a", w));
    let admit = |l| {
        let store = store.clone();
        async move { store.admit_sign_in(&l).await.unwrap() }
    };
    assert_eq!(
        admit(limits("ip:1", "addr:a", resend, "t1")).await,
        Admission::Admitted {
            ip_count: 1,
            address_count: 1,
            fresh: true
        }
    );
    assert_eq!(
        admit(limits("ip:1", "addr:a", resend, "t2")).await,
        Admission::Admitted {
            ip_count: 2,
            address_count: 2,
            fresh: false
        }
    );
    // Two stored for this IP: the third is refused before the address
    // counter is touched.
    assert_eq!(
        admit(limits("ip:1", "addr:b", None, "t3")).await,
        Admission::IpFull
    );
    assert_eq!(store.count("addr:b").await.unwrap(), 0);
    // Over the IP rate nothing else is counted either.
    assert_eq!(
        admit(limits("ip:1", "addr:b", None, "t4")).await,
        Admission::IpRate
    );
    assert_eq!(store.count("addr:b").await.unwrap(), 0);
    // The same counters as hit() and claim() use.
    assert_eq!(store.hit("ip:1", w).await.unwrap(), 5);
    assert!(!store.claim("resend:a", w).await.unwrap());
    assert_eq!(store.count("addr:a").await.unwrap(), 2);
}

async fn count_reads_without_counting(store: Store) {
    let w = Duration::from_secs(60);
    assert_eq!(store.count("fail:x").await.unwrap(), 0);
    store.hit("fail:x", w).await.unwrap();
    store.hit("fail:x", w).await.unwrap();
    assert_eq!(store.count("fail:x").await.unwrap(), 2);
    assert_eq!(store.count("fail:x").await.unwrap(), 2);
}

async fn put_peek_take(store: Store) {
    let a = attempt("brw1");
    let ttl = Duration::from_secs(60);
    assert_eq!(store.peek_attempt("tok1").await.unwrap(), None);
    store.put_attempt("tok1", &a, ttl).await.unwrap();
    assert_eq!(store.peek_attempt("tok1").await.unwrap(), Some(a.clone()));
    assert_eq!(store.peek_attempt("tok1").await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.attempt_for_browser("brw1").await.unwrap(),
        Some(("tok1".to_owned(), a.clone()))
    );
    assert_eq!(store.attempt_for_browser("brw2").await.unwrap(), None);
    assert_eq!(store.take_attempt("tok1").await.unwrap(), Some(a));
    assert_eq!(store.take_attempt("tok1").await.unwrap(), None);
    assert_eq!(store.peek_attempt("tok1").await.unwrap(), None);
    assert_eq!(store.attempt_for_browser("brw1").await.unwrap(), None);
}

async fn concurrent_take_has_one_winner(store: Store) {
    let a = attempt("brw-race");
    store
        .put_attempt("tok-race", &a, Duration::from_secs(60))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.take_attempt("tok-race").await.unwrap() })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        if let Some(won) = task.await.unwrap() {
            winners.push(won);
        }
    }
    assert_eq!(winners, vec![a]);
    assert_eq!(store.attempt_for_browser("brw-race").await.unwrap(), None);
}

async fn newer_attempt_replaces_older_for_same_browser(store: Store) {
    let ttl = Duration::from_secs(60);
    let first = attempt("brwA");
    let mut second = attempt("brwA");
    second.rd = "https://app.example.com/second".to_owned();
    let other = attempt("brwB");
    store.put_attempt("old", &first, ttl).await.unwrap();
    store.put_attempt("theirs", &other, ttl).await.unwrap();
    assert_eq!(store.fail_attempt("old", 5).await.unwrap(), 1);
    store.put_attempt("new", &second, ttl).await.unwrap();

    assert_eq!(store.peek_attempt("old").await.unwrap(), None);
    assert_eq!(store.take_attempt("old").await.unwrap(), None);
    assert_eq!(
        store.peek_attempt("new").await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(
        store.attempt_for_browser("brwA").await.unwrap(),
        Some(("new".to_owned(), second))
    );
    // Another browser's attempt is untouched.
    assert_eq!(
        store.attempt_for_browser("brwB").await.unwrap(),
        Some(("theirs".to_owned(), other))
    );
}

async fn fail_attempt_deletes_at_max(store: Store) {
    let ttl = Duration::from_secs(60);
    let a = attempt("brwF");
    store.put_attempt("tokF", &a, ttl).await.unwrap();
    assert_eq!(store.fail_attempt("tokF", 3).await.unwrap(), 1);
    assert_eq!(store.fail_attempt("tokF", 3).await.unwrap(), 2);
    assert_eq!(store.peek_attempt("tokF").await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.attempt_for_browser("brwF").await.unwrap(),
        Some(("tokF".to_owned(), a.clone()))
    );
    assert_eq!(store.fail_attempt("tokF", 3).await.unwrap(), 3);
    assert_eq!(store.peek_attempt("tokF").await.unwrap(), None);
    assert_eq!(store.attempt_for_browser("brwF").await.unwrap(), None);
    assert_eq!(store.take_attempt("tokF").await.unwrap(), None);
    // A missing attempt reports the limit: callers fail closed.
    assert_eq!(store.fail_attempt("tokF", 3).await.unwrap(), 3);
    assert_eq!(store.fail_attempt("never", 7).await.unwrap(), 7);

    // Taking an attempt clears its failure counter.
    store.put_attempt("tokG", &a, ttl).await.unwrap();
    assert_eq!(store.fail_attempt("tokG", 3).await.unwrap(), 1);
    assert_eq!(store.take_attempt("tokG").await.unwrap(), Some(a.clone()));
    store.put_attempt("tokG", &a, ttl).await.unwrap();
    assert_eq!(store.fail_attempt("tokG", 3).await.unwrap(), 1);
}

async fn attempt_expires(store: Store) {
    let ttl = Duration::from_millis(500);
    let a = attempt("brwT");
    let started = Instant::now();
    store.put_attempt("tokT", &a, ttl).await.unwrap();
    assert_eq!(store.fail_attempt("tokT", 5).await.unwrap(), 1);
    assert_eq!(store.peek_attempt("tokT").await.unwrap(), Some(a));
    eventually("the attempt expires", || {
        let store = store.clone();
        async move { store.peek_attempt("tokT").await.unwrap().is_none() }
    })
    .await;
    assert!(started.elapsed() >= ttl, "attempt expired early");
    assert_eq!(store.attempt_for_browser("brwT").await.unwrap(), None);
    assert_eq!(store.take_attempt("tokT").await.unwrap(), None);
    assert_eq!(store.fail_attempt("tokT", 5).await.unwrap(), 5);
}

async fn session_idle_timeout_refreshes_on_use(store: Store) {
    let idle = Duration::from_millis(600);
    let record = session(unix_now() + 3600);
    store
        .put_session("s-idle", "e-idle", &record, idle)
        .await
        .unwrap();
    assert_eq!(store.count_sessions("e-idle").await.unwrap(), 1);
    // Used every 100 ms for twice the idle timeout: stays alive.
    let used_until = Instant::now() + idle * 2;
    while Instant::now() < used_until {
        assert_eq!(
            store.get_session("s-idle", idle, unix_now()).await.unwrap(),
            Some(record.clone())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Then left alone (counting does not refresh): it times out.
    let last_use = Instant::now();
    store.get_session("s-idle", idle, unix_now()).await.unwrap();
    eventually("the idle session expires", || {
        let store = store.clone();
        async move { store.count_sessions("e-idle").await.unwrap() == 0 }
    })
    .await;
    assert!(last_use.elapsed() >= idle, "session expired early");
    assert_eq!(
        store.get_session("s-idle", idle, unix_now()).await.unwrap(),
        None
    );
}

async fn session_absolute_expiry(store: Store) {
    let idle = Duration::from_secs(3600);
    let now = unix_now();
    let record = session(now + 600);
    store
        .put_session("s-abs", "e-abs", &record, idle)
        .await
        .unwrap();
    assert_eq!(
        store.get_session("s-abs", idle, now + 599).await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(
        store.get_session("s-abs", idle, now + 600).await.unwrap(),
        None
    );
    // Deleted, not just hidden: an earlier clock does not bring it back.
    assert_eq!(store.get_session("s-abs", idle, now).await.unwrap(), None);
    assert_eq!(store.count_sessions("e-abs").await.unwrap(), 0);

    // Already over: not stored at all.
    store
        .put_session("s-over", "e-abs", &session(now.saturating_sub(1)), idle)
        .await
        .unwrap();
    assert_eq!(store.get_session("s-over", idle, now).await.unwrap(), None);

    // The key's TTL is capped by the absolute end even with a long idle
    // timeout: a session ending in one to two seconds disappears by itself.
    store
        .put_session("s-short", "e-short", &session(unix_now() + 2), idle)
        .await
        .unwrap();
    assert_eq!(store.count_sessions("e-short").await.unwrap(), 1);
    eventually("the session reaches its absolute end", || {
        let store = store.clone();
        async move { store.count_sessions("e-short").await.unwrap() == 0 }
    })
    .await;
}

async fn session_delete_revoke_all_and_counts(store: Store) {
    let idle = Duration::from_secs(600);
    let record = session(unix_now() + 3600);
    let mut revoked = store.revocations();
    for id in ["s1", "s2", "s3"] {
        store
            .put_session(id, "e-many", &record, idle)
            .await
            .unwrap();
    }
    store
        .put_session("s4", "e-other", &record, idle)
        .await
        .unwrap();
    assert_eq!(store.count_sessions("e-many").await.unwrap(), 3);
    assert_eq!(store.count_sessions("e-other").await.unwrap(), 1);
    assert_eq!(store.count_sessions("e-none").await.unwrap(), 0);

    store.delete_session("s1", "e-many").await.unwrap();
    assert_eq!(
        recv_within(&mut revoked, Duration::from_secs(1)).await,
        "s1"
    );
    assert_eq!(
        store.get_session("s1", idle, unix_now()).await.unwrap(),
        None
    );
    assert_eq!(store.count_sessions("e-many").await.unwrap(), 2);

    assert_eq!(store.revoke_all("e-many").await.unwrap(), 2);
    let mut got = HashSet::new();
    got.insert(recv_within(&mut revoked, Duration::from_secs(1)).await);
    got.insert(recv_within(&mut revoked, Duration::from_secs(1)).await);
    assert_eq!(got, HashSet::from(["s2".to_owned(), "s3".to_owned()]));
    for id in ["s2", "s3"] {
        assert_eq!(store.get_session(id, idle, unix_now()).await.unwrap(), None);
    }
    assert_eq!(store.count_sessions("e-many").await.unwrap(), 0);
    assert_eq!(store.revoke_all("e-many").await.unwrap(), 0);

    // The other address is untouched.
    assert_eq!(store.count_sessions("e-other").await.unwrap(), 1);
    assert_eq!(
        store.get_session("s4", idle, unix_now()).await.unwrap(),
        Some(record)
    );
}

async fn ping_is_ok(store: Store) {
    assert_eq!(store.ping().await, Ok(()));
}

#[tokio::test]
async fn memory_backend_name() {
    assert_eq!(memory_store().await.backend_name(), "memory");
}

// ---------------------------------------------------------------- Redis only

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keys_follow_the_layout_and_all_have_ttls() {
    let server = RedisServer::shared();
    let prefix = "t:layout:";
    let store = redis_store(&server, prefix).await;
    let long = Duration::from_secs(600);
    store.hit("ip:1", long).await.unwrap();
    store.claim("send:1", long).await.unwrap();
    store
        .put_attempt("tokL", &attempt("brwL"), long)
        .await
        .unwrap();
    store.fail_attempt("tokL", 5).await.unwrap();
    let record = session(unix_now() + 3600);
    store
        .put_session("sesL", "emlL", &record, long)
        .await
        .unwrap();
    store.get_session("sesL", long, unix_now()).await.unwrap();

    let mut keys = assert_all_keys_have_ttl(&server, prefix).await;
    keys.sort();
    assert_eq!(
        keys,
        [
            "t:layout:att:tokL",
            "t:layout:brw:brwL",
            "t:layout:fail:tokL",
            "t:layout:idx:emlL",
            "t:layout:rl:ip:1",
            "t:layout:rl:send:1",
            "t:layout:ses:sesL",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_revocations_reach_a_second_store() {
    let server = RedisServer::shared();
    let prefix = "t:cross:";
    let first = redis_store(&server, prefix).await;
    let second = redis_store(&server, prefix).await;
    let elsewhere = redis_store(&server, "t:cross-other-prefix:").await;
    let mut rx = second.revocations();
    let mut rx_elsewhere = elsewhere.revocations();
    first.delete_session("gone", "e").await.unwrap();
    assert_eq!(recv_within(&mut rx, Duration::from_secs(1)).await, "gone");

    let record = session(unix_now() + 3600);
    let idle = Duration::from_secs(60);
    first.put_session("a", "e2", &record, idle).await.unwrap();
    first.put_session("b", "e2", &record, idle).await.unwrap();
    assert_eq!(first.revoke_all("e2").await.unwrap(), 2);
    let got = HashSet::from([
        recv_within(&mut rx, Duration::from_secs(1)).await,
        recv_within(&mut rx, Duration::from_secs(1)).await,
    ]);
    assert_eq!(got, HashSet::from(["a".to_owned(), "b".to_owned()]));
    // A store with another prefix hears nothing.
    assert_eq!(
        rx_elsewhere.try_recv(),
        Err(broadcast::error::TryRecvError::Empty)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_corrupt_values_are_reported() {
    let server = RedisServer::shared();
    let prefix = "t:corrupt:";
    let store = redis_store(&server, prefix).await;
    server.cli(&[
        "SET",
        "t:corrupt:att:bad",
        "{\"email\":\"x@example.com\"",
        "EX",
        "60",
    ]);
    server.cli(&["SET", "t:corrupt:ses:bad", "not json", "EX", "60"]);
    let err = store.peek_attempt("bad").await.unwrap_err();
    match &err {
        StoreError::Corrupt(msg) => assert!(!msg.contains("x@example.com"), "{msg}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(matches!(
        store
            .get_session("bad", Duration::from_secs(60), unix_now())
            .await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.take_attempt("bad").await,
        Err(StoreError::Corrupt(_))
    ));
}

#[tokio::test]
async fn redis_unreachable_at_start_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let settings = StoreSettings::Redis(RedisSettings {
        connect_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_millis(500),
        ..RedisSettings::standalone(
            format!("redis+unix://{}", dir.path().join("none.sock").display()),
            "t:",
        )
    });
    let started = Instant::now();
    let err = Store::connect(&settings).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));

    let bad = StoreSettings::Redis(RedisSettings {
        connect_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_millis(500),
        ..RedisSettings::standalone("http://user:hunter2@example.com/", "t:")
    });
    // The words of `portcullis check` (config::redis_url), never the URL.
    match Store::connect(&bad).await.unwrap_err() {
        StoreError::Unavailable(why) => {
            assert!(
                why.starts_with("is not a Redis URL the store can use ("),
                "{why}"
            );
            assert!(!why.contains("hunter2"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    let tls = StoreSettings::Redis(RedisSettings {
        connect_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_millis(500),
        ..RedisSettings::standalone("rediss://:hunter2@127.0.0.1:1/#insecure", "t:")
    });
    assert_eq!(
        Store::connect(&tls).await.unwrap_err(),
        StoreError::Unavailable(portcullis::config::redis_url::NO_INSECURE.to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_is_unavailable_fast_and_heals_after_restart() {
    let server = Arc::new(RedisServer::start());
    let prefix = "t:outage:";
    let store = redis_store(&server, prefix).await;
    let listener = redis_store(&server, prefix).await;
    let mut rx = listener.revocations();
    let a = attempt("brwO");
    store
        .put_attempt("tokO", &a, Duration::from_secs(60))
        .await
        .unwrap();

    server.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let err = store.peek_attempt("tokO").await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    let started = Instant::now();
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.hit("ip:x", Duration::from_secs(1)).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(4));

    server.start_again();
    // The same Store reconnects by itself (the data is gone: no persistence).
    eventually("the store reconnects", || {
        let store = store.clone();
        async move { store.ping().await.is_ok() }
    })
    .await;
    assert_eq!(store.peek_attempt("tokO").await.unwrap(), None);
    store
        .put_attempt("tokO", &a, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(store.take_attempt("tokO").await.unwrap(), Some(a));

    // Both subscribers are back on the channel, and revocations flow again.
    eventually("both subscribers resubscribe", || {
        let server = server.clone();
        async move {
            let reply = server.cli(&["PUBSUB", "NUMSUB", "t:outage:revoked"]);
            reply.lines().nth(1) == Some("2")
        }
    })
    .await;
    store.delete_session("after-restart", "e").await.unwrap();
    assert_eq!(
        recv_within(&mut rx, Duration::from_secs(1)).await,
        "after-restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_paused_is_unavailable_within_the_response_timeout() {
    let server = RedisServer::start();
    let store = Store::connect(&redis_settings(
        &server,
        "t:pause:",
        Duration::from_millis(500),
    ))
    .await
    .unwrap();
    store.ping().await.unwrap();
    server.client_pause(Duration::from_secs(5));
    let started = Instant::now();
    let err = store.take_attempt("tokP").await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    server.client_unpause();
    eventually("the store answers after the pause", || {
        let store = store.clone();
        async move { store.ping().await.is_ok() }
    })
    .await;
    assert_eq!(store.take_attempt("tokP").await.unwrap(), None);
}
