//! A route's prefix, `Host` and header rules against a real upstream:
//! `strip_prefix` and `rewrite_prefix` after the whole normalization (the
//! canonical path is what is matched and decided on; the rewritten path
//! is only what is forwarded, and no `..` can come out of a rewrite),
//! through a WebSocket upgrade and with forward-auth deciding on the
//! client's path; `preserve_host = false` and `upstream_host`;
//! `set_request_headers`, `remove_request_headers`,
//! `set_response_headers`, and the rules that may not name a header the
//! gateway owns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::client::{body_of, raw, status_of};
use support::flow::{cookie_line, env, Env, Opts};
use support::upstream::Seen;

const T: Duration = Duration::from_secs(5);

const ROUTES: &str = r#"
[[route]]
path = "/"
upstream = "{up}"

[[route]]
name = "grafana"
path = "/grafana"
upstream = "{up}"
access = "public"
strip_prefix = true

[[route]]
path = "/old"
upstream = "{up}"
access = "public"
rewrite_prefix = "/new/v2"

[[route]]
path = "/team"
upstream = "{up}"
strip_prefix = true
allow_emails = ["boss@example.com"]

[[route]]
path = "/own-host"
upstream = "{up}"
access = "public"
preserve_host = false

[[route]]
path = "/named-host"
upstream = "{up}"
access = "public"
upstream_host = "app.internal"

[[route]]
path = "/rules"
upstream = "{up}"
access = "public"
set_request_headers = { "X-App-Tenant" = "acme", "Accept-Language" = "en" }
remove_request_headers = ["X-Debug"]
set_response_headers = { "Strict-Transport-Security" = "max-age=63072000", "X-Frame-Options" = "DENY" }
"#;

async fn gateway() -> Env {
    env(Opts {
        server: "trusted_proxies = [\"127.0.0.1/32\"]",
        only_routes: Some(ROUTES),
        ..Opts::default()
    })
    .await
}

async fn get(e: &Env, target: &str, headers: &str) -> String {
    let req =
        format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n");
    raw(e.gw.addr, req.as_bytes(), T).await
}

fn seen(answer: &str) -> Seen {
    assert_eq!(status_of(answer), 200, "{answer}");
    serde_json::from_str(body_of(answer)).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

fn header(answer: &str, name: &str) -> Option<String> {
    let head = answer.split("\r\n\r\n").next().unwrap_or("");
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

#[tokio::test]
async fn strip_prefix_forwards_the_rest_of_the_canonical_path() {
    let e = gateway().await;
    let cases = [
        ("/grafana/api/x?q=1", "/api/x?q=1"),
        ("/grafana", "/"),
        ("/grafana/", "/"),
        // Normalized first: dot segments and escapes are resolved, then
        // the prefix comes off.
        ("/grafana/a/%2e%2e/b", "/b"),
        ("/grafana/a/%2E/b/./c", "/a/b/c"),
        ("/grafana/%7Euser", "/~user"),
    ];
    for (sent, want) in cases {
        let s = seen(&get(&e, sent, "X-Forwarded-Prefix: /evil\r\n").await);
        assert_eq!(s.target, want, "{sent}");
        // The gateway's own X-Forwarded-Prefix, never the client's.
        assert_eq!(s.all("x-forwarded-prefix"), vec!["/grafana"], "{sent}");
    }
}

#[tokio::test]
async fn a_dot_segment_cannot_carry_a_path_out_of_a_stripped_route() {
    let e = gateway().await;
    // `/grafana/../admin` is `/admin`: the protected catch-all decides,
    // whatever the stripped route would have done.
    for sent in [
        "/grafana/../admin",
        "/grafana/%2e%2e/admin",
        "/grafana/.%2E/admin",
    ] {
        let a = get(&e, sent, "").await;
        assert_eq!(status_of(&a), 401, "{sent}: {a}");
    }
    // What stays refused before any route: an encoded slash or `..;`.
    for sent in ["/grafana/..%2fadmin", "/grafana/..;/admin"] {
        let a = get(&e, sent, "").await;
        assert_eq!(status_of(&a), 400, "{sent}: {a}");
    }
    assert_eq!(e.up.count(), 0, "nothing reached the upstream");
}

#[tokio::test]
async fn rewrite_prefix_replaces_the_route_path() {
    let e = gateway().await;
    for (sent, want) in [
        ("/old", "/new/v2"),
        ("/old/", "/new/v2/"),
        ("/old/a/b?c=d", "/new/v2/a/b?c=d"),
        ("/old/x/../y", "/new/v2/y"),
    ] {
        let s = seen(&get(&e, sent, "").await);
        assert_eq!(s.target, want, "{sent}");
        assert_eq!(s.one("x-forwarded-prefix"), None, "{sent}");
    }
}

#[test]
fn a_rewrite_prefix_with_dot_segments_is_a_config_error() {
    for bad in ["/a/../b", "/a/./b", "a", "/a/", "/a%2fb"] {
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:8080\"\n[[route]]\npath = \"/x\"\nupstream = \"http://127.0.0.1:3000\"\nrewrite_prefix = {bad:?}\n"
        );
        let e = portcullis::config::Config::from_toml_str(&text, "t.toml", &[]).unwrap_err();
        assert_eq!(e.problems[0].key, "route[0].rewrite_prefix", "{bad}");
        assert_eq!(
            e.problems[0].message,
            format!("{bad:?} is not a clean absolute path like \"/app\"")
        );
    }
}

#[tokio::test]
async fn host_is_the_clients_the_upstreams_or_a_given_name() {
    let e = gateway().await;
    let s = seen(&get(&e, "/grafana/x", "").await);
    assert_eq!(s.one("host").as_deref(), Some("127.0.0.1"));
    let s = seen(&get(&e, "/own-host/x", "").await);
    assert_eq!(s.one("host"), Some(e.up.addr.to_string()));
    let s = seen(&get(&e, "/named-host/x", "").await);
    assert_eq!(s.one("host").as_deref(), Some("app.internal"));
    // The client's Host is still what X-Forwarded-Host says (from a
    // trusted proxy) and what the route was chosen by.
    assert_eq!(s.one("x-forwarded-host").as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn websocket_through_a_stripped_prefix() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let e = gateway().await;
    let url = format!("ws://127.0.0.1:{}/grafana/live/ws", e.gw.addr.port());
    let stream = support::client::connect(e.gw.addr).await;
    let (mut ws, resp) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws.send(Message::text("ping")).await.unwrap();
    let back = ws.next().await.unwrap().unwrap();
    assert_eq!(back.into_text().unwrap().as_str(), "ping");
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn a_stripped_protected_route_decides_on_the_clients_path() {
    let e = gateway().await;
    let boss = cookie_line(&e, "boss@example.com").await;
    let staff = cookie_line(&e, "staff@example.com").await;
    // The proxy path: the allow list of /team applies, the upstream sees
    // the stripped path.
    // The prefix comes off however the client spelt it: any case,
    // `;parameters`, trailing dots (each reading is authorized).
    for (sent, want) in [
        ("/team/page", "/page"),
        ("/TEAM/page", "/page"),
        ("//team//page", "/page"),
        ("/team;v=1/page", "/page"),
        ("/team./page", "/page"),
        ("/Team", "/"),
    ] {
        let s = seen(&get(&e, sent, &boss).await);
        assert_eq!(s.target, want, "{sent}");
        assert_eq!(s.one("x-forwarded-prefix").as_deref(), Some("/team"));
        assert_eq!(
            s.one("x-forwarded-email").as_deref(),
            Some("boss@example.com")
        );
    }
    let a = get(&e, "/team/page", &staff).await;
    assert_eq!(status_of(&a), 403, "{a}");
    // Forward-auth asks about the client's path, /team/page: the same
    // decisions, never those of the stripped `/page` (the catch-all,
    // where staff may go).
    let port = e.gw.addr.port();
    let ask = |cookie: &str| {
        format!(
            "GET /.portcullis/auth HTTP/1.1\r\nHost: auth.internal\r\nX-Original-URL: http://127.0.0.1:{port}/team/page\r\n{cookie}Connection: close\r\n\r\n"
        )
    };
    let a = raw(e.gw.addr, ask(&boss).as_bytes(), T).await;
    assert_eq!(status_of(&a), 200, "{a}");
    let a = raw(e.gw.addr, ask(&staff).as_bytes(), T).await;
    assert_eq!(status_of(&a), 403, "{a}");
    let a = raw(e.gw.addr, ask("").as_bytes(), T).await;
    assert_eq!(status_of(&a), 401, "{a}");
}

#[tokio::test]
async fn header_rules_set_remove_and_answer() {
    let e = gateway().await;
    let a = get(
        &e,
        "/rules/x",
        "X-App-Tenant: spoofed\r\nx_app_tenant: spoofed-too\r\nX-Debug: 1\r\nX_Debug: 2\r\nAccept-Language: de\r\nX-Kept: yes\r\n",
    )
    .await;
    let s = seen(&a);
    assert_eq!(s.all("x-app-tenant"), vec!["acme"]);
    assert_eq!(s.all("x_app_tenant"), Vec::<String>::new());
    assert_eq!(s.all("accept-language"), vec!["en"]);
    assert_eq!(s.all("x-debug"), Vec::<String>::new());
    assert_eq!(s.all("x_debug"), Vec::<String>::new());
    assert_eq!(s.one("x-kept").as_deref(), Some("yes"));
    assert_eq!(
        header(&a, "strict-transport-security").as_deref(),
        Some("max-age=63072000")
    );
    assert_eq!(header(&a, "x-frame-options").as_deref(), Some("DENY"));
    // Other routes are untouched.
    let a = get(&e, "/grafana/x", "X-Debug: 1\r\n").await;
    assert_eq!(seen(&a).one("x-debug").as_deref(), Some("1"));
    assert_eq!(header(&a, "x-frame-options"), None);
}

fn config_error(rule: &str) -> (String, String) {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:8080\"\nstrip_headers = [\"X-Secret-Token\"]\n[[route]]\npath = \"/\"\nupstream = \"http://127.0.0.1:3000\"\n{rule}\n"
    );
    let e = portcullis::config::Config::from_toml_str(&text, "t.toml", &[]).unwrap_err();
    assert_eq!(e.problems.len(), 1, "{e}");
    (e.problems[0].key.clone(), e.problems[0].message.clone())
}

#[test]
fn a_rule_naming_a_header_the_gateway_owns_is_a_config_error() {
    assert_eq!(
        config_error("set_request_headers = { \"X-Forwarded-Email\" = \"boss@example.com\" }"),
        (
            "route[0].set_request_headers".to_string(),
            "\"X-Forwarded-Email\" is an identity header: only the gateway sets it".to_string()
        )
    );
    assert_eq!(
        config_error("remove_request_headers = [\"x_auth_request_user\"]"),
        (
            "route[0].remove_request_headers[0]".to_string(),
            "\"x_auth_request_user\" is an identity header: only the gateway sets it".to_string()
        )
    );
    assert_eq!(
        config_error("set_request_headers = { \"X-Secret-Token\" = \"t\" }"),
        (
            "route[0].set_request_headers".to_string(),
            "\"X-Secret-Token\" is in server.strip_headers: no rule may send it".to_string()
        )
    );
    assert_eq!(
        config_error("set_request_headers = { \"X-Forwarded-For\" = \"1.2.3.4\" }"),
        (
            "route[0].set_request_headers".to_string(),
            "\"X-Forwarded-For\" is set by the gateway itself".to_string()
        )
    );
    assert_eq!(
        config_error("set_request_headers = { \"Content-Length\" = \"0\" }"),
        (
            "route[0].set_request_headers".to_string(),
            "\"Content-Length\" is a framing or hop-by-hop header".to_string()
        )
    );
    assert_eq!(
        config_error("set_response_headers = { \"Set-Cookie\" = \"_portcullis=x\" }"),
        (
            "route[0].set_response_headers".to_string(),
            "\"Set-Cookie\" cannot be set by a rule (the gateway's cookies)".to_string()
        )
    );
}
