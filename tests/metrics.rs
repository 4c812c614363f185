//! `/metrics` on the admin listener: every family is driven by real
//! requests (sign-ins through a real SMTP server, a real Redis that is
//! stopped part way, forward-auth asked as a proxy would) and then read
//! from a scrape, value by value. The reload gauges are driven through the
//! real binary with SIGHUP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::app::App;
use support::browser::Browser;
use support::flow::{ask_link, env, get_with, mail_for, page_csrf, sign_in, Env, Opts};
use support::gateway::{free_port, GatewayProcess};
use support::redis::RedisServer;
use support::smtp::{wait_until, Script};

/// Serves `app`'s admin answers on a port of its own, as the binary does.
async fn admin_listener(app: Arc<App>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(portcullis::transport::admin::serve(
        listener,
        move |method, path: String| {
            let app = Arc::clone(&app);
            async move { app.admin(method, &path).await }
        },
    ));
    port
}

/// One scrape: the content type, and each sample as `name{labels}` → value.
async fn scrape(port: u16) -> (String, BTreeMap<String, String>) {
    let resp = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
    (ctype, samples(&resp.text().await.unwrap()))
}

fn samples(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn value(m: &BTreeMap<String, String>, key: &str) -> String {
    m.get(key)
        .cloned()
        .unwrap_or_else(|| panic!("no sample {key} in {m:#?}"))
}

/// The sum of every sample whose key starts with `prefix`.
fn sum(m: &BTreeMap<String, String>, prefix: &str) -> u64 {
    m.iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v.parse::<u64>().unwrap())
        .sum()
}

const ADMIN: &str = "[admin]\nlisten = \"127.0.0.1:0\"\n";

#[tokio::test]
async fn every_family_counts_what_happened() {
    let redis = Arc::new(RedisServer::start());
    let e = env(Opts {
        server: "trusted_proxies = [\"127.0.0.1/32\"]",
        login: "resend_delay = \"1h\"",
        redis: Some(Arc::clone(&redis)),
        routes: ADMIN,
        ..Opts::default()
    })
    .await;
    let admin = admin_listener(Arc::clone(&e.gw.app)).await;
    let o = &e.origin;
    let host = o.trim_start_matches("http://");

    // The proxy: signed out, signed in, and outside the allow list.
    let mut b = Browser::new();
    assert_eq!(b.get(&format!("{o}/x")).await.status, 303);
    assert_eq!(
        sign_in(&e, &mut b, "ann@example.com", "/", 1).await.status,
        303
    );
    assert_eq!(b.get(&format!("{o}/x")).await.status, 200);
    assert_eq!(b.get(&format!("{o}/admin")).await.status, 403);

    // Sign-in requests held back: the resend delay, then an address that
    // may not sign in.
    let again = ask_link(&mut Browser::new(), o, "ann@example.com", "/").await;
    assert_eq!(again.status, 200);
    let other = ask_link(&mut Browser::new(), o, "eve@elsewhere.org", "/").await;
    assert_eq!(other.status, 200);

    // A link that is not known.
    let unknown = b
        .get(&format!("{o}/.portcullis/verify?token={}", "A".repeat(43)))
        .await;
    assert_eq!(unknown.status, 410);

    // The code: once wrong, then right.
    let mut c = Browser::new();
    assert_eq!(ask_link(&mut c, o, "cy@example.com", "/").await.status, 200);
    let (_, code) = mail_for(&e.smtp, "cy@example.com", 1).await;
    let csrf = page_csrf(&mut c, o).await;
    let wrong = c
        .post(
            o,
            "/.portcullis/code",
            &[("code", "000000"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    let right = c
        .post(o, "/.portcullis/code", &[("code", &code), ("csrf", &csrf)])
        .await;
    assert_eq!(right.status, 303, "{}", right.body);

    // Forward-auth, both shapes, each decision.
    for (who, path, want) in [
        (None, "/x", 401),
        (Some(b.jar.clone()), "/x", 200),
        (Some(c.jar.clone()), "/admin", 403),
    ] {
        let url = format!("http://{host}{path}");
        let mut asker = Browser::new();
        if let Some(jar) = who.clone() {
            asker.jar = jar;
        }
        let p = get_with(
            &mut asker,
            &format!("{o}/.portcullis/auth"),
            &[("x-original-url", &url), ("x-original-method", "GET")],
        )
        .await;
        assert_eq!(p.status, want, "auth {path}");
        let mut asker = Browser::new();
        if let Some(jar) = who {
            asker.jar = jar;
        }
        let p = get_with(
            &mut asker,
            &format!("{o}/.portcullis/forward-auth"),
            &[
                ("x-forwarded-proto", "http"),
                ("x-forwarded-host", host),
                ("x-forwarded-uri", path),
                ("x-forwarded-method", "GET"),
            ],
        )
        .await;
        // A browser navigation gets the redirect form.
        assert_eq!(
            p.status,
            if want == 401 { 302 } else { want },
            "forward-auth {path}"
        );
    }

    // Sign-out.
    let confirm = b.get(&format!("{o}/.portcullis/logout")).await;
    let csrf = confirm.field("csrf").unwrap();
    let out = b
        .post(o, "/.portcullis/logout", &[("csrf", &csrf), ("rd", "/")])
        .await;
    assert_eq!(out.status, 303);

    // Every mail delivered before the scrape.
    e.smtp.wait_for(2, Duration::from_secs(10)).await;
    let (ctype, m) = scrape(admin).await;
    assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");

    for (decision, endpoint, n) in [
        ("allow", "proxy", "1"),
        ("unauthenticated", "proxy", "1"),
        ("forbidden", "proxy", "1"),
        ("allow", "auth", "1"),
        ("unauthenticated", "auth", "1"),
        ("forbidden", "auth", "1"),
        ("allow", "forward_auth", "1"),
        ("unauthenticated", "forward_auth", "1"),
        ("forbidden", "forward_auth", "1"),
    ] {
        let key =
            format!("portcullis_authz_total{{endpoint=\"{endpoint}\",decision=\"{decision}\"}}");
        assert_eq!(value(&m, &key), n, "{key}");
    }
    for (method, outcome, n) in [
        ("link", "success", "1"),
        ("link", "failure", "1"),
        ("code", "success", "1"),
        ("code", "failure", "1"),
    ] {
        let key = format!("portcullis_signin_total{{method=\"{method}\",outcome=\"{outcome}\"}}");
        assert_eq!(value(&m, &key), n, "{key}");
    }
    for (outcome, n) in [("queued", "2"), ("rate_limited", "1"), ("not_allowed", "1")] {
        let key = format!("portcullis_signin_requests_total{{outcome=\"{outcome}\"}}");
        assert_eq!(value(&m, &key), n, "{key}");
    }
    assert_eq!(value(&m, "portcullis_mail_total{result=\"sent\"}"), "2");
    assert_eq!(value(&m, "portcullis_sessions_revoked_total"), "1");
    assert_eq!(value(&m, "portcullis_store_up"), "1");
    assert_eq!(sum(&m, "portcullis_store_errors_total"), 0);
    assert_eq!(value(&m, "portcullis_requests_in_flight"), "0");
    // The 403s: the proxy's, auth's and forward-auth's.
    assert_eq!(
        value(&m, "portcullis_requests_total{code=\"403\",method=\"GET\"}"),
        "3"
    );
    assert_eq!(
        value(&m, "portcullis_requests_total{code=\"410\",method=\"GET\"}"),
        "1"
    );
    assert_eq!(
        value(
            &m,
            "portcullis_requests_total{code=\"303\",method=\"POST\"}"
        ),
        "3"
    );
    // The histogram holds every request once.
    for method in ["GET", "POST"] {
        let per_method: u64 = m
            .iter()
            .filter(|(k, _)| {
                k.starts_with("portcullis_requests_total{")
                    && k.ends_with(&format!("method=\"{method}\"}}"))
            })
            .map(|(_, v)| v.parse::<u64>().unwrap())
            .sum();
        let count = value(
            &m,
            &format!("portcullis_request_duration_seconds_count{{method=\"{method}\"}}"),
        );
        let inf = value(
            &m,
            &format!(
                "portcullis_request_duration_seconds_bucket{{method=\"{method}\",le=\"+Inf\"}}"
            ),
        );
        assert_eq!(count, per_method.to_string(), "{method}");
        assert_eq!(inf, count, "{method}");
    }
    assert_eq!(
        value(
            &m,
            &format!(
                "portcullis_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        "1"
    );

    // Redis goes away: sign-in answers 503, the failed operation is
    // counted, and the store is down.
    redis.stop();
    let mut d = Browser::new();
    let csrf = page_csrf(&mut d, o).await;
    let refused = d
        .post(
            o,
            "/.portcullis/login",
            &[("email", "dan@example.com"), ("rd", "/"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(refused.status, 503);
    let (_, m) = scrape(admin).await;
    assert_eq!(value(&m, "portcullis_store_up"), "0");
    assert_eq!(
        value(&m, "portcullis_store_errors_total{op=\"admit_sign_in\"}"),
        "1"
    );
    assert_eq!(
        value(
            &m,
            "portcullis_requests_total{code=\"503\",method=\"POST\"}"
        ),
        "1"
    );
}

#[tokio::test]
async fn mail_that_is_retried_failed_or_dropped_is_counted() {
    // The first attempt meets a server that never greets (a tarpit) and
    // times out; the queue holds one message, so a second request finds it
    // full; the retry then meets a server that refuses for good.
    let e: Env = env(Opts {
        mail: "queue_capacity = 1",
        smtp_timeout: Some("300ms"),
        script: Some(Script::AlwaysReject),
        tarpit: true,
        routes: ADMIN,
        ..Opts::default()
    })
    .await;
    let admin = admin_listener(Arc::clone(&e.gw.app)).await;
    let o = &e.origin;
    assert_eq!(
        ask_link(&mut Browser::new(), o, "a@example.com", "/")
            .await
            .status,
        200
    );
    let smtp = e.smtp.clone();
    wait_until(Duration::from_secs(5), "a connection held", move || {
        smtp.connections() >= 1
    })
    .await;
    assert_eq!(
        ask_link(&mut Browser::new(), o, "b@example.com", "/")
            .await
            .status,
        200
    );
    e.smtp.set_tarpit(false);

    let deadline = Instant::now() + Duration::from_secs(10);
    let m = loop {
        let (_, m) = scrape(admin).await;
        if value(&m, "portcullis_mail_total{result=\"failed\"}") == "1" {
            break m;
        }
        assert!(Instant::now() < deadline, "no failure counted: {m:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(value(&m, "portcullis_mail_total{result=\"retried\"}"), "1");
    assert_eq!(value(&m, "portcullis_mail_total{result=\"dropped\"}"), "1");
    assert_eq!(value(&m, "portcullis_mail_total{result=\"sent\"}"), "0");
    assert_eq!(
        value(&m, "portcullis_signin_requests_total{outcome=\"queued\"}"),
        "1"
    );
}

#[tokio::test]
async fn metrics_off_serves_no_metrics_and_counts_no_requests() {
    let e = env(Opts {
        routes: "[admin]\nlisten = \"127.0.0.1:0\"\nmetrics = false\n",
        ..Opts::default()
    })
    .await;
    let admin = admin_listener(Arc::clone(&e.gw.app)).await;
    let resp = reqwest::get(format!("http://127.0.0.1:{admin}/metrics"))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    // The probes stay.
    let ping = reqwest::get(format!("http://127.0.0.1:{admin}/ping"))
        .await
        .unwrap();
    assert_eq!(ping.status().as_u16(), 200);
}

/// The reload gauges, through the real binary and SIGHUP.
#[test]
fn reloads_are_reported_with_their_time() {
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:$PORT\"\n[session]\nsecret_env = \"PORTCULLIS_SECRET\"\n\
         [mail]\ntransport = \"console\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\
         [[route]]\npath = \"/\"\nupstream = \"demo\"\n"
    );
    let gw = GatewayProcess::start(dir.path(), &text);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let get = |key: &str| -> String {
        let (_, m) = rt.block_on(scrape(admin));
        value(&m, key)
    };
    let started_at: u64 = get("portcullis_config_last_reload_success_timestamp_seconds")
        .parse()
        .unwrap();
    assert!(started_at > 1_700_000_000, "{started_at}");
    assert_eq!(get("portcullis_config_last_reload_success"), "1");

    let config = dir.path().join("gateway.toml");
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, "[server\n").unwrap();
    gw.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while get("portcullis_config_last_reload_success") != "0" {
        assert!(
            Instant::now() < deadline,
            "the failed reload was not reported"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        get("portcullis_config_last_reload_success_timestamp_seconds"),
        started_at.to_string(),
        "a failed reload keeps the time of the last good one"
    );

    std::fs::write(&config, good).unwrap();
    gw.signal("HUP");
    while get("portcullis_config_last_reload_success") != "1" {
        assert!(
            Instant::now() < deadline,
            "the good reload was not reported"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let reloaded_at: u64 = get("portcullis_config_last_reload_success_timestamp_seconds")
        .parse()
        .unwrap();
    assert!(reloaded_at >= started_at);
    assert_eq!(
        get(&format!(
            "portcullis_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        "1"
    );
}
