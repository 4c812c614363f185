//! The Redis-down rules through the gateway on a Sentinel set: two
//! gateways, the master SIGKILLed; while no master is reachable sign-in
//! answers 503 and sends nothing, sessions the gateways validated keep
//! working for `store_grace`; after the promotion sign-in works again by
//! itself, the sessions made before are still valid on both gateways, and
//! a sign-out on one reaches the other within a second.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::browser::Browser;
use support::flow::{ask_link, mail_for};
use support::gateway::TestGateway;
use support::redis_ha::SentinelSet;
use support::smtp::{Script, SmtpServer};
use support::upstream::Upstream;

fn config(up: &Upstream, smtp: &SmtpServer, set: &SentinelSet) -> String {
    let urls: Vec<String> = set
        .sentinel_urls()
        .iter()
        .map(|u| format!("{u:?}"))
        .collect();
    format!(
        r#"
[server]
listen = "127.0.0.1:$PORT"
public_url = "http://127.0.0.1:$PORT"

[session]
secret_env = "PORTCULLIS_SECRET"
revalidate = "100ms"
store_grace = "20s"

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
mode = "sentinel"
urls = [{urls}]
sentinel_master = "mymaster"
connect_timeout = "300ms"
response_timeout = "300ms"

[[route]]
path = "/"
upstream = "{up}"
"#,
        up = up.url(),
        smtp = smtp.port(),
        urls = urls.join(", "),
    )
}

async fn sign_in(b: &mut Browser, smtp: &SmtpServer, o: &str, email: &str) -> u16 {
    let asked = ask_link(b, o, email, "/").await;
    assert_eq!(asked.status, 200, "asking {o} for {email}: {}", asked.body);
    let token = mail_for(smtp, email, 1).await.0;
    let confirm = b
        .get(&format!("{o}/.portcullis/verify?token={token}"))
        .await;
    let csrf = confirm.field("csrf").expect("confirm button");
    b.post(
        o,
        "/.portcullis/verify",
        &[("token", &token), ("csrf", &csrf)],
    )
    .await
    .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_master_killed_sign_in_503_sessions_keep_working_then_all_recovers() {
    // The gateways' logs go to the test's output, shown if it fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("portcullis=debug")
        .with_ansi(false)
        .with_test_writer()
        .try_init();
    let set = SentinelSet::start();
    let up = Upstream::start().await;
    let smtp = SmtpServer::start(Script::Accept);
    let text = config(&up, &smtp, &set);
    let a = TestGateway::start(&text).await;
    let b = TestGateway::start(&text).await;
    let (oa, ob) = (a.origin(), b.origin());
    let mut alice = Browser::new();
    assert_eq!(
        sign_in(&mut alice, &smtp, &oa, "alice@example.com").await,
        303
    );
    assert_eq!(alice.get(&format!("{oa}/1")).await.status, 200);
    assert_eq!(alice.get(&format!("{ob}/1")).await.status, 200);

    let master = set.master().unwrap();
    let old = master.port;
    master.kill();
    // No master: sign-in is 503 and sends nothing.
    let mut bob = Browser::new();
    let asked = ask_link(&mut bob, &oa, "bob@example.com", "/").await;
    assert_eq!(asked.status, 503, "{}", asked.body);
    // A session both gateways validated keeps working meanwhile.
    assert_eq!(alice.get(&format!("{oa}/2")).await.status, 200);
    assert_eq!(alice.get(&format!("{ob}/2")).await.status, 200);

    set.wait_new_master(old);
    master.start();
    // Sign-in works again by itself, on both gateways (each finds the new
    // master on its own).
    for (o, email) in [(&oa, "carol@example.com"), (&ob, "erin@example.com")] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut someone = Browser::new();
            let asked = ask_link(&mut someone, o, email, "/").await;
            if asked.status == 200 {
                break;
            }
            assert_eq!(asked.status, 503, "{}", asked.body);
            assert!(
                Instant::now() < deadline,
                "sign-in on {o} did not come back"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(smtp
        .received()
        .iter()
        .all(|m| !m.to.iter().any(|t| t == "bob@example.com")));
    let mut dave = Browser::new();
    assert_eq!(
        sign_in(&mut dave, &smtp, &ob, "dave@example.com").await,
        303
    );
    assert_eq!(dave.get(&format!("{oa}/3")).await.status, 200);
    // Alice's session, made before the failover, is in the new master.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(alice.get(&format!("{oa}/3")).await.status, 200);
    assert_eq!(alice.get(&format!("{ob}/3")).await.status, 200);

    // A sign-out on A reaches B within a second (B has the session cached).
    let mut old = dave.clone();
    assert_eq!(old.get(&format!("{ob}/4")).await.status, 200);
    let csrf = dave
        .get(&format!("{oa}/.portcullis/logout"))
        .await
        .field("csrf")
        .unwrap();
    let out = dave
        .post(&oa, "/.portcullis/logout", &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, 303);
    let ended = Instant::now();
    loop {
        let s = old.get(&format!("{ob}/4")).await.status;
        if s == 303 {
            break;
        }
        assert_eq!(s, 200);
        assert!(
            ended.elapsed() < Duration::from_secs(1),
            "revocation took over 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
