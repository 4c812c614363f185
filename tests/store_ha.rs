//! The store on Redis deployments with failover, each test with its own
//! deployment (tests/support/redis_ha.rs): a Sentinel failover
//! (`SENTINEL FAILOVER`, then SIGKILL of the master) and a Cluster master
//! killed, with sessions made before still there after, revocations still
//! crossing instances, and the store working again by itself; the Cluster
//! key layout (hash slots); TLS refusing a wrong CA and a missing client
//! certificate, and an ACL user refused what it may not do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support {
    pub mod ports;
    pub mod redis_ha;
}

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portcullis::store::{RedisSettings, SessionRecord, Store, StoreError, StoreSettings};
use support::redis_ha::{self, RedisCluster, SentinelSet, TlsRedis};

const IDLE: Duration = Duration::from_secs(600);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn record(email: &str) -> SessionRecord {
    SessionRecord {
        email: email.to_owned(),
        created_at: unix_now(),
        expires_at: unix_now() + 3600,
        amr: None,
    }
}

/// `settings` with replica acknowledgement on (as the mode's default).
fn with_wait(settings: StoreSettings) -> StoreSettings {
    match settings {
        StoreSettings::Redis(r) => StoreSettings::Redis(RedisSettings {
            wait_replicas: 1,
            wait_timeout: Duration::from_millis(500),
            ..r
        }),
        other => other,
    }
}

/// Polls `op` until it is `Ok`, up to `limit`; returns how long it took.
async fn until_ok<F, Fut, T>(what: &str, limit: Duration, mut op: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let start = Instant::now();
    loop {
        if op().await.is_ok() {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what} not back within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn put_sessions(store: &Store, tag: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("{tag}-{i}");
        store
            .put_session(
                &id,
                &format!("e-{tag}-{}", i % 3),
                &record("a@example.com"),
                IDLE,
            )
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

/// Every session in `ids` is there. A read may still meet a connection
/// the failover broke (`Unavailable`, which the gateway covers with
/// `store_grace`): it is asked again, for up to 5 s.
async fn assert_all_present(store: &Store, ids: &[String]) {
    for id in ids {
        let start = Instant::now();
        let got = loop {
            match store.get_session(id, IDLE, unix_now()).await {
                Ok(got) => break got,
                Err(StoreError::Unavailable(_)) if start.elapsed() < Duration::from_secs(5) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("reading {id}: {e:?}"),
            }
        };
        assert!(got.is_some(), "session {id} lost in the failover");
    }
}

/// Once `to` is subscribed again (before that, a sign-out reaches it
/// through the subscription epoch, as tests/store.rs checks), a sign-out on
/// `from` reaches `to`'s revocation channel within 1 s.
async fn revocation_crosses(from: &Store, to: &Store, id: &str) {
    let up = Instant::now();
    while !to.is_up() {
        let _ = to.ping().await;
        assert!(
            up.elapsed() < Duration::from_secs(10),
            "never subscribed again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut rx = to.revocations();
    let started = Instant::now();
    until_ok("a sign-out", Duration::from_secs(10), || {
        from.delete_session(id, "e-x")
    })
    .await;
    let got = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            if rx.recv().await.unwrap() == id {
                return;
            }
        }
    })
    .await;
    assert!(
        got.is_ok(),
        "revocation of {id} did not arrive within 1 s (sent {:?} ago)",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_and_master_kill_lose_no_acknowledged_session() {
    let set = SentinelSet::start();
    let settings = with_wait(redis_ha::sentinel_settings(&set, "portcullis:"));
    let gateway_a = Store::connect(&settings).await.unwrap();
    let gateway_b = Store::open(&settings).unwrap();
    until_ok("the second store", Duration::from_secs(5), || {
        gateway_b.ping()
    })
    .await;

    let late = record("b@example.com");
    // 1. SENTINEL FAILOVER: the old master turns replica (READONLY).
    let before = put_sessions(&gateway_a, "f1", 20).await;
    let old = set.master().unwrap().port;
    let new = set.failover();
    assert_ne!(old, new);
    let back = until_ok(
        "sign-in writes after SENTINEL FAILOVER",
        Duration::from_secs(10),
        || gateway_a.put_session("f1-after", "e-f1", &late, IDLE),
    )
    .await;
    assert_all_present(&gateway_a, &before).await;
    assert_all_present(&gateway_b, &before).await;
    // The new session is on the new master.
    let on_new = set
        .data
        .iter()
        .find(|n| n.port == new)
        .unwrap()
        .cli(&["EXISTS", "portcullis:ses:f1-after"]);
    assert_eq!(on_new.as_deref(), Some("1"));
    revocation_crosses(&gateway_a, &gateway_b, "f1-0").await;
    eprintln!("SENTINEL FAILOVER: writes back after {back:?}");

    // 2. SIGKILL of the master: the Sentinels take >= 1 s to agree.
    set.wait_settled();
    let before = put_sessions(&gateway_a, "k1", 20).await;
    let killed_at = Instant::now();
    let killed = set.master().unwrap().port;
    let new = set.kill_master();
    assert_ne!(killed, new);
    let back = until_ok(
        "sign-in writes after the master was killed",
        Duration::from_secs(15),
        || gateway_b.put_session("k1-after", "e-k1", &late, IDLE),
    )
    .await;
    assert_all_present(&gateway_a, &before).await;
    assert_all_present(&gateway_b, &before).await;
    revocation_crosses(&gateway_b, &gateway_a, "k1-0").await;
    // And the revoked one stays revoked on both.
    assert_eq!(
        gateway_a
            .get_session("k1-0", IDLE, unix_now())
            .await
            .unwrap(),
        None
    );
    eprintln!(
        "master SIGKILL: writes back {back:?} after the kill was noticed, {:?} after the kill",
        killed_at.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_master_killed_loses_no_acknowledged_session() {
    let cluster = RedisCluster::start();
    let settings = with_wait(redis_ha::cluster_settings(&cluster, "portcullis:"));
    let gateway_a = Store::connect(&settings).await.unwrap();
    let gateway_b = Store::connect(&settings).await.unwrap();
    let late = record("b@example.com");
    let before = put_sessions(&gateway_a, "c1", 30).await;
    // Sessions spread over the masters (their own slots).
    let masters = redis_ha::cluster_master_clients(&cluster);
    let mut holding = 0;
    for client in &masters {
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let n: Vec<String> = redis::cmd("KEYS")
            .arg("portcullis:ses:*")
            .query_async(&mut c)
            .await
            .unwrap();
        holding += usize::from(!n.is_empty());
    }
    assert_eq!(holding, 3, "sessions on every master");

    cluster.kill_master_of("portcullis:ses:{c1-0}");
    let back = until_ok(
        "writes after the master was killed",
        Duration::from_secs(15),
        || gateway_a.put_session("c1-after", "e-c1-0", &late, IDLE),
    )
    .await;
    assert_all_present(&gateway_a, &before).await;
    assert_all_present(&gateway_b, &before).await;
    revocation_crosses(&gateway_a, &gateway_b, "c1-0").await;
    assert_eq!(gateway_b.count_sessions("e-c1-1").await.unwrap(), 10);
    assert_eq!(gateway_b.revoke_all("e-c1-1").await.unwrap(), 10);
    assert_eq!(gateway_b.count_sessions("e-c1-1").await.unwrap(), 0);
    eprintln!("cluster master SIGKILL: writes back after {back:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_keys_keep_each_script_in_one_slot() {
    let cluster = RedisCluster::shared();
    let prefix = "layout:";
    let store = Store::connect(&redis_ha::cluster_settings(&cluster, prefix))
        .await
        .unwrap();
    let long = Duration::from_secs(600);
    store.hit("ip:1", long).await.unwrap();
    store.claim("send:1", long).await.unwrap();
    let attempt = portcullis::store::Attempt {
        email: "a@example.com".into(),
        rd: "/".into(),
        code_hash: "c".into(),
        browser: "brw".into(),
        created_at: unix_now(),
        asked_agent: String::new(),
        asked_ip: String::new(),
    };
    store.put_attempt("tok", &attempt, long).await.unwrap();
    store.fail_attempt("tok", 5).await.unwrap();
    store
        .put_session("ses1", "eml", &record("a@example.com"), long)
        .await
        .unwrap();
    store
        .put_session("ses2", "eml", &record("a@example.com"), long)
        .await
        .unwrap();
    let masters = redis_ha::cluster_master_clients(&cluster);
    let keys: HashSet<String> = redis_ha::keys_all_with_ttl(&masters, prefix)
        .await
        .into_iter()
        .collect();
    let want: HashSet<String> = [
        "layout:{signin}:att:tok",
        "layout:{signin}:brw:brw",
        "layout:{signin}:fail:tok",
        "layout:{signin}:rl:ip:1",
        "layout:{signin}:rl:send:1",
        "layout:ses:{ses1}",
        "layout:ses:{ses2}",
        "layout:idx:{eml}",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(keys, want);
    let slot = |k: &str| cluster.nodes[0].cli(&["CLUSTER", "KEYSLOT", k]).unwrap();
    assert_eq!(
        slot("layout:{signin}:att:tok"),
        slot("layout:{signin}:brw:brw")
    );
    let slots: HashSet<String> = ["layout:ses:{ses1}", "layout:ses:{ses2}", "layout:idx:{eml}"]
        .iter()
        .map(|k| slot(k))
        .collect();
    assert_eq!(slots.len(), 3, "each session and the index in its own slot");
    assert_eq!(store.indexes().await.unwrap(), vec!["eml".to_owned()]);
    let listed = store.list_sessions("eml").await.unwrap();
    assert_eq!(listed.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_needs_the_right_ca_and_client_certificate_and_acl_limits_the_user() {
    let server = TlsRedis::start(true, Some("pw-acl"));
    let good = redis_ha::tls_settings(&server, "portcullis:", Some("pw-acl"));
    let store = Store::connect(&good).await.unwrap();
    store.ping().await.unwrap();

    let with = |f: &dyn Fn(&mut RedisSettings)| {
        let StoreSettings::Redis(mut r) = good.clone() else {
            unreachable!()
        };
        r.connect_timeout = Duration::from_millis(500);
        f(&mut r);
        StoreSettings::Redis(r)
    };
    // Another CA: the server's certificate is not trusted.
    let other_ca = std::fs::read(&server.pki.other_ca).unwrap();
    let wrong_ca = with(&|r| r.tls.as_mut().unwrap().ca = Some(other_ca.clone()));
    assert!(matches!(
        Store::connect(&wrong_ca).await,
        Err(StoreError::Unavailable(_))
    ));
    // No client certificate: the server refuses the handshake.
    let no_cert = with(&|r| r.tls.as_mut().unwrap().client = None);
    assert!(matches!(
        Store::connect(&no_cert).await,
        Err(StoreError::Unavailable(_))
    ));
    // Wrong password.
    let wrong_pw = with(&|r| {
        r.password = Some(portcullis::config::Secret::new(b"nope".to_vec()));
    });
    match Store::connect(&wrong_pw).await {
        Err(StoreError::Unavailable(why)) => assert!(!why.contains("nope"), "{why}"),
        other => panic!("{other:?}"),
    }
    // The ACL user cannot touch keys outside its prefix, nor run others.
    let client = redis_ha::tls_client(&server, Some("pw-acl"));
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let denied: redis::RedisResult<()> = redis::cmd("SET")
        .arg("other:x")
        .arg("1")
        .query_async(&mut c)
        .await;
    assert_eq!(denied.unwrap_err().code(), Some("NOPERM"));
    let denied: redis::RedisResult<()> = redis::cmd("FLUSHALL").query_async(&mut c).await;
    assert_eq!(denied.unwrap_err().code(), Some("NOPERM"));
    let denied: redis::RedisResult<()> = redis::cmd("KEYS").arg("*").query_async(&mut c).await;
    assert_eq!(denied.unwrap_err().code(), Some("NOPERM"));
}

/// What `WAIT 1` costs per session write on the Sentinel set (run with
/// `--ignored --nocapture`; figures go to docs/redis-ha.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn wait_cost_per_session_write() {
    let set = SentinelSet::start();
    for wait in [0, 1] {
        let settings = match redis_ha::sentinel_settings(&set, "portcullis:") {
            StoreSettings::Redis(r) => StoreSettings::Redis(RedisSettings {
                wait_replicas: wait,
                ..r
            }),
            other => other,
        };
        let store = Store::connect(&settings).await.unwrap();
        let mut took = Vec::new();
        for i in 0..500 {
            let start = Instant::now();
            store
                .put_session(&format!("w{wait}-{i}"), "e", &record("a@example.com"), IDLE)
                .await
                .unwrap();
            took.push(start.elapsed());
        }
        took.sort();
        eprintln!(
            "wait_replicas = {wait}: put_session median {:?}, p99 {:?}",
            took[took.len() / 2],
            took[took.len() * 99 / 100]
        );
    }
}
