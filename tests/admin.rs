//! The admin listener (`[admin] listen`) of the real binary: liveness
//! (`/ping`, `/healthz`) that checks nothing, readiness (`/ready`,
//! `/readyz`) that follows the store, 404 for anything else, 405 for
//! other methods; off unless configured.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::gateway::{free_port, GatewayProcess};

/// Status and body of one request on a fresh connection.
fn get(port: u16, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

fn config(admin_port: u16, store: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:$PORT\"\n[session]\nsecret_env = \"PORTCULLIS_SECRET\"\n\
         [mail]\ntransport = \"console\"\n{store}\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n\
         [[route]]\npath = \"/\"\nupstream = \"demo\"\n"
    )
}

#[test]
fn probes_answer_on_their_own_listener() {
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    let _gw = GatewayProcess::start(dir.path(), &config(admin, ""));
    for path in ["/ping", "/healthz"] {
        assert_eq!(get(admin, "GET", path), (200, "OK\n".to_string()), "{path}");
    }
    for path in ["/ready", "/readyz"] {
        assert_eq!(
            get(admin, "GET", path),
            (200, "ready\n".to_string()),
            "{path}"
        );
    }
    assert_eq!(get(admin, "HEAD", "/ping").0, 200);
    assert_eq!(get(admin, "POST", "/ping").0, 405);
    // Nothing else lives here: no route, no sign-in page.
    assert_eq!(get(admin, "GET", "/").0, 404);
    assert_eq!(get(admin, "GET", "/.portcullis/login").0, 404);
}

#[test]
fn readiness_follows_the_store_and_liveness_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    // A Redis that is not there: the gateway serves anyway (sign-in 503).
    let store = format!(
        "[store]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:{}\"\nconnect_timeout = \"200ms\"\nresponse_timeout = \"200ms\"\n",
        free_port()
    );
    let _gw = GatewayProcess::start(dir.path(), &config(admin, &store));
    assert_eq!(get(admin, "GET", "/ping"), (200, "OK\n".to_string()));
    assert_eq!(
        get(admin, "GET", "/readyz"),
        (
            503,
            r#"{"status":"unavailable","reason":"store"}"#.to_string()
        )
    );
}

#[test]
fn a_port_in_use_names_admin_listen() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        config(port, "").replace("$PORT", &free_port().to_string()),
    )
    .unwrap();
    let out = std::process::Command::new(support::gateway::binary())
        .arg("--config")
        .arg(&path)
        .env("PORTCULLIS_SECRET", support::gateway::SECRET)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("admin.listen"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}
