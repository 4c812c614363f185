//! Several upstreams on one route (`upstreams = [...]`), against real
//! servers that can be killed and brought back on the same port: round
//! robin spreads evenly, an address that refuses is skipped (the request
//! that met the refusal goes to another address, so clients see no error)
//! and stays out until its health check passes again; every address down
//! is the 502 page; `least_request` and `random` reach every address.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::client::http;
use support::faulty::{FaultyUpstream, Mode, HEALTH_PATH};
use support::gateway::TestGateway;

fn config(ups: &[&FaultyUpstream], extra: &str) -> String {
    let list: Vec<String> = ups.iter().map(|u| format!("{:?}", u.url())).collect();
    format!(
        r#"
[server]
listen = "127.0.0.1:$PORT"
public_url = "http://127.0.0.1:$PORT"

[session]
secret_env = "PORTCULLIS_SECRET"

[[route]]
name = "pool"
path = "/"
access = "public"
upstreams = [{}]
{extra}
"#,
        list.join(", ")
    )
}

async fn upstreams(n: usize) -> Vec<FaultyUpstream> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(FaultyUpstream::start(Mode::Healthy).await);
    }
    out
}

/// `n` GETs on `clients` keep-alive clients at once; the statuses.
async fn load(gw: &TestGateway, clients: usize, n: usize) -> Vec<u16> {
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (statuses, next, url) = (statuses.clone(), next.clone(), gw.url("/page"));
        tasks.push(tokio::spawn(async move {
            let client = http();
            while next.fetch_add(1, Ordering::SeqCst) < n {
                let status = match client.get(&url).send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                statuses.lock().unwrap().push(status);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let out = statuses.lock().unwrap().clone();
    out
}

#[tokio::test]
async fn round_robin_is_even_and_a_killed_upstream_costs_no_client_an_error() {
    let ups = upstreams(3).await;
    let refs: Vec<&FaultyUpstream> = ups.iter().collect();
    let gw = TestGateway::start(&config(
        &refs,
        &format!(
            "health_path = \"{HEALTH_PATH}\"\nhealth_interval = \"100ms\"\nhealthy_threshold = 2\nunhealthy_threshold = 3"
        ),
    ))
    .await;

    // Even: 300 requests on 6 clients, each address within 10% of 100.
    let statuses = load(&gw, 6, 300).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let counts: Vec<usize> = ups.iter().map(|u| u.requests()).collect();
    assert_eq!(counts.iter().sum::<usize>(), 300);
    for c in &counts {
        assert!((90..=110).contains(c), "not even: {counts:?}");
    }

    // Under load, the second address dies. Requests sent from then on all
    // succeed: the one that meets the refusal goes to another address.
    let running = Arc::new(AtomicBool::new(true));
    let after = Arc::new(Mutex::new(Vec::<u16>::new()));
    let killed = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (running, after, killed, url) = (
            running.clone(),
            after.clone(),
            killed.clone(),
            gw.url("/page"),
        );
        tasks.push(tokio::spawn(async move {
            let client = http();
            while running.load(Ordering::SeqCst) {
                let started_after_kill = killed.load(Ordering::SeqCst);
                let status = match client.get(&url).send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                if started_after_kill {
                    after.lock().unwrap().push(status);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    ups[1].stop_listening().await;
    killed.store(true, Ordering::SeqCst);
    let dead_at = ups[1].requests();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let while_dead: Vec<usize> = ups.iter().map(|u| u.requests()).collect();
    assert_eq!(while_dead[1], dead_at, "nothing reached the dead address");

    // Back on the same port: it gets requests again only after passing
    // two health checks in a row.
    let log_before = ups[1].log().len();
    ups[1].listen_again().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while ups[1].requests() == dead_at {
        assert!(Instant::now() < deadline, "the address never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.store(false, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let after = after.lock().unwrap().clone();
    assert!(after.len() > 50, "too little load: {}", after.len());
    assert!(
        after.iter().all(|s| *s == 200),
        "a client saw an error after the kill: {:?}",
        after.iter().filter(|s| **s != 200).collect::<Vec<_>>()
    );
    let log = ups[1].log();
    let since = &log[log_before..];
    let first_request = since.iter().position(|h| !h).unwrap();
    assert!(
        since[..first_request].iter().filter(|h| **h).count() >= 2,
        "a request reached the address before two passed health checks: {since:?}"
    );
}

#[tokio::test]
async fn without_active_checks_a_refused_address_is_out_for_the_backoff() {
    let ups = upstreams(2).await;
    let refs: Vec<&FaultyUpstream> = ups.iter().collect();
    let gw = TestGateway::start(&config(&refs, "health_backoff = \"1h\"")).await;
    ups[0].stop_listening().await;
    // Every request succeeds, and the dead address is tried at most once.
    let statuses = load(&gw, 1, 20).await;
    assert_eq!(statuses, vec![200; 20]);
    assert_eq!(ups[1].requests(), 20);
    ups[0].listen_again().await;
    let statuses = load(&gw, 1, 10).await;
    assert_eq!(statuses, vec![200; 10]);
    assert_eq!(ups[0].requests(), 0, "out for the whole back-off");
}

#[tokio::test]
async fn every_address_down_is_the_502_page() {
    let ups = upstreams(2).await;
    let refs: Vec<&FaultyUpstream> = ups.iter().collect();
    let gw = TestGateway::start(&config(&refs, "")).await;
    for u in &ups {
        u.stop_listening().await;
    }
    for _ in 0..3 {
        let r = http()
            .get(gw.url("/x"))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 502);
        assert!(r.text().await.unwrap().contains("502"));
    }
}

#[tokio::test]
async fn least_request_and_random_reach_every_address() {
    for lb in ["least_request", "random"] {
        let ups = upstreams(3).await;
        let refs: Vec<&FaultyUpstream> = ups.iter().collect();
        let gw = TestGateway::start(&config(&refs, &format!("lb = \"{lb}\""))).await;
        let statuses = load(&gw, 4, 150).await;
        assert!(statuses.iter().all(|s| *s == 200), "{lb}: {statuses:?}");
        let counts: Vec<usize> = ups.iter().map(|u| u.requests()).collect();
        assert_eq!(counts.iter().sum::<usize>(), 150, "{lb}");
        assert!(counts.iter().all(|c| *c >= 15), "{lb}: {counts:?}");
    }
}

#[test]
fn balancing_keys_are_checked() {
    let text = "[server]\nlisten = \"127.0.0.1:8080\"\n[[route]]\npath = \"/\"\nupstreams = [\"http://127.0.0.1:1\", \"https://127.0.0.1:2\"]\n";
    let e = portcullis::config::Config::from_toml_str(text, "t.toml", &[]).unwrap_err();
    assert_eq!(e.problems[0].key, "route[0].upstreams");
    assert_eq!(
        e.problems[0].message,
        "mixes http:// and https://; one route speaks one of them"
    );
    let text = "[server]\nlisten = \"127.0.0.1:8080\"\n[[route]]\npath = \"/\"\nupstreams = [\"http://127.0.0.1:1\", \"http://127.0.0.1:2\"]\nlb = \"fastest\"\n";
    let e = portcullis::config::Config::from_toml_str(text, "t.toml", &[]).unwrap_err();
    assert_eq!(e.problems[0].key, "route[0].lb");
    assert_eq!(
        e.problems[0].message,
        "\"fastest\" is not one of \"round_robin\", \"least_request\", \"random\""
    );
    // A route for forward-auth only has nothing to balance.
    let text = "[server]\nlisten = \"127.0.0.1:8080\"\n[[route]]\npath = \"/\"\nlb = \"random\"\n";
    let e = portcullis::config::Config::from_toml_str(text, "t.toml", &[]).unwrap_err();
    assert_eq!(e.problems[0].key, "route[0].lb");
    assert_eq!(
        e.problems[0].message,
        "is set but the route has no upstreams = [...] or https:// upstream"
    );
}

#[test]
fn check_prints_each_routes_upstream_settings() {
    let dir = tempfile::tempdir().unwrap();
    let ca = support::pki::Ca::new("Test CA");
    let ca_file = ca.write(dir.path(), "ca");
    let text = format!(
        r#"[server]
listen = "127.0.0.1:8080"
[[route]]
name = "plain"
path = "/"
upstream = "http://127.0.0.1:3000"
[[route]]
name = "grafana"
path = "/grafana"
upstreams = ["https://10.0.0.5:3000", "https://10.0.0.6:3000"]
lb = "least_request"
tls_ca_file = {:?}
tls_server_name = "grafana.internal"
health_path = "/api/health"
strip_prefix = true
upstream_host = "grafana.internal"
set_request_headers = {{ "X-Tenant" = "acme" }}
remove_request_headers = ["X-Debug"]
set_response_headers = {{ "X-Frame-Options" = "DENY" }}
"#,
        ca_file.display().to_string()
    );
    let file = dir.path().join("gateway.toml");
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new(support::gateway::binary())
        .arg("--config")
        .arg(&file)
        .arg("check")
        .env("PORTCULLIS_SECRET", support::gateway::SECRET)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    let grafana = lines
        .iter()
        .position(|l| l.starts_with("grafana "))
        .unwrap();
    assert!(
        lines[grafana].contains("https://10.0.0.5:3000,https://10.0.0.6:3000"),
        "{stdout}"
    );
    assert_eq!(
        lines[grafana + 1],
        "    grafana: lb least_request, tls_ca_file, server name grafana.internal, health /api/health every 10s (up after 2, down after 2); strip_prefix, Host: grafana.internal, set x-tenant, remove x-debug, answer sets x-frame-options"
    );
    // A route with every option at its default has no such line.
    let plain = lines.iter().position(|l| l.starts_with("plain ")).unwrap();
    assert!(!lines[plain + 1].starts_with("    plain:"), "{stdout}");
}
