//! The audit trail (`[log] audit_file`, JSON lines): one test per event,
//! through a real gateway with real sign-ins and a real SMTP server, each
//! line read back from the file and checked field by field; request ids
//! from trusted proxies or made by the gateway, sent upstream and shown on
//! error answers; the file reopened on SIGHUP for logrotate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::browser::Browser;
use support::client::{raw, status_of};
use support::flow::{ask_link, cookie_header, env, mail_for, sign_in, Env, Opts};
use support::smtp::Script;

const T: Duration = Duration::from_secs(5);

/// A gateway writing its audit trail to a file of its own.
async fn audited(script: Script, dir: &Path) -> (Env, PathBuf) {
    let file = dir.join("audit.log");
    let log = format!("[log]\naudit_file = \"{}\"\n", file.display());
    let log: &'static str = Box::leak(log.into_boxed_str());
    let e = env(Opts {
        routes: log,
        server: "trusted_proxies = [\"10.9.9.9/32\"]",
        script: Some(script),
        ..Opts::default()
    })
    .await;
    (e, file)
}

/// The audit lines written so far, parsed.
fn lines(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The lines of `event`, waiting up to 5 s for `n` of them (mail is sent
/// in the background).
async fn events(file: &Path, event: &str, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + T;
    loop {
        let got: Vec<Value> = lines(file)
            .into_iter()
            .filter(|v| v["event"] == event)
            .collect();
        if got.len() >= n || std::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sign_in_requested_succeeded_and_signed_out() {
    let dir = tempfile::tempdir().unwrap();
    let (e, file) = audited(Script::Accept, dir.path()).await;
    let mut b = Browser::new();
    let done = sign_in(&e, &mut b, "Alice@Example.com", "/", 1).await;
    assert_eq!(done.status, 303);

    let requested = events(&file, "signin.requested", 1).await;
    assert_eq!(requested.len(), 1, "{requested:?}");
    let r = &requested[0];
    assert_eq!(r["outcome"], "success");
    assert_eq!(r["email"], "alice@example.com");
    assert_eq!(r["ip"], "127.0.0.1");
    assert_eq!(r["method"], "POST");
    assert_eq!(r["path"], "/.portcullis/login");
    assert_eq!(r["reason"], "queued");
    assert_eq!(r["request_id"].as_str().unwrap().len(), 16);

    let ok = events(&file, "signin.succeeded", 1).await;
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0]["email"], "alice@example.com");
    assert_eq!(ok[0]["reason"], "link");
    let session = ok[0]["session"].as_str().unwrap().to_string();
    assert_eq!(session.len(), 12);

    // Sign out: the same session.
    let logout = b.get(&e.url("/.portcullis/logout")).await;
    let csrf = logout.field("csrf").unwrap();
    let out = b
        .post(&e.origin, "/.portcullis/logout", &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, 303);
    let signed_out = events(&file, "signout", 1).await;
    assert_eq!(signed_out.len(), 1);
    assert_eq!(signed_out[0]["email"], "alice@example.com");
    assert_eq!(signed_out[0]["session"], session.as_str());

    // Nothing secret in the file: no token, code, cookie or link.
    let text = std::fs::read_to_string(&file).unwrap();
    let (token, code) = mail_for(&e.smtp, "alice@example.com", 1).await;
    for secret in [token.as_str(), code.as_str(), "verify?token", "portcullis="] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[tokio::test]
async fn sign_in_refused_and_failed() {
    let dir = tempfile::tempdir().unwrap();
    let (e, file) = audited(Script::Accept, dir.path()).await;
    // An address outside the allow list: the page is the same, the audit
    // line says why.
    let mut b = Browser::new();
    let page = ask_link(&mut b, &e.origin, "mallory@elsewhere.test", "/").await;
    assert_eq!(page.status, 200);
    let refused = events(&file, "signin.requested", 1).await;
    assert_eq!(refused[0]["outcome"], "failure");
    assert_eq!(refused[0]["email"], "mallory@elsewhere.test");
    assert_eq!(refused[0]["reason"], "address not allowed");

    // A wrong code, then an unknown link.
    let mut b = Browser::new();
    let waiting = ask_link(&mut b, &e.origin, "bob@example.com", "/").await;
    let (_, code) = mail_for(&e.smtp, "bob@example.com", 1).await;
    let wrong = if code.starts_with('A') {
        "BBBB-BBBB"
    } else {
        "AAAA-AAAA"
    };
    let csrf = waiting.field("csrf").unwrap();
    let p = b
        .post(
            &e.origin,
            "/.portcullis/code",
            &[("code", wrong), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, 400);
    let failed = events(&file, "signin.failed", 1).await;
    assert_eq!(failed[0]["email"], "bob@example.com");
    assert_eq!(failed[0]["reason"], "wrong code");
    let p = b
        .get(&e.url(&format!("/.portcullis/verify?token={}", "A".repeat(43))))
        .await;
    assert_eq!(p.status, 410);
    let failed = events(&file, "signin.failed", 2).await;
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(failed[1]["reason"], "unknown, used or expired link or code");
    assert!(failed[1].get("email").is_none());
}

#[tokio::test]
async fn access_denied_and_session_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let (e, file) = audited(Script::Accept, dir.path()).await;
    let mut b = Browser::new();
    sign_in(&e, &mut b, "carol@example.com", "/", 1).await;
    let cookie = cookie_header(&b);
    let req = format!(
        "GET /admin/x?secret=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\nUser-Agent: audit-test/1\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(status_of(&raw(e.gw.addr, req.as_bytes(), T).await), 403);
    let denied = events(&file, "access.denied", 1).await;
    assert_eq!(denied.len(), 1);
    let d = &denied[0];
    assert_eq!(d["email"], "carol@example.com");
    assert_eq!(d["path"], "/admin/x");
    assert_eq!(d["method"], "GET");
    assert_eq!(d["user_agent"], "audit-test/1");
    assert_eq!(d["outcome"], "failure");

    assert_eq!(e.gw.app.revoke("carol@example.com").await.unwrap(), 1);
    let revoked = events(&file, "session.revoked", 1).await;
    assert_eq!(revoked[0]["email"], "carol@example.com");
    assert_eq!(revoked[0]["reason"], "portcullis revoke: 1 session(s)");
}

#[tokio::test]
async fn mail_that_cannot_be_sent_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (e, file) = audited(Script::AlwaysReject, dir.path()).await;
    let mut b = Browser::new();
    assert_eq!(
        ask_link(&mut b, &e.origin, "dave@example.com", "/")
            .await
            .status,
        200
    );
    let failed = events(&file, "mail.failed", 1).await;
    assert_eq!(failed.len(), 1, "{:?}", lines(&file));
    assert_eq!(failed[0]["email"], "dave@example.com");
    assert_eq!(failed[0]["outcome"], "error");
}

#[tokio::test]
async fn request_ids_are_made_or_taken_from_trusted_proxies_and_sent_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let (e, _file) = audited(Script::Accept, dir.path()).await;
    // From a client that is not a trusted proxy: its own id is replaced.
    let req = "GET /public/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: chosen-by-client\r\nConnection: close\r\n\r\n";
    assert_eq!(status_of(&raw(e.gw.addr, req.as_bytes(), T).await), 200);
    let seen = e.up.last().unwrap();
    let ids: Vec<&str> = seen
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("x-request-id"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_ne!(ids[0], "chosen-by-client");
    assert_eq!(ids[0].len(), 16);
    assert!(ids[0].bytes().all(|b| b.is_ascii_hexdigit()));
    // From a trusted proxy: its id is kept, unless it is not a plain token.
    let trusting = env(Opts {
        server: "trusted_proxies = [\"127.0.0.1/32\"]",
        ..Opts::default()
    })
    .await;
    for (sent, kept) in [("req-42.abc", true), ("two words", false)] {
        let req = format!("GET /public/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: {sent}\r\nConnection: close\r\n\r\n");
        assert_eq!(
            status_of(&raw(trusting.gw.addr, req.as_bytes(), T).await),
            200
        );
        let seen = trusting.up.last().unwrap();
        let id = seen
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("x-request-id"))
            .map(|(_, v)| v.clone())
            .unwrap();
        assert_eq!(id == sent, kept, "{sent:?} -> {id:?}");
    }
    // The gateway's own error answers carry it, for the user to quote.
    let req = "GET /%2e%2e%2f HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let answer = raw(e.gw.addr, req.as_bytes(), T).await;
    assert_eq!(status_of(&answer), 400);
    assert!(
        answer.to_ascii_lowercase().contains("\r\nx-request-id: "),
        "{answer}"
    );
}

#[test]
fn the_audit_file_is_reopened_on_sighup_and_reloads_are_recorded() {
    use support::gateway::GatewayProcess;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.log");
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:$PORT\"\n[session]\nsecret_env = \"PORTCULLIS_SECRET\"\n\
         [mail]\ntransport = \"console\"\n[log]\naudit_file = \"{}\"\n\
         [[route]]\npath = \"/\"\nupstream = \"demo\"\n",
        file.display()
    );
    let gw = GatewayProcess::start(dir.path(), &config);
    // logrotate moves the file away, then signals.
    let rotated = dir.path().join("audit.log.1");
    std::fs::write(&file, "").unwrap();
    std::fs::rename(&file, &rotated).unwrap();
    gw.signal("HUP");
    let deadline = std::time::Instant::now() + T;
    while !lines(&file).iter().any(|v| v["event"] == "config.reloaded") {
        assert!(
            std::time::Instant::now() < deadline,
            "no config.reloaded line in the new file; log:\n{}",
            gw.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "");
    // A file that no longer parses: the reload fails, and says so.
    std::fs::write(dir.path().join("gateway.toml"), "[server\n").unwrap();
    gw.signal("HUP");
    let deadline = std::time::Instant::now() + T;
    loop {
        let failed: Vec<Value> = lines(&file)
            .into_iter()
            .filter(|v| v["event"] == "config.reload_failed")
            .collect();
        if let Some(f) = failed.first() {
            assert_eq!(f["outcome"], "error");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", gw.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
}
