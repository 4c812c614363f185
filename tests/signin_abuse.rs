//! Sign-in abuse (issue 16, items 2 and 5, and plus-addressing): a flood of
//! sign-in requests stores nothing over a limit and stays within the caps;
//! decoys answer exactly like real attempts on the later endpoints; send
//! limits count the address without its `+tag`. Each test body runs on the
//! memory store and on a private redis-server, against a real SMTP server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use portcullis::crypto;
use support::browser::{Browser, Page};
use support::flow::{ask_link, env, mail_for, page_csrf, sign_in, Env, Opts};
use support::redis::RedisServer;

const T: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug)]
enum Backend {
    Memory,
    Redis,
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Memory).await; })*
        }
        mod redis {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Redis).await; })*
        }
    };
}

both!(
    over_the_ip_rate_nothing_is_stored,
    pending_cap_per_ip_holds,
    pending_cap_in_total_holds,
    a_long_rd_is_stored_as_root,
    ipv6_clients_share_one_bucket_per_64,
    decoys_answer_like_real_attempts,
    plus_tags_share_the_address_bucket,
);

async fn env_for(backend: Backend, server: &'static str, login: &'static str) -> Env {
    env(Opts {
        server,
        login,
        redis: matches!(backend, Backend::Redis).then(RedisServer::shared),
        ..Opts::default()
    })
    .await
}

async fn keys(e: &Env) -> usize {
    e.gw.app.store().key_count().await.unwrap()
}

/// Waits until every queued mail has reached the sink; returns how many.
async fn mails_delivered(e: &Env) -> usize {
    let queued = e.gw.app.mailer().stats().queued as usize;
    e.smtp.wait_for(queued, T).await;
    assert_eq!(e.smtp.received().len(), queued);
    queued
}

/// A sign-in POST from `ip` (the gateway trusts 127.0.0.0/8 to say so),
/// from a copy of `b` (a new verifier each time, like a flood without
/// cookies).
async fn post_from(e: &Env, b: &Browser, csrf: &str, email: &str, ip: &str) -> Page {
    b.clone()
        .post_with(
            &e.origin,
            "/.portcullis/login",
            &[("email", email), ("rd", "/"), ("csrf", csrf)],
            &[("origin", &e.origin), ("x-forwarded-for", ip)],
        )
        .await
}

const TRUST_LOCAL: &str = "trusted_proxies = [\"127.0.0.0/8\"]";

async fn over_the_ip_rate_nothing_is_stored(backend: Backend) {
    let e = env_for(backend, "", "ip_rate = \"3/15m\"").await;
    let mut b = Browser::new();
    let csrf = page_csrf(&mut b, &e.origin).await;
    let post = |b: &mut Browser, who: String| {
        let (mut b, csrf, origin) = (b.clone(), csrf.clone(), e.origin.clone());
        async move {
            let page = b
                .post(
                    &origin,
                    "/.portcullis/login",
                    &[("email", &who), ("rd", "/"), ("csrf", &csrf)],
                )
                .await;
            (who, page)
        }
    };
    let mut answers = Vec::new();
    for i in 0..3 {
        answers.push(post(&mut b, format!("in{i}@example.com")).await);
    }
    let before = keys(&e).await;
    assert!(before > 0);
    // 40 more, allowed and unknown, new and repeated: nothing more stored.
    for i in 0..40 {
        let who = match i % 4 {
            0 => format!("more{i}@example.com"),
            1 => format!("out{i}@evil.example"),
            2 => "in0@example.com".to_string(),
            _ => format!("p+{i}@example.com"),
        };
        answers.push(post(&mut b, who).await);
    }
    assert_eq!(keys(&e).await, before);
    // The same page for all, but for the address it repeats.
    let first = answers[0].1.body_without_address(&answers[0].0);
    for (who, p) in &answers {
        assert_eq!(p.status, 200);
        assert_eq!(p.body_without_address(who), first, "{who}");
    }
    assert_eq!(mails_delivered(&e).await, 3);
}

async fn pending_cap_per_ip_holds(backend: Backend) {
    let e = env_for(backend, TRUST_LOCAL, "max_pending_per_ip = 2").await;
    let mut b = Browser::new();
    let csrf = page_csrf(&mut b, &e.origin).await;
    let mut answers = Vec::new();
    for i in 0..2 {
        let who = format!("cap{i}@example.com");
        let p = post_from(&e, &b, &csrf, &who, "198.51.100.7").await;
        answers.push((who, p));
    }
    let at_cap = keys(&e).await;
    for i in 2..12 {
        let who = format!("cap{i}@example.com");
        let p = post_from(&e, &b, &csrf, &who, "198.51.100.7").await;
        answers.push((who, p));
    }
    assert_eq!(keys(&e).await, at_cap, "stored over the per-IP cap");
    // The same page for all, but for the address it repeats.
    let first = answers[0].1.body_without_address(&answers[0].0);
    for (who, p) in &answers {
        assert_eq!(
            (p.status, p.body_without_address(who)),
            (200, first.clone())
        );
    }
    // Another client still gets its sign-in.
    post_from(&e, &b, &csrf, "other@example.com", "198.51.100.8").await;
    assert_eq!(mails_delivered(&e).await, 3);
    assert_eq!(e.mails_to("cap0@example.com"), 1);
    assert_eq!(e.mails_to("cap1@example.com"), 1);
    assert_eq!(e.mails_to("other@example.com"), 1);
}

async fn pending_cap_in_total_holds(backend: Backend) {
    let e = env_for(backend, TRUST_LOCAL, "max_pending = 3").await;
    let mut b = Browser::new();
    let csrf = page_csrf(&mut b, &e.origin).await;
    for i in 0..3 {
        let who = format!("t{i}@example.com");
        post_from(&e, &b, &csrf, &who, &format!("192.0.2.{i}")).await;
    }
    let at_cap = keys(&e).await;
    // Each from a new client: not even a rate counter is created.
    for i in 3..23 {
        let who = format!("t{i}@example.com");
        let p = post_from(&e, &b, &csrf, &who, &format!("192.0.2.{i}")).await;
        assert_eq!(p.status, 200);
    }
    assert_eq!(keys(&e).await, at_cap, "stored over the total cap");
    assert_eq!(mails_delivered(&e).await, 3);
}

async fn a_long_rd_is_stored_as_root(backend: Backend) {
    let e = env_for(backend, "", "").await;
    let max = portcullis::redirect::MAX_LEN;
    let longest = format!("/{}", "a".repeat(max - 1));
    let too_long = format!("/{}", "a".repeat(max));
    let mut b = Browser::new();
    let done = sign_in(&e, &mut b, "long@example.com", &too_long, 1).await;
    assert_eq!((done.status, done.location().as_str()), (303, "/"));
    let mut b = Browser::new();
    let done = sign_in(&e, &mut b, "long@example.com", &longest, 2).await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location(), longest);
}

async fn ipv6_clients_share_one_bucket_per_64(backend: Backend) {
    // ip_rate 2 also makes the failure limit max(4 x 2, 20) = 20.
    let e = env_for(backend, TRUST_LOCAL, "ip_rate = \"2/15m\"").await;
    let mut b = Browser::new();
    let csrf = page_csrf(&mut b, &e.origin).await;
    for (i, ip) in [
        "2001:db8:1:2::1",
        "2001:db8:1:2:ffff:ffff:ffff:fffe",
        "2001:db8:1:2:abcd::9",
        "2001:db8:1:3::1",
    ]
    .iter()
    .enumerate()
    {
        let who = format!("v6-{i}@example.com");
        assert_eq!(post_from(&e, &b, &csrf, &who, ip).await.status, 200);
    }
    assert_eq!(mails_delivered(&e).await, 3);
    assert_eq!(e.mails_to("v6-0@example.com"), 1);
    assert_eq!(e.mails_to("v6-1@example.com"), 1);
    assert_eq!(e.mails_to("v6-2@example.com"), 0, "third from one /64");
    assert_eq!(e.mails_to("v6-3@example.com"), 1, "another /64");

    // Failed link checks: one /64 shares one failure count.
    let c = support::client::http();
    let verify = |ip: &'static str| {
        let (c, url) = (
            c.clone(),
            e.url(&format!(
                "/.portcullis/verify?token={}",
                crypto::random_token()
            )),
        );
        async move {
            c.get(url)
                .header("x-forwarded-for", ip)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let mut statuses = Vec::new();
    for i in 0..20 {
        let ip = if i % 2 == 0 {
            "2001:db8:5:6::1"
        } else {
            "2001:db8:5:6::2"
        };
        statuses.push(verify(ip).await);
    }
    assert_eq!(statuses, vec![410; 20]);
    assert_eq!(verify("2001:db8:5:6:7::3").await, 429, "same /64");
    assert_eq!(verify("2001:db8:5:7::1").await, 410, "another /64");
}

/// A page's body without its CSRF field value (each browser has its own).
fn without_csrf(p: &Page) -> String {
    match p.field("csrf") {
        Some(v) => p.body.replace(&v, ""),
        None => p.body.clone(),
    }
}

/// Asks for a link for `who` in a new browser and sends `code_attempts + 1`
/// wrong codes, then the verify endpoints with a token it does not have:
/// every answer as (status, body without CSRF).
async fn wrong_code_sequence(e: &Env, who: &str, wrong: &str) -> Vec<(u16, String)> {
    let mut b = Browser::new();
    let waiting = ask_link(&mut b, &e.origin, who, "/").await;
    assert_eq!(waiting.status, 200);
    let csrf = waiting.field("csrf").unwrap();
    // The first answer repeats the address typed: made one placeholder.
    let first = waiting.body_without_address(who).replace(&csrf, "");
    let mut out = vec![(waiting.status, first)];
    for _ in 0..6 {
        let p = b
            .post(
                &e.origin,
                "/.portcullis/code",
                &[("code", wrong), ("csrf", &csrf)],
            )
            .await;
        out.push((p.status, without_csrf(&p)));
    }
    let token = crypto::random_token();
    let got = b
        .get(&e.url(&format!("/.portcullis/verify?token={token}")))
        .await;
    out.push((got.status, without_csrf(&got)));
    let posted = b
        .post(
            &e.origin,
            "/.portcullis/verify",
            &[("token", &token), ("csrf", &csrf)],
        )
        .await;
    out.push((posted.status, without_csrf(&posted)));
    out
}

async fn decoys_answer_like_real_attempts(backend: Backend) {
    let e = env_for(backend, "", "address_rate = \"1/15m\"").await;
    // Used up its address rate: its next request is a decoy too.
    let mut someone = Browser::new();
    ask_link(&mut someone, &e.origin, "limited@example.com", "/").await;
    let (_, code) = mail_for(&e.smtp, "limited@example.com", 1).await;
    let wrong = if code.starts_with('A') {
        "BBBB-BBBB"
    } else {
        "AAAA-AAAA"
    };
    // Only the allowed address's code is known; a wrong one for it is
    // wrong for the decoys too (their codes are from tokens nobody has,
    // and a right one could not sign in: a decoy has no address).
    let real = wrong_code_sequence(&e, "allowed@example.com", wrong).await;
    let statuses: Vec<u16> = real.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        statuses,
        vec![200, 400, 400, 400, 400, 429, 410, 410, 410],
        "the real attempt's sequence"
    );
    assert!(real[1].1.contains("4 tries left"), "{}", real[1].1);
    assert!(real[4].1.contains("1 try left"), "{}", real[4].1);
    for who in [
        "unknown.person@evil.example",
        "limited@example.com",
        "nobody@blocked.example",
    ] {
        let decoy = wrong_code_sequence(&e, who, wrong).await;
        for (i, (r, d)) in real.iter().zip(&decoy).enumerate() {
            assert_eq!(r.0, d.0, "{who}: status of step {i}");
            assert_eq!(r.1, d.1, "{who}: body of step {i}");
        }
    }
    // Mail went only to the allowed address and the first limited request.
    assert_eq!(mails_delivered(&e).await, 2);
    assert_eq!(e.mails_to("allowed@example.com"), 1);
    assert_eq!(e.mails_to("unknown.person@evil.example"), 0);
}

async fn plus_tags_share_the_address_bucket(backend: Backend) {
    let e = env_for(backend, "", "address_rate = \"2/15m\"").await;
    let mut b = Browser::new();
    for i in 1..=6 {
        let p = ask_link(&mut b, &e.origin, &format!("victim+{i}@example.com"), "/").await;
        assert_eq!(p.status, 200);
    }
    let p = ask_link(&mut b, &e.origin, "victim@example.com", "/").await;
    assert_eq!(p.status, 200);
    assert_eq!(mails_delivered(&e).await, 2, "address_rate is 2");
    // The mail goes to the address typed, tag and all.
    assert_eq!(e.mails_to("victim+1@example.com"), 1);
    assert_eq!(e.mails_to("victim+2@example.com"), 1);
    assert_eq!(e.mails_to("victim@example.com"), 0);

    // The resend delay counts the same form.
    let e = env_for(backend, "", "resend_delay = \"60s\"").await;
    let mut b = Browser::new();
    for who in [
        "friend+a@example.com",
        "friend+b@example.com",
        "friend@example.com",
    ] {
        ask_link(&mut b, &e.origin, who, "/").await;
    }
    assert_eq!(mails_delivered(&e).await, 1);
    assert_eq!(e.mails_to("friend+a@example.com"), 1);
}
