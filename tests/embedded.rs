//! The embedded default (what `cargo run --release` serves): the demo app
//! behind sign-in, mail printed and written to a folder. The whole journey
//! ends on the demo page showing the address.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use portcullis::config::{Config, MailTransport};
use support::browser::Browser;
use support::gateway::TestGateway;

#[tokio::test]
async fn embedded_default_journey_ends_on_the_demo_page() {
    let mail_dir = tempfile::tempdir().unwrap();
    let mut config = Config::embedded().unwrap();
    assert_eq!(
        config.server.listen,
        Some("127.0.0.1:8080".parse().unwrap())
    );
    // Same configuration, but on a port from the OS and mail in a temp dir.
    config.mail.transport = MailTransport::Console {
        dir: Some(mail_dir.path().to_path_buf()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let gw = TestGateway::start_on(listener, None, config).await;
    // Opened as http://localhost:PORT, like a person would.
    let origin = format!("http://localhost:{port}");
    let mut b = Browser::new();
    let first = b.get(&format!("{origin}/")).await;
    assert_eq!(first.status, 303);
    let login = b.get(&format!("{origin}{}", first.location())).await;
    assert!(login.body.contains("Sign in"));
    let csrf = login.field("csrf").unwrap();
    let rd = login.field("rd").unwrap();
    let asked = b
        .post(
            &origin,
            "/.portcullis/login",
            &[("email", "me@example.org"), ("rd", &rd), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(asked.status, 200);
    // The mail file: its link points at a configured host (localhost).
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        // Only finished messages: the transport writes `.NAME.eml.tmp` and
        // renames it to `NAME.eml` once it is complete.
        let files: Vec<_> = std::fs::read_dir(mail_dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        if let Some(f) = files.first() {
            break std::fs::read_to_string(f).unwrap();
        }
        assert!(Instant::now() < deadline, "no mail file");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let unfolded = text
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let start = unfolded
        .find("http://localhost:8080/.portcullis/verify?token=")
        .expect("link to localhost")
        + 47;
    let token: String = unfolded[start..].chars().take(43).collect();
    let confirm = b
        .get(&format!("{origin}/.portcullis/verify?token={token}"))
        .await;
    let csrf = confirm.field("csrf").unwrap();
    let done = b
        .post(
            &origin,
            "/.portcullis/verify",
            &[("token", &token), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(done.status, 303);
    let demo = b.get(&format!("{origin}{}", done.location())).await;
    assert_eq!(demo.status, 200);
    assert!(
        demo.body
            .contains("<strong id=\"email\">me@example.org</strong>"),
        "{}",
        demo.body
    );
    assert!(demo.body.contains("x-forwarded-email"));
    drop(gw);
}
