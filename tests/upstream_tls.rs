//! HTTPS upstreams against a real TLS server with an rcgen CA: verified
//! with `tls_ca_file`, kept alive in the pool, refused with a 502 and a
//! log line naming the route when the certificate is not trusted, mTLS
//! when the upstream asks for a client certificate, and the name checked
//! and sent as SNI (`tls_server_name`, else the upstream's host).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use support::client::http;
use support::gateway::{GatewayProcess, TestGateway};
use support::pki::{server_config, Ca};
use support::upstream::{Seen, Upstream};

fn config(route: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:$PORT"
public_url = "http://127.0.0.1:$PORT"

[session]
secret_env = "PORTCULLIS_SECRET"

[[route]]
name = "secure-app"
path = "/"
access = "public"
{route}
"#
    )
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test]
async fn an_https_upstream_is_verified_with_its_ca_and_kept_alive() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Test CA");
    let leaf = ca.server(&["127.0.0.1", "localhost"]);
    let (up, handshakes) = Upstream::start_tls(server_config(&leaf, &ca, None)).await;
    let ca_file = ca.write(dir.path(), "ca");
    let gw = TestGateway::start(&config(&format!(
        "upstream = \"https://127.0.0.1:{}\"\ntls_ca_file = {:?}",
        up.addr.port(),
        path_str(&ca_file)
    )))
    .await;
    let client = http();
    for i in 0..3 {
        let resp = client
            .get(gw.url(&format!("/x/{i}?q=1")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let seen: Seen = resp.json().await.unwrap();
        assert_eq!(seen.target, format!("/x/{i}?q=1"));
        // The client's Host, as for a plain upstream.
        assert_eq!(
            seen.one("host").unwrap(),
            format!("127.0.0.1:{}", gw.addr.port())
        );
    }
    let shakes = handshakes.lock().unwrap().clone();
    // One connection, kept alive: one handshake for three requests.
    assert_eq!(shakes.len(), 1, "{shakes:?}");
    assert!(shakes[0].ok);
    // An IP address is checked against the certificate, not sent as SNI.
    assert_eq!(shakes[0].sni, None);
    assert!(!shakes[0].client_cert);
}

#[tokio::test]
async fn an_upstream_certificate_from_another_ca_is_502_and_logged_with_the_route() {
    let dir = tempfile::tempdir().unwrap();
    let trusted = Ca::new("Trusted CA");
    let other = Ca::new("Other CA");
    let leaf = other.server(&["127.0.0.1"]);
    let (up, handshakes) = Upstream::start_tls(server_config(&leaf, &other, None)).await;
    let ca_file = trusted.write(dir.path(), "ca");
    let gw = GatewayProcess::start(
        dir.path(),
        &config(&format!(
            "upstream = \"https://127.0.0.1:{}\"\ntls_ca_file = {:?}",
            up.addr.port(),
            path_str(&ca_file)
        )),
    );
    let resp = http()
        .get(gw.url("/page"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let page = resp.text().await.unwrap();
    assert!(page.contains("502"), "{page}");
    assert_eq!(up.count(), 0, "nothing reached the untrusted upstream");
    let log = std::fs::read_to_string(&gw.log).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("request failed"))
        .unwrap_or_else(|| panic!("no failure line:\n{log}"));
    assert!(line.contains("route=secure-app"), "{line}");
    assert!(
        line.contains("TLS handshake with the upstream failed") && line.contains("UnknownIssuer"),
        "{line}"
    );
    assert!(handshakes.lock().unwrap().iter().all(|h| !h.ok));
}

#[tokio::test]
async fn mtls_an_upstream_that_requires_a_client_certificate_gets_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Server CA");
    let client_ca = Ca::new("Client CA");
    let leaf = ca.server(&["127.0.0.1"]);
    let (up, handshakes) = Upstream::start_tls(server_config(&leaf, &ca, Some(&client_ca))).await;
    let ca_file = ca.write(dir.path(), "ca");
    let (cert, key) = client_ca.client("portcullis").write(dir.path(), "client");

    // Without a client certificate the upstream refuses the connection.
    let without = TestGateway::start(&config(&format!(
        "upstream = \"https://127.0.0.1:{}\"\ntls_ca_file = {:?}",
        up.addr.port(),
        path_str(&ca_file)
    )))
    .await;
    let resp = http().get(without.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 502);
    assert_eq!(up.count(), 0);

    let with = TestGateway::start(&config(&format!(
        "upstream = \"https://127.0.0.1:{}\"\ntls_ca_file = {:?}\ntls_client_cert_file = {:?}\ntls_client_key_file = {:?}",
        up.addr.port(),
        path_str(&ca_file),
        path_str(&cert),
        path_str(&key)
    )))
    .await;
    let resp = http().get(with.url("/m")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(up.count(), 1);
    let shakes = handshakes.lock().unwrap().clone();
    assert!(
        shakes.iter().any(|h| h.ok && h.client_cert),
        "no handshake with a client certificate: {shakes:?}"
    );
}

#[tokio::test]
async fn sni_is_tls_server_name_else_the_upstream_host() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Test CA");
    let leaf = ca.server(&["app.internal", "localhost"]);
    let (up, handshakes) = Upstream::start_tls(server_config(&leaf, &ca, None)).await;
    let ca_file = ca.write(dir.path(), "ca");

    // An address without the name: the certificate is checked against
    // tls_server_name, which is also sent as SNI.
    let named = TestGateway::start(&config(&format!(
        "upstream = \"https://127.0.0.1:{}\"\ntls_ca_file = {:?}\ntls_server_name = \"app.internal\"",
        up.addr.port(),
        path_str(&ca_file)
    )))
    .await;
    let resp = http().get(named.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        handshakes.lock().unwrap().last().unwrap().sni.as_deref(),
        Some("app.internal")
    );

    // Without it: the upstream's host name.
    let by_host = TestGateway::start(&config(&format!(
        "upstream = \"https://localhost:{}\"\ntls_ca_file = {:?}",
        up.addr.port(),
        path_str(&ca_file)
    )))
    .await;
    let resp = http().get(by_host.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        handshakes.lock().unwrap().last().unwrap().sni.as_deref(),
        Some("localhost")
    );

    // A name the certificate does not carry is refused.
    let wrong = TestGateway::start(&config(&format!(
        "upstream = \"https://127.0.0.1:{}\"\ntls_ca_file = {:?}\ntls_server_name = \"other.internal\"",
        up.addr.port(),
        path_str(&ca_file)
    )))
    .await;
    let before = up.count();
    let resp = http().get(wrong.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 502);
    assert_eq!(up.count(), before);
    tokio::time::sleep(Duration::from_millis(0)).await;
}

#[test]
fn tls_keys_without_an_https_upstream_and_half_a_client_pair_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Test CA");
    let ca_file = ca.write(dir.path(), "ca");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:8080\"\n[[route]]\npath = \"/\"\nupstream = \"http://127.0.0.1:3000\"\ntls_ca_file = {:?}\n",
        path_str(&ca_file)
    );
    let e = portcullis::config::Config::from_toml_str(&text, "t.toml", &[]).unwrap_err();
    assert_eq!(
        e.problems[0].message,
        "is set but the route has no https:// upstream"
    );
    assert_eq!(e.problems[0].key, "route[0].tls_ca_file");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:8080\"\n[[route]]\npath = \"/\"\nupstream = \"https://127.0.0.1:3000\"\ntls_ca_file = {:?}\ntls_client_cert_file = {:?}\n",
        path_str(&ca_file),
        path_str(&ca_file)
    );
    let e = portcullis::config::Config::from_toml_str(&text, "t.toml", &[]).unwrap_err();
    assert_eq!(e.problems[0].key, "route[0].tls_client_key_file");
    assert_eq!(
        e.problems[0].message,
        "is missing: tls_client_cert_file needs it"
    );
}

/// An HTTPS upstream that sends a second answer nobody asked for right
/// after the first, in the same TLS record: the connection must not be
/// reused, so the next client never gets that answer.
#[tokio::test]
async fn a_second_answer_on_a_tls_connection_never_reaches_the_next_client() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Test CA");
    let leaf = ca.server(&["127.0.0.1"]);
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config(&leaf, &ca, None));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok\
                          HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nwrong",
                    )
                    .await;
                let _ = tls.flush().await;
                // Keep the connection open: the gateway must close it.
                let _ = tls.read(&mut buf).await;
            });
        }
    });
    let ca_file = ca.write(dir.path(), "ca");
    let gw = TestGateway::start(&config(&format!(
        "upstream = \"https://127.0.0.1:{port}\"\ntls_ca_file = {:?}",
        path_str(&ca_file)
    )))
    .await;
    let client = http();
    for _ in 0..4 {
        let resp = client.get(gw.url("/")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "ok");
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 4);
}
