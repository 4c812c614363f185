//! `portcullis link --email E [--rd URL]` against a real gateway and a
//! real Redis: the printed link signs a fresh browser in (no browser
//! asked for it, so whichever opens it gets the sign-in button), opening
//! it changes nothing (a scanner cannot use it up), it works once, and
//! the audit trail has the command's line without the link. Refusals:
//! the memory store, an address the allow lists refuse, a foreign `rd`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use support::browser::Browser;
use support::flow::{config_text, env, Opts};
use support::gateway::run_cli;
use support::redis::RedisServer;

#[tokio::test]
async fn a_support_link_signs_in_a_fresh_browser_once() {
    let redis = Arc::new(RedisServer::start());
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let extra: &'static str =
        Box::leak(format!("[log]\naudit_file = \"{}\"\n", audit.display()).into_boxed_str());
    let opts = || Opts {
        routes: extra,
        redis: Some(Arc::clone(&redis)),
        ..Opts::default()
    };
    let e = env(opts()).await;
    let text = config_text(&opts(), &e.up.url(), e.smtp.port(), &e.prefix)
        .replace("$PORT", &e.gw.addr.port().to_string());

    let (code, out, err) = run_cli(
        &text,
        &["link", "--email", "Ann@Example.com", "--rd", "/reports?x=1"],
    );
    assert_eq!(code, 0, "{err}");
    let url = out.lines().next().unwrap().to_string();
    let prefix = format!("{}/.portcullis/verify?token=", e.origin);
    assert!(url.starts_with(&prefix), "{out}");
    let token = url.strip_prefix(&prefix).unwrap().to_string();
    assert_eq!(token.len(), 43);
    assert!(out.contains("for ann@example.com: works once"), "{out}");

    // A scanner (or a preview) opens it: nothing changes.
    let mut scanner = Browser::new();
    for _ in 0..2 {
        let p = scanner.get(&url).await;
        assert_eq!(p.status, 200);
    }
    assert!(scanner.jar.keys().all(|k| k != "portcullis"));

    // The person's browser, which never asked: one button, and in.
    let mut b = Browser::new();
    let page = b.get(&url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("a***@example.com"), "{}", page.body);
    assert_eq!(page.field("token").as_deref(), Some(token.as_str()));
    let csrf = page.field("csrf").unwrap();
    let done = b
        .post(
            &e.origin,
            "/.portcullis/verify",
            &[("token", &token), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), "/reports?x=1");
    let app = b.get(&e.url("/reports?x=1")).await;
    assert_eq!(app.status, 200);
    assert_eq!(
        e.up.last().unwrap().one("x-forwarded-email").as_deref(),
        Some("ann@example.com")
    );
    assert_eq!(e.gw.app.session_count("ann@example.com").await.unwrap(), 1);

    // Once: the scanner's browser cannot press it now.
    let again = scanner.get(&url).await;
    assert_eq!(again.status, 410);

    // Audited by the command (address, no link) and by the sign-in.
    let log = std::fs::read_to_string(&audit).unwrap();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let issued = events
        .iter()
        .find(|v| v["event"] == "signin.link_issued")
        .unwrap();
    assert_eq!(issued["email"], "ann@example.com");
    assert_eq!(issued["outcome"], "success");
    assert!(issued["reason"]
        .as_str()
        .unwrap()
        .starts_with("support link, valid 900s"));
    assert!(events
        .iter()
        .any(|v| v["event"] == "signin.succeeded" && v["email"] == "ann@example.com"));
    assert!(!log.contains(&token), "the audit log holds the link");

    // Refusals, each exit 1 with a sentence.
    let (code, _, err) = run_cli(&text, &["link", "--email", "x@elsewhere.org"]);
    assert_eq!(code, 1);
    assert!(err.contains("x@elsewhere.org may not sign in"), "{err}");
    let (code, _, err) = run_cli(
        &text,
        &[
            "link",
            "--email",
            "ann@example.com",
            "--rd",
            "https://evil.test/",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("is not a place this gateway sends people to"),
        "{err}"
    );
}

#[test]
fn link_needs_redis() {
    let text = "[session]\nsecret_env = \"PORTCULLIS_SECRET\"\n[[route]]\npath = \"/\"\nupstream = \"demo\"\n";
    let (code, out, err) = run_cli(text, &["link", "--email", "a@example.com"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.contains("link needs [store] backend = \"redis\": the memory store lives inside the running gateway"),
        "{err}"
    );
}
