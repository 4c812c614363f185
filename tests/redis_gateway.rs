//! The gateway on Redis when Redis misbehaves, two gateways sharing one
//! Redis, and what Redis and the logs hold after a sign-in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::browser::{Browser, Page};
use support::flow::{ask_link, mail_for};
use support::gateway::{GatewayProcess, TestGateway};
use support::redis::RedisServer;
use support::smtp::{Script, SmtpServer};
use support::upstream::Upstream;

fn config(
    up: &Upstream,
    smtp: &SmtpServer,
    redis: &RedisServer,
    prefix: &str,
    session: &str,
) -> String {
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
url = "{redis}"
key_prefix = "{prefix}"
connect_timeout = "500ms"
response_timeout = "200ms"

[[route]]
path = "/"
upstream = "{up}"
"#,
        up = up.url(),
        smtp = smtp.port(),
        redis = redis.url(),
    )
}

/// Asks on `ask_origin`, completes on `verify_origin`.
async fn sign_in_across(
    b: &mut Browser,
    smtp: &SmtpServer,
    ask_origin: &str,
    verify_origin: &str,
    email: &str,
    nth: usize,
) -> Page {
    assert_eq!(ask_link(b, ask_origin, email, "/").await.status, 200);
    let token = mail_for(smtp, email, nth).await.0;
    let confirm = b
        .get(&format!("{verify_origin}/.portcullis/verify?token={token}"))
        .await;
    let csrf = confirm.field("csrf").expect("button in the asking browser");
    b.post(
        verify_origin,
        "/.portcullis/verify",
        &[("token", &token), ("csrf", &csrf)],
    )
    .await
}

#[tokio::test]
async fn redis_paused_keeps_known_sessions_for_the_grace_then_503_and_recovers() {
    let redis = RedisServer::start();
    let up = Upstream::start().await;
    let smtp = SmtpServer::start(Script::Accept);
    let text = config(
        &up,
        &smtp,
        &redis,
        "p:",
        "revalidate = \"100ms\"\nstore_grace = \"1500ms\"",
    );
    let gw = TestGateway::start(&text).await;
    let o = gw.origin();
    let mut b = Browser::new();
    assert_eq!(
        sign_in_across(&mut b, &smtp, &o, &o, "ok@example.com", 1)
            .await
            .status,
        303
    );
    assert_eq!(b.get(&format!("{o}/a")).await.status, 200);

    redis.client_pause(Duration::from_secs(6));
    let paused_at = Instant::now();
    // Within the grace: the session this process validated keeps working.
    let p = b.get(&format!("{o}/b")).await;
    assert_eq!(p.status, 200, "{}", p.body);
    // Sign-in: 503 and nothing sent.
    let mut other = Browser::new();
    let csrf = other
        .get(&format!("{o}/.portcullis/login"))
        .await
        .field("csrf")
        .unwrap();
    let p = other
        .post(
            &o,
            "/.portcullis/login",
            &[("email", "new@example.com"), ("rd", "/"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, 503);
    assert_eq!(p.header("retry-after").as_deref(), Some("5"));
    // Past the grace: 503, never a redirect to sign-in, never a pass.
    while paused_at.elapsed() < Duration::from_millis(1700) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    let p = b.get(&format!("{o}/c")).await;
    assert_eq!(p.status, 503, "{}", p.body);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited {:?}",
        started.elapsed()
    );
    // A stranger gets 303 (no store needed to know they have no cookie).
    assert_eq!(Browser::new().get(&format!("{o}/c")).await.status, 303);

    redis.client_unpause();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if b.get(&format!("{o}/d")).await.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        smtp.received()
            .iter()
            .filter(|m| m.to.iter().any(|t| t == "new@example.com"))
            .count(),
        0
    );
    assert_eq!(
        sign_in_across(&mut other, &smtp, &o, &o, "new@example.com", 1)
            .await
            .status,
        303
    );
}

#[tokio::test]
async fn redis_stopped_then_restarted_recovers_without_restart() {
    let redis = RedisServer::start();
    let up = Upstream::start().await;
    let smtp = SmtpServer::start(Script::Accept);
    let text = config(
        &up,
        &smtp,
        &redis,
        "s:",
        "revalidate = \"100ms\"\nstore_grace = \"500ms\"",
    );
    let gw = TestGateway::start(&text).await;
    let o = gw.origin();
    let mut b = Browser::new();
    sign_in_across(&mut b, &smtp, &o, &o, "s@example.com", 1).await;
    redis.stop();
    let mut c = Browser::new();
    assert_eq!(
        ask_link(&mut c, &o, "down@example.com", "/").await.status,
        503
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(b.get(&format!("{o}/x")).await.status, 503);
    redis.start_again();
    // This Redis keeps nothing across a restart, so the old session is gone:
    // back to sign-in (not 503), and a new sign-in works on the same gateway.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = b.get(&format!("{o}/x")).await.status;
        if s == 303 {
            break;
        }
        assert!(Instant::now() < deadline, "still {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        sign_in_across(&mut c, &smtp, &o, &o, "down@example.com", 1)
            .await
            .status,
        303
    );
    assert_eq!(
        smtp.received()
            .iter()
            .filter(|m| m.to.iter().any(|t| t == "down@example.com"))
            .count(),
        1
    );
}

#[tokio::test]
async fn two_gateways_share_links_and_sign_out_within_a_second() {
    let redis = RedisServer::shared();
    let up = Upstream::start().await;
    let smtp = SmtpServer::start(Script::Accept);
    // Revalidation every 60 s: only the broadcast can end the session on A in time.
    let text = config(&up, &smtp, &redis, "two:", "revalidate = \"60s\"");
    let a = TestGateway::start(&text).await;
    let b_gw = TestGateway::start(&text).await;
    let (oa, ob) = (a.origin(), b_gw.origin());
    let mut br = Browser::new();
    // Asked on A, completed on B (cookies are per host, as in a browser).
    let done = sign_in_across(&mut br, &smtp, &oa, &ob, "shared@example.com", 1).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(br.get(&format!("{oa}/on-a")).await.status, 200);
    assert_eq!(br.get(&format!("{ob}/on-b")).await.status, 200);
    // Sign out on B; A must refuse the cookie within one second.
    let confirm = br.get(&format!("{ob}/.portcullis/logout")).await;
    let csrf = confirm.field("csrf").unwrap();
    let old = br.jar.clone();
    let out = br
        .post(&ob, "/.portcullis/logout", &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, 303);
    let signed_out = Instant::now();
    let mut replay = Browser::new();
    replay.jar = old;
    loop {
        if replay.get(&format!("{oa}/after")).await.status == 303 {
            break;
        }
        assert!(
            signed_out.elapsed() < Duration::from_secs(1),
            "A still accepts the session"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn tokens_codes_and_cookies_are_absent_from_logs_and_redis() {
    let redis = RedisServer::start();
    let up = Upstream::start().await;
    let smtp = SmtpServer::start(Script::Accept);
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(
        dir.path(),
        &config(&up, &smtp, &redis, "scan:", "").replace("RUST_LOG", ""),
    );
    let o = format!("http://127.0.0.1:{}", gw.port);
    let mut b = Browser::new();
    let email = "secret.person@example.com";
    assert_eq!(ask_link(&mut b, &o, email, "/").await.status, 200);
    let token = mail_for(&smtp, email, 1).await.0;
    let text = smtp.received()[0].text().unwrap();
    let code = text
        .split_whitespace()
        .find(|w| w.len() == 9 && w.as_bytes()[4] == b'-')
        .unwrap()
        .to_string();
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
    assert_eq!(done.status, 303);
    assert_eq!(b.get(&format!("{o}/app")).await.status, 200);

    let mut secrets: Vec<String> = vec![
        token.clone(),
        code.clone(),
        code.replace('-', ""),
        format!("verify?token={token}"),
    ];
    secrets.extend(b.jar.values().cloned());
    // The log: one line per request and no secret, no full address.
    let log = gw.log_text();
    assert!(log.contains("/.portcullis/verify"), "{log}");
    for s in &secrets {
        assert!(!log.contains(s.as_str()), "log holds a secret: {s}");
    }
    assert!(!log.contains(email), "log holds the address");
    // Redis: keys are hashes with a TTL; no value holds a token, code or cookie.
    let keys = redis.cli(&["--scan", "--pattern", "scan:*"]);
    let keys: Vec<&str> = keys.lines().filter(|l| !l.is_empty()).collect();
    assert!(keys.len() >= 3, "{keys:?}");
    for key in &keys {
        assert!(!key.contains(email) && !key.contains(&token), "{key}");
        let ttl: i64 = redis.cli(&["pttl", key]).trim().parse().unwrap();
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
        let kind = redis.cli(&["type", key]);
        let value = match kind.trim() {
            "string" => redis.cli(&["get", key]),
            "set" => redis.cli(&["smembers", key]),
            "zset" => redis.cli(&["zrange", key, "0", "-1"]),
            other => panic!("unexpected type {other} for {key}"),
        };
        for s in &secrets {
            assert!(!value.contains(s.as_str()), "{key} holds a secret");
        }
    }
}
