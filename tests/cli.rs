//! The admin command line against real parts: `portcullis check --connect`
//! with a real Redis and a real SMTP server (each answering, then each
//! gone), with exact lines and exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;

use support::gateway::{binary, free_port, SECRET};
use support::redis::RedisServer;
use support::smtp::{Script, SmtpServer};

fn config(redis_url: &str, smtp_port: u16) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:1\"\n[session]\nsecret_env = \"PORTCULLIS_SECRET\"\n\
         [mail]\nfrom = \"Portcullis <login@example.com>\"\ntransport = \"smtp\"\n\
         [mail.smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\ntls = \"none\"\ntimeout = \"2s\"\n\
         [store]\nbackend = \"redis\"\nurl = \"{redis_url}\"\nconnect_timeout = \"500ms\"\nresponse_timeout = \"500ms\"\n\
         [[route]]\npath = \"/\"\nupstream = \"demo\"\n"
    )
}

/// `check --connect` on `text`: exit code and the lines after the route table.
fn check_connect(text: &str) -> (i32, Vec<String>) {
    let (code, stdout, _) = run(text, &["check", "--connect"]);
    let lines = stdout
        .lines()
        .filter(|l| l.starts_with("ok: ") || l.starts_with("FAILED: "))
        .map(String::from)
        .collect();
    (code, lines)
}

#[test]
fn check_connect_says_what_answers() {
    let redis = RedisServer::start();
    let smtp = SmtpServer::start(Script::Accept);
    let url = redis.url();
    let (code, lines) = check_connect(&config(&url, smtp.port()));
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(
        lines,
        [
            format!("ok: store.url ({url}): answers PING"),
            format!(
                "ok: mail.smtp (127.0.0.1:{}): connected, greeted and answered NOOP",
                smtp.port()
            ),
        ]
    );
    // No message was sent.
    assert_eq!(smtp.attempts(), 0);
}

#[test]
fn check_connect_fails_naming_what_does_not_answer() {
    let (redis_port, smtp_port) = (free_port(), free_port());
    let url = format!("redis://127.0.0.1:{redis_port}/0");
    let (code, lines) = check_connect(&config(&url, smtp_port));
    assert_eq!(code, 1, "{lines:?}");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("FAILED: store.url ({url}): store unavailable")),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with(&format!("FAILED: mail.smtp (127.0.0.1:{smtp_port}): ")),
        "{lines:?}"
    );
}

#[test]
fn check_connect_on_the_memory_store_and_console_mail_reaches_nothing() {
    let text = "[session]\nsecret_env = \"PORTCULLIS_SECRET\"\n[mail]\ntransport = \"console\"\n\
                [[route]]\npath = \"/\"\nupstream = \"demo\"\n";
    let (code, lines) = check_connect(text);
    assert_eq!(code, 0);
    assert_eq!(
        lines,
        [
            "ok: store: memory, nothing to reach",
            "ok: mail: console transport, nothing to reach"
        ]
    );
}

/// `portcullis ARGS` on the configuration `text`: exit code and stdout,
/// stderr.
fn run(text: &str, args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(binary())
        .arg("--config")
        .arg(&file)
        .args(args)
        .env("PORTCULLIS_SECRET", SECRET)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn sessions_are_listed_and_ended_from_the_command_line() {
    use support::browser::Browser;
    use support::flow::{env, sign_in, Opts};
    let redis = std::sync::Arc::new(RedisServer::start());
    let e = env(Opts {
        redis: Some(std::sync::Arc::clone(&redis)),
        ..Opts::default()
    })
    .await;
    let (mut one, mut two) = (Browser::new(), Browser::new());
    assert_eq!(
        sign_in(&e, &mut one, "ann@example.com", "/", 1)
            .await
            .status,
        303
    );
    assert_eq!(
        sign_in(&e, &mut two, "ann@example.com", "/", 2)
            .await
            .status,
        303
    );
    // The CLI's configuration: the gateway's store and key.
    let text = support::flow::config_text(
        &Opts {
            redis: Some(std::sync::Arc::clone(&redis)),
            ..Opts::default()
        },
        &e.up.url(),
        e.smtp.port(),
        &e.prefix,
    )
    .replace("$PORT", "1");

    let (code, out, err) = run(&text, &["sessions", "list", "--email", "Ann@Example.com"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "2 session(s) of ann@example.com", "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    for l in &lines[1..] {
        let (id, rest) = l.split_once("  started ").unwrap();
        assert!(
            id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{l}"
        );
        assert!(
            rest.contains(" UTC  ends ") && rest.ends_with(" UTC"),
            "{l}"
        );
    }

    let (code, out, _) = run(&text, &["sessions", "revoke", "--email", "ann@example.com"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "ended 2 session(s) of ann@example.com\n")
    );
    assert_eq!(e.gw.app.session_count("ann@example.com").await.unwrap(), 0);
    let (_, out, _) = run(&text, &["sessions", "list", "--email", "ann@example.com"]);
    assert_eq!(out, "0 session(s) of ann@example.com\n");

    // Everyone: two addresses, three sessions; the browsers are signed out.
    assert_eq!(
        sign_in(&e, &mut one, "ann@example.com", "/", 3)
            .await
            .status,
        303
    );
    assert_eq!(
        sign_in(&e, &mut two, "bob@example.com", "/", 1)
            .await
            .status,
        303
    );
    let mut three = Browser::new();
    assert_eq!(
        sign_in(&e, &mut three, "bob@example.com", "/", 2)
            .await
            .status,
        303
    );
    let (code, out, err) = run(&text, &["sessions", "revoke", "--all"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "ended 3 session(s) of 2 address(es)\n");
    for b in [&mut one, &mut two, &mut three] {
        let p = b.get(&e.url("/x")).await;
        assert_eq!(p.status, 303, "signed out everywhere");
    }
    // --all and --email do not go together; one of them is needed.
    let (code, _, err) = run(&text, &["sessions", "revoke"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn session_commands_say_they_need_redis() {
    let text = "[session]\nsecret_env = \"PORTCULLIS_SECRET\"\n[[route]]\npath = \"/\"\nupstream = \"demo\"\n";
    let (code, out, err) = run(text, &["sessions", "list", "--email", "a@example.com"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.contains("the memory store lives inside the running gateway; sessions list needs [store] backend = \"redis\""),
        "{err}"
    );
}
