//! The forward-auth contract (`/.portcullis/auth` and
//! `/.portcullis/forward-auth`), asked the way nginx, Traefik and Caddy
//! ask it, against a real gateway with real sign-ins: the answers and
//! their exact headers for each decision, where the original request is
//! read from and whom it is believed from, which hosts may be asked
//! about, and routes that exist for forward-auth only. That it decides
//! as the proxy path does for every spelling is
//! `spelling::forward_auth_decides_as_the_proxy_path_for_every_spelling`;
//! real proxies in front are `tests/integrations.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::client::{raw, status_of};
use support::flow::{cookie_line, env, Env, Opts};

const T: Duration = Duration::from_secs(5);

const ROUTES: &str = "[[route]]\npath = \"/\"\nupstream = \"{up}\"\naccess = \"public\"\n\n\
     [[route]]\npath = \"/app\"\nupstream = \"{up}\"\n\n\
     [[route]]\npath = \"/admin\"\nupstream = \"{up}\"\nallow_emails = [\"boss@example.com\"]\n\n\
     [[route]]\nhost = \"tools.example.com\"\npath = \"/\"\n";

async fn gateway(trusted: bool) -> Env {
    env(Opts {
        server: if trusted {
            "trusted_proxies = [\"127.0.0.1/32\"]"
        } else {
            ""
        },
        only_routes: Some(ROUTES),
        ..Opts::default()
    })
    .await
}

/// The whole answer (head and body) to a forward-auth question.
async fn ask(e: &Env, endpoint: &str, headers: &str) -> String {
    let req = format!(
        "GET {endpoint} HTTP/1.1\r\nHost: auth.internal\r\n{headers}Connection: close\r\n\r\n"
    );
    raw(e.gw.addr, req.as_bytes(), T).await
}

/// One header's value in a raw answer (`None` when absent).
fn header(answer: &str, name: &str) -> Option<String> {
    let head = answer.split("\r\n\r\n").next().unwrap_or("");
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// `X-Original-URL` for `target` on the gateway's own public host.
fn original(e: &Env, target: &str) -> String {
    format!(
        "X-Original-URL: http://127.0.0.1:{}{target}\r\n",
        e.gw.addr.port()
    )
}

#[tokio::test]
async fn auth_answers_each_decision_with_its_headers() {
    let e = gateway(true).await;
    let staff = cookie_line(&e, "staff@example.com").await;
    let port = e.gw.addr.port();

    // No session: 401 with an absolute Location to the sign-in page, the
    // original target as `rd`.
    let a = ask(&e, "/.portcullis/auth", &original(&e, "/admin/x?y=1")).await;
    assert_eq!(status_of(&a), 401, "{a}");
    assert_eq!(
        header(&a, "location").as_deref(),
        Some(format!("http://127.0.0.1:{port}/.portcullis/login?rd=%2Fadmin%2Fx%3Fy%3D1").as_str())
    );
    assert_eq!(header(&a, "cache-control").as_deref(), Some("no-store"));
    assert_eq!(header(&a, "set-cookie"), None);
    assert_eq!(header(&a, "content-length").as_deref(), Some("0"));

    // Signed in and allowed: 200 with every identity header.
    let a = ask(
        &e,
        "/.portcullis/auth",
        &format!("{}{staff}", original(&e, "/app/page")),
    )
    .await;
    assert_eq!(status_of(&a), 200, "{a}");
    for name in [
        "x-forwarded-email",
        "x-forwarded-user",
        "x-auth-request-email",
        "x-auth-request-user",
    ] {
        assert_eq!(
            header(&a, name).as_deref(),
            Some("staff@example.com"),
            "{name}"
        );
    }
    assert_eq!(header(&a, "cache-control").as_deref(), Some("no-store"));
    assert_eq!(header(&a, "set-cookie"), None);
    // No body: nginx reads only an auth_request answer's head, and keeps
    // the connection for the next question only with nothing left unread
    // (with a body, each question opened a new connection: 0.37x of the
    // floor in scripts/bench-tls.sh, 0.92x without).
    assert_eq!(header(&a, "content-length").as_deref(), Some("0"));
    assert!(a.ends_with("\r\n\r\n"), "a body after the head: {a:?}");

    // Signed in, outside the route's allow list: 403, never a redirect.
    let a = ask(
        &e,
        "/.portcullis/auth",
        &format!("{}{staff}", original(&e, "/admin")),
    )
    .await;
    assert_eq!((status_of(&a), header(&a, "location")), (403, None), "{a}");

    // A public route: 200, every identity header present and empty, so a
    // proxy copying them overwrites whatever the client sent.
    let a = ask(&e, "/.portcullis/auth", &original(&e, "/welcome")).await;
    assert_eq!(status_of(&a), 200, "{a}");
    assert_eq!(header(&a, "x-forwarded-email").as_deref(), Some(""));
    assert_eq!(header(&a, "x-auth-request-user").as_deref(), Some(""));

    // HEAD is asked like GET.
    let req = format!(
        "HEAD /.portcullis/auth HTTP/1.1\r\nHost: auth.internal\r\n{}{staff}Connection: close\r\n\r\n",
        original(&e, "/app")
    );
    assert_eq!(status_of(&raw(e.gw.addr, req.as_bytes(), T).await), 200);
}

#[tokio::test]
async fn forward_auth_redirects_browser_navigations_only() {
    let e = gateway(true).await;
    let port = e.gw.addr.port();
    let xf = |method: &str| {
        format!(
            "X-Forwarded-Method: {method}\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: 127.0.0.1:{port}\r\nX-Forwarded-Uri: /app/x\r\n"
        )
    };
    let html = "Accept: text/html,application/xhtml+xml\r\n";
    let want = format!("http://127.0.0.1:{port}/.portcullis/login?rd=%2Fapp%2Fx");
    // A browser navigating: 302 for GET (and HEAD), 303 for a POST.
    for (method, status) in [("GET", 302), ("HEAD", 302), ("POST", 303)] {
        let a = ask(
            &e,
            "/.portcullis/forward-auth",
            &format!("{}{html}", xf(method)),
        )
        .await;
        assert_eq!(status_of(&a), status, "{method}: {a}");
        assert_eq!(header(&a, "location").as_deref(), Some(want.as_str()));
    }
    // An XHR, or a client not asking for HTML: 401.
    let a = ask(
        &e,
        "/.portcullis/forward-auth",
        &format!("{}{html}X-Requested-With: XMLHttpRequest\r\n", xf("GET")),
    )
    .await;
    assert_eq!(status_of(&a), 401, "{a}");
    let a = ask(
        &e,
        "/.portcullis/forward-auth",
        &format!("{}Accept: application/json\r\n", xf("GET")),
    )
    .await;
    assert_eq!(status_of(&a), 401, "{a}");
    // A client's own X-Original-URL (Caddy and Traefik pass every client
    // header on) is not read here: the X-Forwarded-* set decides.
    let a = ask(
        &e,
        "/.portcullis/forward-auth",
        &format!(
            "X-Original-URL: http://127.0.0.1:{port}/welcome\r\n{}{html}",
            xf("GET")
        ),
    )
    .await;
    assert_eq!(status_of(&a), 302, "{a}");
    assert_eq!(header(&a, "location").as_deref(), Some(want.as_str()));
    let a = ask(
        &e,
        "/.portcullis/forward-auth",
        &format!("X-Original-URL: http://127.0.0.1:{port}/welcome\r\n"),
    )
    .await;
    assert_eq!(status_of(&a), 400, "{a}");
    // The query of the auth request itself is not looked at (Caddy 2.6
    // forwards the client's).
    let a = ask(
        &e,
        "/.portcullis/forward-auth?rd=https://evil.test/&x=1",
        &format!("{}{html}", xf("GET")),
    )
    .await;
    assert_eq!(status_of(&a), 302, "{a}");
    assert_eq!(header(&a, "location").as_deref(), Some(want.as_str()));
}

#[tokio::test]
async fn the_original_request_is_believed_only_from_trusted_proxies_and_known_hosts() {
    let trusted = gateway(true).await;
    let boss = cookie_line(&trusted, "boss@example.com").await;
    // Nothing to decide about: 400.
    assert_eq!(
        status_of(&ask(&trusted, "/.portcullis/auth", &boss).await),
        400
    );
    // A host the gateway does not serve: 400, whatever the session.
    for url in [
        "http://evil.test/app",
        "http://127.0.0.1.evil.test/app",
        "http://x.test:/app",
        "http://127.0.0.1:99999/app",
        "ftp://127.0.0.1/app",
        "http://127.0.0.1app",
    ] {
        let a = ask(
            &trusted,
            "/.portcullis/auth",
            &format!("X-Original-URL: {url}\r\n{boss}"),
        )
        .await;
        assert_eq!(status_of(&a), 400, "{url}: {a}");
    }
    // A configured route host is one it serves.
    let a = ask(
        &trusted,
        "/.portcullis/auth",
        &format!("X-Original-URL: https://tools.example.com/x\r\n{boss}"),
    )
    .await;
    assert_eq!(status_of(&a), 200, "{a}");

    // The same question from an address that is not a trusted proxy: 400.
    let untrusted = gateway(false).await;
    let boss = cookie_line(&untrusted, "boss@example.com").await;
    let a = ask(
        &untrusted,
        "/.portcullis/auth",
        &format!("{}{boss}", original(&untrusted, "/app")),
    )
    .await;
    assert_eq!(status_of(&a), 400, "{a}");
}

#[tokio::test]
async fn a_route_without_an_upstream_answers_forward_auth_only() {
    let e = gateway(true).await;
    let staff = cookie_line(&e, "staff@example.com").await;
    // Through the gateway itself: nothing to forward to.
    let req =
        format!("GET /x HTTP/1.1\r\nHost: tools.example.com\r\n{staff}Connection: close\r\n\r\n");
    assert_eq!(status_of(&raw(e.gw.addr, req.as_bytes(), T).await), 404);
    // As a forward-auth question: decided.
    let a = ask(
        &e,
        "/.portcullis/auth",
        &format!("X-Original-URL: https://tools.example.com/x\r\n{staff}"),
    )
    .await;
    assert_eq!(status_of(&a), 200, "{a}");
    assert_eq!(
        header(&a, "x-forwarded-user").as_deref(),
        Some("staff@example.com")
    );
    let a = ask(
        &e,
        "/.portcullis/auth",
        "X-Original-URL: https://tools.example.com/x\r\n",
    )
    .await;
    assert_eq!(status_of(&a), 401, "{a}");
    assert_eq!(
        header(&a, "location").as_deref(),
        Some("https://tools.example.com/.portcullis/login?rd=%2Fx")
    );
}
