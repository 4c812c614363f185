//! Signing in with an identity provider, against a real one: the npm
//! package `oauth2-mock-server` run by `tests/oidc/provider.mjs` on
//! `127.0.0.1:0` (discovery, JWKS, a login page, the token endpoint with
//! PKCE and the client secret checked, ID tokens shaped per test).
//!
//! Journeys over HTTP (the test's own cookie jar): the button on the
//! sign-in page, the provider's login, the callback, `rd` reached with
//! `X-Forwarded-Email` and the method in the audit line; an address outside
//! the allow list gets the 403 page; a tampered `state`, a replayed
//! callback, a wrong `nonce`, an expired ID token, one signed by another
//! key, `email_verified = false` and a wrong `aud` each end on an error
//! page with no session; key rotation at the provider while signed-in
//! sessions continue; a provider that is down (only its button fails,
//! email sign-in works); GitHub's verified primary address;
//! `[login] email = false`. The same journey in headless Chromium, with
//! screenshots of the sign-in page with two providers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::browser::{Browser, Page};
use support::flow::{self, urlenc, Env, Opts};
use support::oidc::Provider;

/// A gateway with `providers` (TOML tables) and an audit file.
async fn env_with(providers: &str, login: &str) -> (Env, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let routes = format!("{providers}\n[log]\naudit_file = \"{}\"\n", audit.display());
    let e = flow::env(Opts {
        login,
        routes: &routes,
        ..Default::default()
    })
    .await;
    (e, dir)
}

fn audit_lines(dir: &tempfile::TempDir) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.path().join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn session_cookie_set(p: &Page) -> bool {
    p.set_cookies()
        .iter()
        .any(|c| c.starts_with(&format!("{}=v1.", support::mode::cookie("portcullis"))))
}

/// From the start button to the answer of the callback: the provider's
/// login page is shown and `email` typed into it.
async fn through_provider(e: &Env, b: &mut Browser, provider: &str, email: &str, rd: &str) -> Page {
    let start = b
        .get(&e.url(&format!(
            "/.portcullis/oidc/start?provider={provider}&rd={}",
            urlenc(rd)
        )))
        .await;
    assert_eq!(start.status, 303, "{}", start.body);
    let authorize = start.location();
    let login = b.get(&authorize).await;
    assert_eq!(login.status, 200);
    assert!(
        login.body.contains("Test provider: sign in"),
        "{}",
        login.body
    );
    let back = b
        .get(&format!("{authorize}&login_email={}", urlenc(email)))
        .await;
    assert_eq!(back.status, 302, "{}", back.body);
    let callback = back.location();
    assert!(
        callback.starts_with(&e.url("/.portcullis/oidc/callback?")),
        "{callback}"
    );
    b.get(&callback).await
}

/// The callback's URL for a started flow (the provider's answer, not yet
/// followed).
async fn callback_url(e: &Env, b: &mut Browser, provider: &str, email: &str) -> String {
    let start = b
        .get(&e.url(&format!(
            "/.portcullis/oidc/start?provider={provider}&rd=%2Fapp"
        )))
        .await;
    assert_eq!(start.status, 303);
    let back = b
        .get(&format!(
            "{}&login_email={}",
            start.location(),
            urlenc(email)
        ))
        .await;
    assert_eq!(back.status, 302);
    back.location()
}

/// Whether the browser's session reaches the upstream as `email`.
async fn signed_in_as(e: &Env, b: &mut Browser, email: &str) -> bool {
    let app = b.get(&e.url("/app")).await;
    if app.status != 200 {
        return false;
    }
    e.up.last().unwrap().one("x-forwarded-email").as_deref() == Some(email)
}

#[tokio::test]
async fn provider_sign_in_lands_on_rd_with_the_identity() {
    let Some(idp) = Provider::start().await else {
        return;
    };
    let (e, dir) = env_with(&idp.config("corp", "Sign in with Corp SSO", ""), "").await;
    let mut b = Browser::new();
    // The button on the sign-in page carries rd.
    let page = b.get(&e.url("/.portcullis/login?rd=%2Fapp%2Fpage")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(
            "<div class=\"providers\">\n<a class=\"button secondary provider\" href=\"/.portcullis/oidc/start?provider=corp&amp;rd=%2Fapp%2Fpage\">Sign in with Corp SSO</a>\n</div>\n<p class=\"or\">or with your email</p>"
        ),
        "{}",
        page.body
    );
    assert!(page.body.contains("<p class=\"or\">or with your email</p>"));

    let done = through_provider(&e, &mut b, "corp", "Ann@Example.com", "/app/page").await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), "/app/page");
    assert!(session_cookie_set(&done));
    // The flow cookie is cleared.
    assert!(done
        .set_cookies()
        .iter()
        .any(|c| c.starts_with(&format!("{}=;", support::mode::cookie("portcullis-oidc")))));
    let app = b.get(&e.url("/app/page")).await;
    assert_eq!(app.status, 200, "{}", app.body);
    let seen = e.up.last().unwrap();
    assert_eq!(seen.target, "/app/page");
    assert_eq!(
        seen.one("x-forwarded-email").as_deref(),
        Some("ann@example.com")
    );
    // The audit line says how.
    let lines = audit_lines(&dir);
    let ok = lines
        .iter()
        .find(|l| l["event"] == "signin.succeeded")
        .unwrap();
    assert_eq!(ok["outcome"], "success");
    assert_eq!(ok["email"], "ann@example.com");
    assert_eq!(ok["reason"], "oidc:corp");
    // PKCE and the secret were checked by the provider: one token request.
    assert_eq!(idp.stats().await["token"], 1);
}

/// Polls the provider's counters until `f` holds (the gateway's
/// background fetch has no other signal), within 10 s.
async fn until_stats(idp: &Provider, f: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = idp.stats().await;
        if f(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "provider counters stayed {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn discovery_and_keys_are_fetched_at_start_and_kept() {
    let Some(idp) = Provider::start().await else {
        return;
    };
    let (e, _dir) = env_with(&idp.config("corp", "Corp", ""), "").await;
    // Before any click.
    until_stats(&idp, |s| s["discovery"] == 1 && s["jwks"] == 1).await;
    for email in ["ann@example.com", "bob@example.com"] {
        let mut b = Browser::new();
        let done = through_provider(&e, &mut b, "corp", email, "/app").await;
        assert_eq!(done.status, 303, "{}", done.body);
    }
    let s = idp.stats().await;
    assert_eq!(
        (s["discovery"].as_u64(), s["jwks"].as_u64()),
        (Some(1), Some(1)),
        "cached"
    );
}

#[tokio::test]
async fn the_session_record_keeps_the_method_and_nothing_secret() {
    let Some(idp) = Provider::start().await else {
        return;
    };
    let redis = support::redis::RedisServer::shared();
    let dir = tempfile::tempdir().unwrap();
    let routes = format!(
        "{}\n[log]\naudit_file = \"{}\"\n",
        idp.config("corp", "Corp", ""),
        dir.path().join("audit.jsonl").display()
    );
    let e = flow::env(Opts {
        routes: &routes,
        redis: Some(redis.clone()),
        ..Default::default()
    })
    .await;
    let mut b = Browser::new();
    let callback = callback_url(&e, &mut b, "corp", "ann@example.com").await;
    let done = b.get(&callback).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let keys = redis.cli(&["--scan", "--pattern", &format!("{}*", e.prefix)]);
    let sessions: Vec<&str> = keys.lines().filter(|k| k.contains(":ses:")).collect();
    assert_eq!(sessions.len(), 1, "{keys}");
    let record: serde_json::Value =
        serde_json::from_str(&redis.cli(&["get", sessions[0]])).unwrap();
    assert_eq!(record["amr"], "oidc:corp");
    assert_eq!(record["email"], "ann@example.com");
    // The used state is kept (hashed) for the flow's life, then goes.
    let used: Vec<&str> = keys.lines().filter(|k| k.contains("oidc:")).collect();
    assert_eq!(used.len(), 1, "{keys}");
    let ttl: i64 = redis.cli(&["pttl", used[0]]).parse().unwrap();
    assert!(ttl > 0 && ttl <= 600_000, "{ttl}");
    // No code, state, flow cookie or client secret in Redis or the audit trail.
    let query = callback.split_once('?').unwrap().1.to_string();
    let mut secrets: Vec<String> = query
        .split('&')
        .map(|kv| kv.split_once('=').unwrap().1.to_string())
        .collect();
    secrets.push(support::oidc::CLIENT_SECRET.to_string());
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    for k in keys.lines() {
        let v = match redis.cli(&["type", k]).as_str() {
            "string" => redis.cli(&["get", k]),
            _ => String::new(),
        };
        for s in &secrets {
            assert!(
                !k.contains(s.as_str()) && !v.contains(s.as_str()),
                "{k} holds {s}"
            );
        }
    }
    for s in &secrets {
        assert!(!audit.contains(s.as_str()), "the audit trail holds {s}");
    }
}

#[tokio::test]
async fn a_provider_that_comes_back_works_again() {
    let port = support::upstream::refused_addr().port();
    let issuer = format!("http://127.0.0.1:{port}");
    let providers = format!(
        "[[provider]]\nname = \"corp\"\nlabel = \"Corp\"\nissuer = \"{issuer}\"\n\
         client_id = \"{}\"\nclient_secret_env = \"PORTCULLIS_SECRET\"\n",
        support::oidc::CLIENT_ID
    );
    let (e, _dir) = env_with(&providers, "").await;
    let mut b = Browser::new();
    let start = b
        .get(&e.url("/.portcullis/oidc/start?provider=corp&rd=%2Fapp"))
        .await;
    assert_eq!(start.status, 503);
    let Some(_idp) = Provider::start_on(port).await else {
        return;
    };
    // A failure is remembered for a few seconds; then a click asks again.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let start = b
            .get(&e.url("/.portcullis/oidc/start?provider=corp&rd=%2Fapp"))
            .await;
        if start.status == 303 {
            break;
        }
        assert_eq!(start.status, 503);
        assert!(Instant::now() < deadline, "the provider stayed unavailable");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let done = through_provider(&e, &mut b, "corp", "ann@example.com", "/app").await;
    assert_eq!(done.status, 303, "{}", done.body);
}

#[tokio::test]
async fn an_address_outside_the_allow_list_gets_the_403_page() {
    let Some(idp) = Provider::start().await else {
        return;
    };
    let (e, dir) = env_with(&idp.config("corp", "Corp", ""), "").await;
    let mut b = Browser::new();
    let done = through_provider(&e, &mut b, "corp", "eve@elsewhere.test", "/app").await;
    assert_eq!(done.status, 403, "{}", done.body);
    assert!(
        done.body
            .contains("eve@elsewhere.test may not sign in to Test Tools."),
        "{}",
        done.body
    );
    assert!(!session_cookie_set(&done));
    assert!(!signed_in_as(&e, &mut b, "eve@elsewhere.test").await);
    let failed = audit_lines(&dir)
        .into_iter()
        .find(|l| l["event"] == "signin.failed")
        .unwrap();
    assert_eq!(failed["reason"], "oidc:corp: address not allowed");
    assert_eq!(failed["email"], "eve@elsewhere.test");
}

#[tokio::test]
async fn allowed_domains_limit_a_provider() {
    let Some(idp) = Provider::start().await else {
        return;
    };
    let (e, _dir) = env_with(
        &idp.config("corp", "Corp", "allowed_domains = [\"corp.example.com\"]"),
        "allow_domains = [\"example.com\", \"corp.example.com\"]",
    )
    .await;
    let mut b = Browser::new();
    // The one domain is sent as Google's hd hint.
    let start = b
        .get(&e.url("/.portcullis/oidc/start?provider=corp&rd=%2Fapp"))
        .await;
    assert!(
        start.location().contains("&hd=corp.example.com"),
        "{}",
        start.location()
    );
    let done = through_provider(&e, &mut b, "corp", "ann@example.com", "/app").await;
    assert_eq!(done.status, 403);
    assert!(!session_cookie_set(&done));
    let done = through_provider(&e, &mut b, "corp", "ann@corp.example.com", "/app").await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(signed_in_as(&e, &mut b, "ann@corp.example.com").await);
}

/// Each refused case: the callback's status, the page's words, no session
/// cookie, no session afterwards, and the audit reason.
async fn refused(
    e: &Env,
    dir: &tempfile::TempDir,
    b: &mut Browser,
    done: &Page,
    status: u16,
    reason: &str,
) {
    assert_eq!(done.status, status, "{reason}: {}", done.body);
    assert!(!session_cookie_set(done), "{reason}");
    assert!(
        done.header("location").is_none(),
        "{reason}: never a redirect"
    );
    assert!(done.body.contains("<h1>"), "{reason}: a page");
    assert!(!signed_in_as(e, b, "ann@example.com").await, "{reason}");
    let last = audit_lines(dir)
        .into_iter()
        .rev()
        .find(|l| l["event"] == "signin.failed")
        .unwrap();
    assert_eq!(last["reason"], reason);
}

#[tokio::test]
async fn bad_id_tokens_end_on_an_error_page_with_no_session() {
    let Some(idp) = Provider::start().await else {
        return;
    };
    let (e, dir) = env_with(&idp.config("corp", "Corp", ""), "").await;
    let cases = [
        (
            json!({"nonce": "not-the-browsers"}),
            400,
            "oidc:corp: ID token nonce does not match",
        ),
        (
            json!({"exp_offset": -3600}),
            400,
            "oidc:corp: ID token expired",
        ),
        (
            json!({"stray_key": true}),
            400,
            "oidc:corp: ID token signature does not verify",
        ),
        (
            json!({"email_verified": false}),
            403,
            "oidc:corp: email not verified by the provider",
        ),
        (
            json!({"aud": "another-client"}),
            400,
            "oidc:corp: ID token audience is not this client",
        ),
        (
            json!({"iss": "http://127.0.0.1:1"}),
            400,
            "oidc:corp: ID token issuer is not the provider",
        ),
    ];
    for (shape, status, reason) in cases {
        let mut b = Browser::new();
        let callback = callback_url(&e, &mut b, "corp", "ann@example.com").await;
        idp.next(shape).await;
        let done = b.get(&callback).await;
        refused(&e, &dir, &mut b, &done, status, reason).await;
    }
    // And the same flow with a good token still works afterwards.
    let mut b = Browser::new();
    let done = through_provider(&e, &mut b, "corp", "ann@example.com", "/app").await;
    assert_eq!(done.status, 303, "{}", done.body);
}

#[tokio::test]
async fn a_tampered_state_or_a_replayed_callback_gets_no_session() {
    let Some(idp) = Provider::start().await else {
        return;
    };
    let (e, dir) = env_with(&idp.config("corp", "Corp", ""), "").await;

    // Tampered state: the provider's answer with another state.
    let mut b = Browser::new();
    let callback = callback_url(&e, &mut b, "corp", "ann@example.com").await;
    let (head, state) = callback.split_once("state=").unwrap();
    let tampered = format!("{head}state=X{}", &state[1..]);
    let done = b.get(&tampered).await;
    refused(
        &e,
        &dir,
        &mut b,
        &done,
        400,
        "oidc:corp: state does not match",
    )
    .await;
    assert!(done.body.contains("This sign-in could not be finished."));
    assert_eq!(idp.stats().await["token"], 0, "the code was not used");

    // Replayed: the same callback, cookie and all, after it signed in.
    let mut b = Browser::new();
    let callback = callback_url(&e, &mut b, "corp", "ann@example.com").await;
    let jar = b.jar.clone();
    let done = b.get(&callback).await;
    assert_eq!(done.status, 303);
    let mut thief = Browser::new();
    thief.jar = jar;
    let again = thief.get(&callback).await;
    refused(
        &e,
        &dir,
        &mut thief,
        &again,
        400,
        "oidc:corp: state already used",
    )
    .await;
    // Without the flow cookie (another browser): refused as well.
    let mut other = Browser::new();
    let again = other.get(&callback).await;
    refused(
        &e,
        &dir,
        &mut other,
        &again,
        400,
        "no flow cookie (expired, other browser or replayed)",
    )
    .await;
    assert_eq!(idp.stats().await["token"], 1, "the code was used once");
    // The provider's own refusal: an error answer ends on a page too.
    let mut b = Browser::new();
    let callback = callback_url(&e, &mut b, "corp", "ann@example.com").await;
    let state = callback.split_once("state=").unwrap().1.to_string();
    let denied = b
        .get(&e.url(&format!(
            "/.portcullis/oidc/callback?error=access_denied&state={state}"
        )))
        .await;
    refused(
        &e,
        &dir,
        &mut b,
        &denied,
        403,
        "oidc:corp: provider answered access_denied",
    )
    .await;
    assert!(denied
        .body
        .contains("Corp did not sign you in (access_denied)."));
}

#[tokio::test]
async fn key_rotation_at_the_provider_keeps_sessions_and_sign_ins_working() {
    let Some(idp) = Provider::start().await else {
        return;
    };
    let (e, _dir) = env_with(&idp.config("corp", "Corp", ""), "").await;
    // The fetch at start is done (so the counts below are this test's).
    until_stats(&idp, |s| s["jwks"] == 1).await;
    let mut first = Browser::new();
    let done = through_provider(&e, &mut first, "corp", "ann@example.com", "/app").await;
    assert_eq!(done.status, 303, "{}", done.body);
    let before = idp.stats().await["jwks"].as_u64().unwrap();
    idp.rotate().await;
    // A token signed with the new key: its kid is unknown, the keys are
    // fetched once more, and it verifies.
    let mut second = Browser::new();
    let done = through_provider(&e, &mut second, "corp", "bob@example.com", "/app").await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(idp.stats().await["jwks"].as_u64().unwrap(), before + 1);
    assert!(signed_in_as(&e, &mut second, "bob@example.com").await);
    // The session from before the rotation goes on.
    assert!(signed_in_as(&e, &mut first, "ann@example.com").await);
    // A token with a made-up kid right after: no second fetch within the
    // gap (rate-limited), and no session.
    let mut third = Browser::new();
    let callback = callback_url(&e, &mut third, "corp", "ann@example.com").await;
    idp.rotate().await;
    let done = third.get(&callback).await;
    assert_eq!(done.status, 400, "{}", done.body);
    assert_eq!(idp.stats().await["jwks"].as_u64().unwrap(), before + 1);
}

#[tokio::test]
async fn a_provider_that_is_down_fails_only_its_button() {
    let Some(idp) = Provider::start().await else {
        return;
    };
    let down = format!(
        "[[provider]]\nname = \"down\"\nlabel = \"Sign in with Down Inc\"\n\
         issuer = \"http://{}\"\nclient_id = \"x\"\nclient_secret_env = \"PORTCULLIS_SECRET\"\n",
        support::upstream::refused_addr()
    );
    let (e, _dir) = env_with(&format!("{}{down}", idp.config("corp", "Corp", "")), "").await;
    let mut b = Browser::new();
    let page = b.get(&e.url("/.portcullis/login")).await;
    assert!(page.body.contains(">Sign in with Down Inc</a>"));
    let start = b
        .get(&e.url("/.portcullis/oidc/start?provider=down&rd=%2Fapp"))
        .await;
    assert_eq!(start.status, 503, "{}", start.body);
    assert!(
        start.body.contains(
            "Sign in with Down Inc is not available right now. Try again in a few minutes, or sign in with your email address."
        ),
        "{}",
        start.body
    );
    // The other provider and email sign-in work.
    let done = through_provider(&e, &mut b, "corp", "ann@example.com", "/app").await;
    assert_eq!(done.status, 303);
    let mut c = Browser::new();
    let done = flow::sign_in(&e, &mut c, "carol@example.com", "/app", 1).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(signed_in_as(&e, &mut c, "carol@example.com").await);
    // An unknown provider name: a page, not a redirect.
    let unknown = b.get(&e.url("/.portcullis/oidc/start?provider=nope")).await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn github_signs_in_with_the_verified_primary_address() {
    let Some(idp) = Provider::start().await else {
        return;
    };
    let (e, dir) = env_with(&idp.github_config("gh", "Sign in with GitHub"), "").await;
    let mut b = Browser::new();
    let done = through_provider(&e, &mut b, "gh", "gina@example.com", "/app").await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(signed_in_as(&e, &mut b, "gina@example.com").await);
    let ok = audit_lines(&dir)
        .into_iter()
        .find(|l| l["event"] == "signin.succeeded")
        .unwrap();
    assert_eq!(ok["reason"], "github:gh");
    // A primary address GitHub has not verified: refused.
    idp.next(json!({"email_verified": false})).await;
    let mut b = Browser::new();
    let done = through_provider(&e, &mut b, "gh", "gina@example.com", "/app").await;
    refused(
        &e,
        &dir,
        &mut b,
        &done,
        403,
        "github:gh: no verified primary email at GitHub",
    )
    .await;
}

#[tokio::test]
async fn with_email_off_only_the_buttons_show() {
    let Some(idp) = Provider::start().await else {
        return;
    };
    let (e, _dir) = env_with(
        &idp.config("corp", "Sign in with Corp", ""),
        "email = false",
    )
    .await;
    let mut b = Browser::new();
    let page = b.get(&e.url("/.portcullis/login?rd=%2Fapp")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(">Sign in with Corp</a>"));
    assert!(!page.body.contains("name=\"email\""), "{}", page.body);
    assert!(!page.body.contains("class=\"or\""));
    let csrf = page.field("csrf");
    assert_eq!(csrf, None, "no form to post");
    let post = b
        .post(
            &e.origin,
            "/.portcullis/login",
            &[("email", "ann@example.com")],
        )
        .await;
    assert_eq!(post.status, 404);
    assert_eq!(e.mails_to("ann@example.com"), 0);
    let done = through_provider(&e, &mut b, "corp", "ann@example.com", "/app").await;
    assert_eq!(done.status, 303);
}

#[test]
fn provider_config_errors_name_the_key() {
    let base = "[session]\nsecret_env = \"S\"\n";
    let check = |providers: &str| -> String {
        portcullis::config::Config::from_toml_str(
            &format!("{base}{providers}"),
            "t.toml",
            &[("S", "0123456789abcdef0123456789abcdef0123456789")],
        )
        .unwrap_err()
        .to_string()
    };
    let e = check("[[provider]]\nname = \"g\"\nissuer = \"http://idp.example.com\"\nclient_id = \"c\"\nclient_secret_env = \"S\"\n");
    assert!(
        e.contains("provider[0].issuer: \"http://idp.example.com\" must be https (plain http only for a loopback host)"),
        "{e}"
    );
    let e = check(
        "[[provider]]\nname = \"G!\"\nissuer = \"https://idp.example.com\"\nclient_id = \"c\"\n",
    );
    assert!(
        e.contains("provider[0].name: \"G!\": use 1 to 32 lower-case letters, digits and '-'"),
        "{e}"
    );
    assert!(
        e.contains("provider[0].client_secret_env: set client_secret_env or client_secret_file"),
        "{e}"
    );
    let e = check("[[provider]]\nname = \"g\"\nkind = \"saml\"\nclient_id = \"c\"\nclient_secret_env = \"NOPE\"\n");
    assert!(
        e.contains("provider[0].kind: \"saml\" is not a kind (oidc or github)"),
        "{e}"
    );
    assert!(
        e.contains(
            "provider[0].client_secret_env: the environment variable \"NOPE\" is not set or empty"
        ),
        "{e}"
    );
    let e = check("[[provider]]\nname = \"g\"\nissuer = \"https://a.example\"\nclient_id = \"c\"\nclient_secret_env = \"S\"\nscopes = [\"email\"]\n[[provider]]\nname = \"g\"\nissuer = \"https://a.example\"\nclient_id = \"c\"\nclient_secret_env = \"S\"\n");
    assert!(
        e.contains("provider[0].scopes: must include \"openid\""),
        "{e}"
    );
    assert!(e.contains("provider[1].name: \"g\" is used twice"), "{e}");
    // The secret's value is never in a message.
    assert!(!e.contains("0123456789abcdef"));
}

/// The journey in headless Chromium (pages without JavaScript): a
/// protected page, the sign-in page's button, the provider's login page,
/// and back on the page first asked for, as the address typed there.
#[tokio::test]
async fn in_chromium_the_button_the_provider_and_back() {
    if support::chrome::skipped() {
        return;
    }
    let Some(idp) = Provider::start().await else {
        return;
    };
    let (e, _dir) = env_with(&idp.config("corp", "Sign in with Corp SSO", ""), "").await;
    let b = support::chrome::Chrome::open(390, 844).await;
    b.goto(&e.url("/app/reports?week=1")).await;
    let here = b.url().await;
    assert!(here.starts_with(&e.url("/.portcullis/login?rd=")), "{here}");
    assert_eq!(b.text("a.provider").await, "Sign in with Corp SSO");
    b.click("a.provider").await;
    assert_eq!(b.text("h1").await, "Test provider: sign in");
    b.type_into("#login_email", "dana@example.com").await;
    b.click("#login").await;
    assert_eq!(b.url().await, e.url("/app/reports?week=1"));
    // The echo upstream's answer, as the browser shows it.
    let seen: support::upstream::Seen = serde_json::from_str(&b.text("body").await).unwrap();
    assert_eq!(seen.target, "/app/reports?week=1");
    assert_eq!(
        seen.one("x-forwarded-email").as_deref(),
        Some("dana@example.com")
    );
    let cookies = b.cookies().await;
    assert!(
        cookies.iter().any(|(n, _)| n == "portcullis"),
        "{cookies:?}"
    );
    assert!(
        !cookies.iter().any(|(n, _)| n == "portcullis-oidc"),
        "the flow cookie is gone: {cookies:?}"
    );
    b.close().await;
}
