//! Machine tokens (`[[token]]`, `Authorization: Bearer`) against a real
//! gateway, a real Redis and a real upstream: the exact identity headers
//! on a route whose `allow_groups` names the token's group, 401 for a
//! wrong or expired secret (audited by name, never the secret), 403 on
//! routes it may not reach, refused on the sign-in endpoints, no session
//! ever stored, 429 once a client's failure budget is spent, and the
//! same answers through forward-auth. `portcullis token new` prints a
//! secret whose hash is in the lines it prints, and those lines work.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use support::flow::{env, Env, Opts};
use support::redis::RedisServer;

const SECRET: &str = "ci-secret-0123456789-abcdefghijklmnopqrstuv";
const OLD_SECRET: &str = "old-secret-0123456789-abcdefghijklmnopqrstu";

fn hash(secret: &str) -> String {
    portcullis::crypto::hex(&portcullis::token::digest(secret.as_bytes()))
}

/// `/api` for group ci (the token's), `/ops` for group ops (people only),
/// `/` for anyone signed in (the default routes), two tokens (one
/// expired) and the audit file.
fn extra(audit: &std::path::Path) -> String {
    format!(
        "[[route]]\npath = \"/api\"\nupstream = \"{{up}}\"\nallow_groups = [\"ci\"]\n\n\
         [[route]]\npath = \"/ops\"\nupstream = \"{{up}}\"\nallow_groups = [\"ops\"]\n\n\
         [groups]\nops = [\"boss@example.com\"]\n\n\
         [[token]]\nname = \"deploy\"\nsha256 = \"{}\"\ngroups = [\"ci\"]\n\n\
         [[token]]\nname = \"old\"\nsha256 = \"{}\"\ngroups = [\"ci\"]\nexpires = 2020-01-31\n\n\
         [log]\naudit_file = \"{}\"\n",
        hash(SECRET),
        hash(OLD_SECRET),
        audit.display()
    )
}

async fn gateway(redis: &Arc<RedisServer>, audit: &std::path::Path, login: &str) -> Env {
    let routes = extra(audit);
    env(Opts {
        server: "trusted_proxies = [\"127.0.0.1/32\"]",
        login: Box::leak(login.to_string().into_boxed_str()),
        routes: Box::leak(routes.into_boxed_str()),
        redis: Some(Arc::clone(redis)),
        ..Opts::default()
    })
    .await
}

fn client() -> reqwest::Client {
    support::client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// GET `path` with `Authorization: Bearer secret` (and `extra` headers):
/// status and headers.
async fn get(e: &Env, path: &str, secret: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client()
        .get(e.url(path))
        .header("authorization", format!("Bearer {secret}"));
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// Forward-auth (`/.portcullis/auth`, nginx's shape) about `path` with the
/// Bearer header the proxy passes on.
async fn auth(e: &Env, path: &str, secret: &str) -> reqwest::Response {
    client()
        .get(e.url("/.portcullis/auth"))
        .header("x-original-url", e.url(path))
        .header("authorization", format!("Bearer {secret}"))
        .send()
        .await
        .unwrap()
}

/// Sessions in the store (keys `{prefix}ses:*`).
fn sessions(redis: &RedisServer, prefix: &str) -> usize {
    let out = redis.cli(&["--scan", "--pattern", &format!("{prefix}ses:*")]);
    out.lines().filter(|l| !l.is_empty()).count()
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn a_token_passes_its_routes_as_itself_and_nothing_else() {
    let redis = Arc::new(RedisServer::start());
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let e = gateway(&redis, &audit, "").await;

    // Allowed: the upstream sees exactly the token's identity, and neither
    // the secret nor a client's identity header.
    let r = get(
        &e,
        "/api/deploy?x=1",
        SECRET,
        &[
            ("x-forwarded-user", "boss@example.com"),
            ("x_forwarded_email", "boss@example.com"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("set-cookie").is_none());
    let seen = e.up.last().unwrap();
    assert_eq!(seen.target, "/api/deploy?x=1");
    assert_eq!(
        seen.one("x-forwarded-user").as_deref(),
        Some("token:deploy")
    );
    assert_eq!(seen.one("x-forwarded-groups").as_deref(), Some("ci"));
    assert_eq!(seen.all("x-forwarded-email"), Vec::<String>::new());
    assert_eq!(seen.all("x_forwarded_email"), Vec::<String>::new());
    assert_eq!(seen.all("authorization"), Vec::<String>::new());
    assert_eq!(seen.all("x-portcullis-share"), Vec::<String>::new());

    // Routes the token may not reach: 403, nothing upstream.
    let before = e.up.count();
    for path in ["/ops/x", "/", "/admin", "/ops;x/y"] {
        let r = get(&e, path, SECRET, &[]).await;
        assert_eq!(r.status(), 403, "{path}");
        assert_eq!(
            r.text().await.unwrap(),
            "This token may not open this page.\n"
        );
    }
    // Every reading of the path: `/api;x` is `/api` to Tomcat, but `/`
    // (no allow_groups) read literally.
    assert_eq!(get(&e, "/api;x", SECRET, &[]).await.status(), 403);
    assert_eq!(e.up.count(), before);
    // A public route needs no token and carries no identity.
    assert_eq!(get(&e, "/public/x", SECRET, &[]).await.status(), 200);
    assert_eq!(
        e.up.last().unwrap().all("x-forwarded-user"),
        Vec::<String>::new()
    );

    // Wrong and expired: 401 with WWW-Authenticate, audited without the secret.
    for secret in ["not-a-token", OLD_SECRET] {
        let r = get(&e, "/api/x", secret, &[("accept", "text/html")]).await;
        assert_eq!(r.status(), 401, "{secret}");
        assert_eq!(
            header(&r, "www-authenticate").as_deref(),
            Some("Bearer error=\"invalid_token\"")
        );
    }
    let log = std::fs::read_to_string(&audit).unwrap();
    let refused: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["event"] == "token.refused")
        .collect();
    assert_eq!(refused.len(), 2, "{log}");
    assert_eq!(refused[0]["reason"], "unknown token");
    assert_eq!(refused[1]["reason"], "token old expired");
    assert_eq!(refused[1]["path"], "/api/x");
    let denied: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["event"] == "access.denied")
        .collect();
    assert_eq!(denied[0]["reason"], "token deploy on route /ops");
    for secret in [SECRET, OLD_SECRET, "not-a-token"] {
        assert!(!log.contains(secret), "the audit log holds a secret");
    }

    // Never on the sign-in endpoints.
    let r = get(&e, "/.portcullis/login", SECRET, &[("accept", "text/html")]).await;
    assert_eq!(r.status(), 401);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("<p>Machine tokens do not work on the sign-in pages.</p>"));
    let r = client()
        .post(e.url("/.portcullis/logout"))
        .header("authorization", format!("Bearer {SECRET}"))
        .header("origin", &e.origin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The probes are no sign-in endpoint.
    assert_eq!(
        get(&e, "/.portcullis/ping", SECRET, &[]).await.status(),
        200
    );

    // No session was ever created.
    assert_eq!(sessions(&redis, &e.prefix), 0);
}

#[tokio::test]
async fn forward_auth_answers_as_the_proxy_path() {
    let redis = Arc::new(RedisServer::start());
    let dir = tempfile::tempdir().unwrap();
    let e = gateway(&redis, &dir.path().join("audit.log"), "").await;
    let r = auth(&e, "/api/x", SECRET).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "x-forwarded-user").as_deref(),
        Some("token:deploy")
    );
    assert_eq!(
        header(&r, "x-auth-request-user").as_deref(),
        Some("token:deploy")
    );
    assert_eq!(header(&r, "x-forwarded-email").as_deref(), Some(""));
    assert_eq!(header(&r, "x-forwarded-groups").as_deref(), Some("ci"));
    assert_eq!(header(&r, "x-portcullis-share").as_deref(), Some(""));
    assert!(r.headers().get("set-cookie").is_none());
    assert_eq!(auth(&e, "/ops", SECRET).await.status(), 403);
    assert_eq!(auth(&e, "/", SECRET).await.status(), 403);
    let r = auth(&e, "/api/x", OLD_SECRET).await;
    assert_eq!(r.status(), 401);
    assert_eq!(auth(&e, "/api/x", "wrong").await.status(), 401);
    // Traefik's and Caddy's shape too.
    let r = client()
        .get(e.url("/.portcullis/forward-auth"))
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-host", e.origin.trim_start_matches("http://"))
        .header("x-forwarded-uri", "/api/y")
        .header("authorization", format!("Bearer {SECRET}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "x-forwarded-user").as_deref(),
        Some("token:deploy")
    );
    assert_eq!(sessions(&redis, &e.prefix), 0);
}

#[tokio::test]
async fn wrong_tokens_are_limited_per_client_then_429() {
    let redis = Arc::new(RedisServer::start());
    let dir = tempfile::tempdir().unwrap();
    // ip_rate 2/15m: a budget of 20 failed checks (4 × 2, at least 20).
    let e = gateway(&redis, &dir.path().join("audit.log"), "ip_rate = \"2/15m\"").await;
    for i in 0..20 {
        let r = get(&e, "/api/x", &format!("guess-{i}"), &[]).await;
        assert_eq!(r.status(), 401, "try {i}");
    }
    let r = get(&e, "/api/x", "guess-21", &[]).await;
    assert_eq!(r.status(), 429);
    // Refused before any lookup: the right secret too, and the same
    // through forward-auth (one budget per client).
    assert_eq!(get(&e, "/api/x", SECRET, &[]).await.status(), 429);
    assert_eq!(auth(&e, "/api/x", SECRET).await.status(), 429);
    assert_eq!(sessions(&redis, &e.prefix), 0);
}

#[tokio::test]
async fn forward_auth_counts_wrong_tokens_too() {
    let redis = Arc::new(RedisServer::start());
    let dir = tempfile::tempdir().unwrap();
    let e = gateway(&redis, &dir.path().join("audit.log"), "ip_rate = \"2/15m\"").await;
    for i in 0..20 {
        assert_eq!(
            auth(&e, "/api/x", &format!("g{i}")).await.status(),
            401,
            "{i}"
        );
    }
    assert_eq!(auth(&e, "/api/x", "g21").await.status(), 429);
    assert_eq!(get(&e, "/api/x", SECRET, &[]).await.status(), 429);
}

#[tokio::test]
async fn token_new_prints_a_secret_and_lines_that_work() {
    let out = std::process::Command::new(support::gateway::binary())
        .args(["token", "new", "robot", "--group", "ci"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let secret = text
        .lines()
        .next()
        .unwrap()
        .strip_prefix("secret: ")
        .unwrap();
    assert_eq!(
        portcullis::crypto::unb64(secret).map(|b| b.len()),
        Some(32),
        "{text}"
    );
    let toml: String = text
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        toml.contains(&format!("sha256 = \"{}\"", hash(secret))),
        "{text}"
    );
    let redis = Arc::new(RedisServer::start());
    let routes = format!(
        "[[route]]\npath = \"/api\"\nupstream = \"{{up}}\"\nallow_groups = [\"ci\"]\n\n{toml}"
    );
    let e = env(Opts {
        routes: Box::leak(routes.into_boxed_str()),
        redis: Some(redis),
        ..Opts::default()
    })
    .await;
    assert_eq!(get(&e, "/api", secret, &[]).await.status(), 200);
    assert_eq!(
        e.up.last().unwrap().one("x-forwarded-user").as_deref(),
        Some("token:robot")
    );
    // A bad name: exit 1 with a sentence.
    let out = std::process::Command::new(support::gateway::binary())
        .args(["token", "new", "two words"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a token name"));
}
