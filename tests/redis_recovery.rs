//! Redis faults around start-up and restarts (issue 16 item 7):
//!
//! - Redis absent when the real binary starts: it serves anyway, says so in
//!   one log line naming `store.url` and the address, answers sign-in with
//!   503 (sending nothing) and `/.portcullis/ready` with 503, and signs
//!   people in once a redis-server appears on that socket, without a
//!   restart.
//! - The store itself, opened without Redis: every operation is
//!   `Unavailable` at once, it comes up by itself, and each (re)subscription
//!   moves the revocation epoch on; a URL that cannot be used at all is a
//!   start error naming `store.url`.
//! - A sign-out made while another instance is not yet subscribed again
//!   after a Redis restart still ends the session there within a second:
//!   every (re)subscription drops that instance's session cache.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use portcullis::store::{RedisSettings, Store, StoreError, StoreSettings};
use support::browser::{Browser, Page};
use support::flow::{ask_link, mail_for};
use support::gateway::{GatewayProcess, TestGateway};
use support::redis::RedisServer;
use support::smtp::{Script, SmtpServer};
use support::upstream::Upstream;

const POLL: Duration = Duration::from_millis(20);

fn config(up: &Upstream, smtp: &SmtpServer, redis_url: &str, session: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:$PORT"
public_url = "http://127.0.0.1:$PORT"

[session]
secret_env = "PORTCULLIS_SECRET"
{session}

[login]
resend_delay = "0s"

[mail]
from = "Portcullis <login@example.com>"
transport = "smtp"
[mail.smtp]
host = "127.0.0.1"
port = {smtp}
tls = "none"
timeout = "5s"

[store]
backend = "redis"
url = "{redis_url}"
key_prefix = "rec:"
connect_timeout = "500ms"
response_timeout = "200ms"

[[route]]
path = "/"
upstream = "{up}"
"#,
        up = up.url(),
        smtp = smtp.port(),
    )
}

async fn sign_in(b: &mut Browser, smtp: &SmtpServer, origin: &str, email: &str) {
    assert_eq!(ask_link(b, origin, email, "/").await.status, 200);
    let token = mail_for(smtp, email, 1).await.0;
    let confirm = b
        .get(&format!("{origin}/.portcullis/verify?token={token}"))
        .await;
    let csrf = confirm.field("csrf").expect("button in the asking browser");
    let done = b
        .post(
            origin,
            "/.portcullis/verify",
            &[("token", &token), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
}

fn mails_to(smtp: &SmtpServer, to: &str) -> usize {
    smtp.received()
        .iter()
        .filter(|m| m.to.iter().any(|t| t == to))
        .count()
}

/// Polls `GET /.portcullis/ready` until it answers `status`.
async fn ready_becomes(b: &mut Browser, origin: &str, status: u16, within: Duration) -> Page {
    let deadline = Instant::now() + within;
    loop {
        let p = b.get(&format!("{origin}/.portcullis/ready")).await;
        if p.status == status {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "ready still {} ({})",
            p.status,
            p.body
        );
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_absent_at_start_serves_503_names_store_url_once_then_recovers() {
    let redis = RedisServer::stopped();
    let up = Upstream::start().await;
    let smtp = SmtpServer::start(Script::Accept);
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(dir.path(), &config(&up, &smtp, &redis.url(), ""));
    let o = format!("http://127.0.0.1:{}", gw.port);
    let mut probe = Browser::new();

    // It serves (the port is bound before the store is opened, so wait for
    // an answer), and the probe says why it is not ready.
    let p = ready_becomes(&mut probe, &o, 503, Duration::from_secs(10)).await;
    assert_eq!(p.body, r#"{"status":"unavailable","reason":"store"}"#);
    assert_eq!(
        p.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(p.header("cache-control").as_deref(), Some("no-store"));
    // Liveness is not readiness: /.portcullis/ping checks nothing.
    let ping = probe.get(&format!("{o}/.portcullis/ping")).await;
    assert_eq!((ping.status, ping.body.as_str()), (200, "OK\n"));
    assert_eq!(ping.header("cache-control").as_deref(), Some("no-store"));

    // One warn line, naming the key and the address, saying it once.
    let log = gw.log_text();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("store.url")).collect();
    assert_eq!(lines.len(), 1, "{log}");
    let line = lines[0];
    assert!(line.contains("WARN"), "{line}");
    let address = redis.url();
    assert_eq!(line.matches(address.as_str()).count(), 1, "{line}");
    assert_eq!(
        line.matches("No such file or directory").count(),
        1,
        "{line}"
    );
    assert_eq!(line.matches("Redis").count(), 1, "{line}");

    // Sign-in: 503 and nothing sent; a protected route is no pass.
    let mut b = Browser::new();
    let p = ask_link(&mut b, &o, "late@example.com", "/").await;
    assert_eq!(p.status, 503, "{}", p.body);
    assert_eq!(p.header("retry-after").as_deref(), Some("5"));
    assert_eq!(Browser::new().get(&format!("{o}/app")).await.status, 303);

    // Redis appears on that socket: sign-in works without a restart.
    redis.start_again();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let p = ask_link(&mut b, &o, "late@example.com", "/").await;
        if p.status == 200 {
            break;
        }
        assert_eq!(p.status, 503, "{}", p.body);
        assert!(Instant::now() < deadline, "sign-in still 503");
        tokio::time::sleep(POLL).await;
    }
    let token = mail_for(&smtp, "late@example.com", 1).await.0;
    assert_eq!(mails_to(&smtp, "late@example.com"), 1);
    let confirm = b
        .get(&format!("{o}/.portcullis/verify?token={token}"))
        .await;
    let csrf = confirm.field("csrf").unwrap();
    let done = b
        .post(
            &o,
            "/.portcullis/verify",
            &[("token", &token), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(b.get(&format!("{o}/app")).await.status, 200);

    let p = ready_becomes(&mut probe, &o, 200, Duration::from_secs(5)).await;
    assert_eq!(p.body, "ready\n");
    assert_eq!(p.header("cache-control").as_deref(), Some("no-store"));
    // Still the one line; no panic.
    let log = gw.log_text();
    assert_eq!(
        log.lines().filter(|l| l.contains("store.url")).count(),
        1,
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

/// Instance B logs in to Redis as `gwb`, a user that (as every ACL user
/// given on the command line) comes back with each restart of Redis; after
/// the restart it comes back without the right to subscribe, so B's
/// subscriber stays out exactly until the test gives it back. That makes
/// "the sign-out happened before B resubscribed" certain instead of a race
/// with B's reconnect backoff. B's commands work all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_before_the_resubscribe_after_a_redis_restart_ends_the_session_within_1s() {
    // The restart keeps the data (append-only file, flushed on SIGTERM), as
    // a Redis holding sessions in production would.
    let may_subscribe = [
        "--appendonly",
        "yes",
        "--user",
        "gwb",
        "on",
        ">pw-b",
        "~*",
        "&*",
        "+@all",
    ];
    let may_not_subscribe = [
        "--appendonly",
        "yes",
        "--user",
        "gwb",
        "on",
        ">pw-b",
        "~*",
        "resetchannels",
        "+@all",
    ];
    let redis = RedisServer::start_with(&may_subscribe);
    let up = Upstream::start().await;
    let smtp = SmtpServer::start(Script::Accept);
    // Revalidation every 60 s: only the broadcast or the resubscribe can end
    // the session on B in time.
    let session = "revalidate = \"60s\"";
    let a = TestGateway::start(&config(&up, &smtp, &redis.url(), session)).await;
    let b_url = format!("{}?user=gwb&pass=pw-b", redis.url());
    let b = TestGateway::start(&config(&up, &smtp, &b_url, session)).await;
    let (oa, ob) = (a.origin(), b.origin());

    let mut on_a = Browser::new();
    sign_in(&mut on_a, &smtp, &oa, "both@example.com").await;
    // The same cookie on B (cookies are per host, as in a browser): both
    // instances now cache the session.
    let mut on_b = Browser::new();
    on_b.jar = on_a.jar.clone();
    assert_eq!(on_a.get(&format!("{oa}/a")).await.status, 200);
    assert_eq!(on_b.get(&format!("{ob}/b")).await.status, 200);
    let confirm = on_a.get(&format!("{oa}/.portcullis/logout")).await;
    let csrf = confirm.field("csrf").unwrap();

    redis.stop();
    redis.set_args(&may_not_subscribe);
    redis.start_again();
    let key_count = redis.cli(&["DBSIZE"]);
    assert_ne!(key_count, "0", "the restart kept the sessions");

    // Sign out on A as soon as A's commands reach Redis again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = on_a
            .post(&oa, "/.portcullis/logout", &[("csrf", &csrf)])
            .await;
        if out.status == 303 {
            break;
        }
        assert_eq!(out.status, 503, "{}", out.body);
        assert!(Instant::now() < deadline, "sign-out on A still 503");
        tokio::time::sleep(POLL).await;
    }
    let signed_out = Instant::now();
    // B has not heard of it: it is not subscribed.
    assert_eq!(on_b.get(&format!("{ob}/still-cached")).await.status, 200);

    // B may subscribe again; from then on it must refuse the cookie, well
    // within a second of the sign-out.
    assert_eq!(redis.cli(&["ACL", "SETUSER", "gwb", "&*"]), "OK");
    loop {
        let s = on_b.get(&format!("{ob}/after")).await.status;
        if s == 303 {
            break;
        }
        assert!(s == 200 || s == 503, "unexpected {s}");
        assert!(
            signed_out.elapsed() < Duration::from_secs(1),
            "B still accepts the signed-out session ({s})"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "B refused the signed-out cookie {:?} after the sign-out",
        signed_out.elapsed()
    );
    // And A, of course.
    let mut replay = Browser::new();
    replay.jar = on_b.jar.clone();
    assert_eq!(replay.get(&format!("{oa}/after")).await.status, 303);
}

async fn until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_opened_without_redis_comes_up_by_itself_and_each_resubscribe_moves_the_epoch() {
    let redis = RedisServer::stopped();
    let settings = StoreSettings::Redis(RedisSettings {
        connect_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_millis(500),
        ..RedisSettings::standalone(redis.url(), "epoch:".to_owned())
    });
    let store = Store::open(&settings).unwrap();
    assert!(!store.is_up());
    assert!(!store.ready().await);
    assert_eq!(store.revocation_epoch(), 0);
    let started = Instant::now();
    assert!(matches!(
        store.hit("ip:x", Duration::from_secs(1)).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    redis.start_again();
    until("the store comes up", Duration::from_secs(5), || {
        store.is_up()
    })
    .await;
    assert!(store.ready().await);
    assert_eq!(store.revocation_epoch(), 1);
    assert_eq!(store.hit("ip:x", Duration::from_secs(60)).await, Ok(1));

    // A restart: down while Redis is away, up again with a new epoch.
    redis.stop();
    until("the loss is seen", Duration::from_secs(5), || {
        !store.is_up()
    })
    .await;
    assert!(!store.ready().await);
    assert_eq!(store.revocation_epoch(), 1);
    redis.start_again();
    until("the store comes back", Duration::from_secs(5), || {
        store.is_up()
    })
    .await;
    assert_eq!(store.revocation_epoch(), 2);
    assert!(store.ready().await);

    let memory = Store::open(&StoreSettings::Memory).unwrap();
    assert!(memory.is_up());
    assert!(memory.ready().await);
    assert_eq!(memory.revocation_epoch(), 0);
}

#[tokio::test]
async fn an_unusable_store_url_is_a_start_error_naming_store_url() {
    // Refused when the configuration is read (so `portcullis check` and a
    // SIGHUP reload refuse it too), naming the key and never the password.
    let text = r#"
[server]
listen = "127.0.0.1:1"
[session]
secret_env = "PORTCULLIS_SECRET"
[store]
backend = "redis"
url = "redis://:hunter2@127.0.0.1:99999/"
[[route]]
path = "/"
upstream = "demo"
"#;
    let err = portcullis::config::Config::from_toml_str(
        text,
        "test.toml",
        &[("PORTCULLIS_SECRET", support::gateway::SECRET)],
    )
    .expect_err("an unusable store.url");
    assert_eq!(
        err.to_string().trim_end(),
        "test.toml: store.url: is not a Redis URL the store can use (Redis URL did not parse); \
         e.g. redis://127.0.0.1:6379/0, rediss://redis.internal:6380/0 or redis+unix:///path/to/redis.sock"
    );
    assert!(!err.to_string().contains("hunter2"));
    // The store itself refuses it the same way (for callers that skip the
    // configuration).
    let settings = StoreSettings::Redis(RedisSettings {
        connect_timeout: Duration::from_millis(200),
        response_timeout: Duration::from_millis(200),
        ..RedisSettings::standalone("redis://:hunter2@127.0.0.1:99999/", "")
    });
    assert!(matches!(
        Store::open(&settings),
        Err(StoreError::Unavailable(_))
    ));
}
