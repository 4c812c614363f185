//! Share links against a real gateway, a real Redis, a real upstream and
//! the real `portcullis share` command: opening a link sets a cookie
//! scoped to the shared path and 303s there (the upstream never sees the
//! token), only the link's host, methods and path pass (`--prefix`: the
//! sub-paths, never a sibling such as `/reports/66x`), no session is
//! made, a tampered token is refused, `share revoke` stops it from the
//! next request, `share list` shows it, forward-auth answers alike, and
//! the whole feature is off (404) unless `[share] enabled`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::browser::{Browser, Page};
use support::flow::{config_text, env, Env, Opts};
use support::gateway::{run_cli, SECRET};
use support::redis::RedisServer;

struct Shared {
    e: Env,
    redis: Arc<RedisServer>,
    /// The configuration the command line uses: the gateway's own.
    text: String,
    audit: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn gateway(share: &str) -> Shared {
    let redis = Arc::new(RedisServer::start());
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let extra = format!("{share}\n[log]\naudit_file = \"{}\"\n", audit.display());
    let extra: &'static str = Box::leak(extra.into_boxed_str());
    let opts = || Opts {
        server: "trusted_proxies = [\"127.0.0.1/32\"]",
        routes: extra,
        redis: Some(Arc::clone(&redis)),
        ..Opts::default()
    };
    let e = env(opts()).await;
    let text = config_text(&opts(), &e.up.url(), e.smtp.port(), &e.prefix)
        .replace("$PORT", &e.gw.addr.port().to_string());
    Shared {
        e,
        redis,
        text,
        audit,
        _dir: dir,
    }
}

impl Shared {
    /// `portcullis share ARGS`: the URL and the id.
    fn share(&self, args: &[&str]) -> (String, String) {
        let mut all = vec!["share"];
        all.extend_from_slice(args);
        let (code, out, err) = run_cli(&self.text, &all);
        assert_eq!(code, 0, "{err}");
        let mut lines = out.lines();
        let url = lines.next().unwrap().to_string();
        let id = lines
            .next()
            .unwrap()
            .strip_prefix("id ")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        assert!(url.contains("/.portcullis/share/ps1."), "{url}");
        (url, id)
    }

    fn sessions(&self) -> usize {
        let out = self
            .redis
            .cli(&["--scan", "--pattern", &format!("{}ses:*", self.e.prefix)]);
        out.lines().filter(|l| !l.is_empty()).count()
    }
}

/// Opens a link in a fresh browser: the 303 answer and the browser.
async fn open(url: &str) -> (Page, Browser) {
    let mut b = Browser::new();
    let page = b.get(url).await;
    (page, b)
}

/// Whether the upstream saw `needle` anywhere in its last request.
fn upstream_saw(e: &Env, needle: &str) -> bool {
    let seen = e.up.last().unwrap();
    seen.target.contains(needle)
        || seen
            .headers
            .iter()
            .any(|(k, v)| k.contains(needle) || v.contains(needle))
}

const ON: &str = "[share]\nenabled = true";

#[tokio::test]
async fn a_link_opens_its_path_and_nothing_else() {
    let s = gateway(ON).await;
    let e = &s.e;
    let (url, id) = s.share(&[
        "--path",
        "/reports/66",
        "--ttl",
        "1h",
        "--email",
        "Guest@Example.com",
    ]);
    assert_eq!(id.len(), 16);
    assert!(
        url.starts_with(&format!("{}/.portcullis/share/ps1.", e.origin)),
        "{url}"
    );
    let token = url.rsplit('/').next().unwrap().to_string();

    // Opening: a cookie for that path only, 303 there; nothing upstream.
    let before = e.up.count();
    let (page, mut b) = open(&url).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), "/reports/66");
    assert_eq!(e.up.count(), before);
    let cookie = page.set_cookies().into_iter().next().unwrap();
    assert!(
        cookie.starts_with(&format!("portcullis-share={token};")),
        "{cookie}"
    );
    for attr in ["Path=/reports/66", "HttpOnly", "SameSite=Lax"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    let age: u64 = cookie
        .split("Max-Age=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3590..=3600).contains(&age), "{cookie}");

    // The path: the upstream is told it is a share, with the address, and
    // never sees the token.
    b.jar.insert("app".into(), "1".into());
    let p = b.get(&e.url("/reports/66?page=2")).await;
    assert_eq!(p.status, 200, "{}", p.body);
    let seen = e.up.last().unwrap();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.target, "/reports/66?page=2");
    assert_eq!(seen.one("x-portcullis-share"), Some(id.clone()));
    assert_eq!(
        seen.one("x-forwarded-email").as_deref(),
        Some("guest@example.com")
    );
    assert_eq!(
        seen.one("x-forwarded-user").as_deref(),
        Some("guest@example.com")
    );
    assert_eq!(seen.one("cookie").as_deref(), Some("app=1"));
    assert!(!upstream_saw(e, "ps1."), "{seen:?}");
    assert!(!upstream_saw(e, &token[10..40]));
    assert_eq!(b.fetch(&e.url("/reports/66")).await.status, 200);

    // Another path (a sibling, a sub-path, another case), another method:
    // as without a session, and nothing upstream.
    let before = e.up.count();
    for path in [
        "/reports/67",
        "/reports/66x",
        "/reports/66/sub",
        "/Reports/66",
        "/reports/66;x",
    ] {
        let p = b.get(&e.url(path)).await;
        assert_eq!(p.status, 303, "{path}");
        assert!(p.location().starts_with("/.portcullis/login?rd="), "{path}");
    }
    let post = b
        .post_with(&e.origin, "/reports/66", &[("a", "b")], &[])
        .await;
    assert_eq!(post.status, 401);
    assert_eq!(e.up.count(), before);
    // A client's own X-Portcullis-Share never reaches the upstream.
    let mut anon = Browser::new();
    let p = support::flow::get_with(
        &mut anon,
        &e.url("/public/x"),
        &[
            ("X-Portcullis-Share", "forged"),
            ("x_portcullis_share", "forged"),
        ],
    )
    .await;
    assert_eq!(p.status, 200);
    let seen = e.up.last().unwrap();
    assert_eq!(seen.all("x-portcullis-share"), Vec::<String>::new());
    assert_eq!(seen.all("x_portcullis_share"), Vec::<String>::new());

    // Never a session; opening again does not use the link up.
    assert_eq!(s.sessions(), 0);
    let (again, _) = open(&url).await;
    assert_eq!(again.status, 303);

    // Forward-auth answers the same for the same cookie.
    let cookie_header = format!("portcullis-share={token}");
    let ask = |path: &str, method: &str| {
        support::client::http()
            .get(e.url("/.portcullis/auth"))
            .header("x-original-url", e.url(path))
            .header("x-original-method", method)
            .header("cookie", &cookie_header)
            .send()
    };
    let r = ask("/reports/66", "GET").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-portcullis-share"], id.as_str());
    assert_eq!(r.headers()["x-forwarded-email"], "guest@example.com");
    assert_eq!(ask("/reports/66x", "GET").await.unwrap().status(), 401);
    assert_eq!(ask("/reports/66", "POST").await.unwrap().status(), 401);

    // The audit trail: created (by the command) and used, never the token.
    let log = std::fs::read_to_string(&s.audit).unwrap();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let created = events
        .iter()
        .find(|v| v["event"] == "share.created")
        .unwrap();
    assert_eq!(created["email"], "guest@example.com");
    assert_eq!(created["reason"], format!("share {id} /reports/66"));
    let used = events.iter().filter(|v| v["event"] == "share.used").count();
    assert_eq!(used, 2);
    assert!(!log.contains("ps1."));
}

#[tokio::test]
async fn prefix_links_cover_sub_paths_but_not_siblings() {
    let s = gateway(ON).await;
    let e = &s.e;
    let (url, id) = s.share(&["--path", "/reports/66", "--prefix", "--method", "GET"]);
    let (page, mut b) = open(&url).await;
    assert_eq!(page.status, 303);
    for path in ["/reports/66", "/reports/66/", "/reports/66/a/b"] {
        let p = b.fetch(&e.url(path)).await;
        assert_eq!(p.status, 200, "{path}");
        assert_eq!(
            e.up.last().unwrap().one("x-portcullis-share"),
            Some(id.clone())
        );
        assert_eq!(
            e.up.last().unwrap().one("x-forwarded-user"),
            Some(format!("share:{id}"))
        );
        assert_eq!(
            e.up.last().unwrap().all("x-forwarded-email"),
            Vec::<String>::new()
        );
    }
    for path in ["/reports/66x", "/reports/6", "/reports", "/reports;x/66/a"] {
        assert_eq!(b.fetch(&e.url(path)).await.status, 401, "{path}");
    }
    // GET also opens HEAD; nothing else.
    let head = support::client::http()
        .head(e.url("/reports/66/a"))
        .header(
            "cookie",
            format!("portcullis-share={}", b.jar["portcullis-share"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    let del = support::client::http()
        .delete(e.url("/reports/66/a"))
        .header(
            "cookie",
            format!("portcullis-share={}", b.jar["portcullis-share"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 401);

    // A link for POST only (a webhook): POST passes, GET does not.
    let (url, _) = s.share(&["--path", "/hooks/build", "--method", "POST"]);
    let (_, mut hook) = open(&url).await;
    let p = hook
        .post_with(&e.origin, "/hooks/build", &[("x", "1")], &[])
        .await;
    assert_eq!(p.status, 200);
    assert_eq!(e.up.last().unwrap().method, "POST");
    assert_eq!(hook.fetch(&e.url("/hooks/build")).await.status, 401);
}

#[tokio::test]
async fn tampered_and_other_host_links_are_refused() {
    let s = gateway(ON).await;
    let e = &s.e;
    let (url, _) = s.share(&["--path", "/reports/66"]);
    let token = url.rsplit('/').next().unwrap().to_string();
    // One character changed in the payload (the scope), or in the MAC.
    let (payload, mac) = token.rsplit_once('.').unwrap();
    let flip = |s: &str, at: usize| {
        let mut b = s.as_bytes().to_vec();
        b[at] = if b[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap()
    };
    for bad in [
        format!("{}.{mac}", flip(payload, 12)),
        format!("{payload}.{}", flip(mac, 3)),
        format!("{payload}."),
        "ps1.e30.AAAA".to_string(),
    ] {
        let (page, _) = open(&e.url(&format!("/.portcullis/share/{bad}"))).await;
        assert_eq!(page.status, 404, "{bad}");
        assert!(page.body.contains("This share link is not valid here."));
        assert!(page.set_cookies().is_empty());
        // As a cookie: as without one.
        let mut b = Browser::new();
        b.jar.insert("portcullis-share".into(), bad.clone());
        assert_eq!(b.fetch(&e.url("/reports/66")).await.status, 401);
    }
    // A link for another host: refused where it is opened, and its cookie
    // covers nothing here.
    let (other, _) = s.share(&["--path", "/reports/66", "--host", "other.example"]);
    let other_token = other.rsplit('/').next().unwrap();
    let (page, _) = open(&e.url(&format!("/.portcullis/share/{other_token}"))).await;
    assert_eq!(page.status, 404);
    let mut b = Browser::new();
    b.jar.insert("portcullis-share".into(), other_token.into());
    assert_eq!(b.fetch(&e.url("/reports/66")).await.status, 401);
    // The valid one still works.
    let (_, mut good) = open(&url).await;
    assert_eq!(good.fetch(&e.url("/reports/66")).await.status, 200);
    assert_eq!(s.sessions(), 0);
}

#[tokio::test]
async fn revoked_links_stop_within_a_second_and_list_says_so() {
    let s = gateway(ON).await;
    let e = &s.e;
    let (url, id) = s.share(&["--path", "/reports/66", "--email", "ann@example.com"]);
    let (url2, id2) = s.share(&["--path", "/reports/7", "--prefix"]);
    let (code, out, err) = run_cli(&s.text, &["share", "list"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "2 share link(s)", "{out}");
    let line = |id: &str| {
        let out = run_cli(&s.text, &["share", "list"]).1;
        out.lines().find(|l| l.starts_with(id)).unwrap().to_string()
    };
    let one = line(&id);
    assert!(
        one.starts_with(&format!("{id}  127.0.0.1/reports/66  GET,HEAD  until ")),
        "{out}"
    );
    assert!(one.ends_with(" UTC  ann@example.com"), "{out}");
    let two = line(&id2);
    assert!(
        two.starts_with(&format!("{id2}  127.0.0.1/reports/7/*  GET,HEAD  until ")),
        "{out}"
    );
    assert!(two.ends_with(" UTC  -"), "{out}");

    let (_, mut b) = open(&url).await;
    assert_eq!(b.fetch(&e.url("/reports/66")).await.status, 200);
    let (_, mut b2) = open(&url2).await;

    let (code, out, err) = run_cli(&s.text, &["share", "revoke", &id]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("revoked {id} (/reports/66): refused from the next request on\n")
    );
    let revoked_at = Instant::now();
    let status = b.fetch(&e.url("/reports/66")).await.status;
    assert_eq!(status, 401);
    assert!(revoked_at.elapsed() < Duration::from_secs(1));
    // The link itself says it has ended; the other link still works.
    let (page, _) = open(&url).await;
    assert_eq!(page.status, 410);
    assert!(page
        .body
        .contains("This share link has ended or was withdrawn."));
    assert_eq!(b2.fetch(&e.url("/reports/7/x")).await.status, 200);

    assert!(line(&id).ends_with("  ann@example.com  REVOKED"));
    assert!(line(&id2).ends_with(" UTC  -"));
    let (code, _, err) = run_cli(&s.text, &["share", "revoke", "0000000000000000"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no live share link has the id \"0000000000000000\""),
        "{err}"
    );
    let log = std::fs::read_to_string(&s.audit).unwrap();
    assert!(log.contains("\"event\":\"share.revoked\""), "{log}");
}

#[tokio::test]
async fn share_links_are_off_by_default() {
    let s = gateway("").await;
    let e = &s.e;
    // The endpoint does not exist.
    let (page, _) = open(&e.url("/.portcullis/share/ps1.e30.AAAA")).await;
    assert_eq!(page.status, 404);
    // A token made with the gateway's own key is not read either.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let grant = portcullis::share::Grant {
        id: "0123456789abcdef".into(),
        host: "127.0.0.1".into(),
        path: "/reports/66".into(),
        prefix: false,
        methods: vec!["GET".into()],
        iat: now,
        exp: now + 600,
        email: None,
    };
    let token = grant.mint(&portcullis::crypto::Key::new(SECRET.as_bytes()));
    let (page, _) = open(&e.url(&format!("/.portcullis/share/{token}"))).await;
    assert_eq!(page.status, 404);
    let mut b = Browser::new();
    b.jar.insert("portcullis-share".into(), token);
    assert_eq!(b.fetch(&e.url("/reports/66")).await.status, 401);
    // The command refuses to make one.
    let (code, out, err) = run_cli(&s.text, &["share", "--path", "/reports/66"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.contains("share links are off: set [share] enabled = true"),
        "{err}"
    );
}

#[test]
fn list_and_revoke_need_redis() {
    let text = "[session]\nsecret_env = \"PORTCULLIS_SECRET\"\n[share]\nenabled = true\n\
                [[route]]\npath = \"/\"\nupstream = \"demo\"\n";
    for args in [
        &["share", "list"][..],
        &["share", "revoke", "0123456789abcdef"][..],
    ] {
        let (code, out, err) = run_cli(text, args);
        assert_eq!((code, out.as_str()), (1, ""), "{args:?}");
        assert!(
            err.contains("needs [store] backend = \"redis\": the memory store lives inside the running gateway"),
            "{err}"
        );
    }
    // Making one works (its scope is in its MAC), and says what it cannot do.
    let (code, out, err) = run_cli(text, &["share", "--path", "/x", "--ttl", "2h"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("http://localhost:8080/.portcullis/share/ps1."),
        "{out}"
    );
    assert!(out.contains("note: with the memory store this link cannot be listed or revoked"));
    // Longer than max_ttl, or not a canonical path: exit 1.
    let (code, _, err) = run_cli(text, &["share", "--path", "/x", "--ttl", "31d"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = run_cli(text, &["share", "--path", "/a/../b"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is not a canonical path"), "{err}");
}

#[tokio::test]
async fn an_allowed_session_wins_and_a_forbidden_one_falls_to_the_share() {
    let s = gateway(ON).await;
    let e = &s.e;
    // /admin allows boss@example.com only (the default test routes).
    let (url, id) = s.share(&["--path", "/admin/report"]);
    let mut staff = Browser::new();
    let done = support::flow::sign_in(e, &mut staff, "staff@example.com", "/", 1).await;
    assert_eq!(done.status, 303);
    assert_eq!(staff.get(&e.url("/admin/report")).await.status, 403);
    assert_eq!(staff.get(&url).await.status, 303);
    let p = staff.get(&e.url("/admin/report")).await;
    assert_eq!(p.status, 200, "{}", p.body);
    let seen = e.up.last().unwrap();
    assert_eq!(seen.one("x-portcullis-share"), Some(id.clone()));
    assert_eq!(seen.one("x-forwarded-user"), Some(format!("share:{id}")));
    assert_eq!(seen.all("x-forwarded-email"), Vec::<String>::new());
    // Elsewhere under /admin the session decides: 403.
    assert_eq!(staff.get(&e.url("/admin/other")).await.status, 403);
    // An allowed session is itself, share cookie or not.
    let mut boss = Browser::new();
    let done = support::flow::sign_in(e, &mut boss, "boss@example.com", "/", 1).await;
    assert_eq!(done.status, 303);
    assert_eq!(boss.get(&url).await.status, 303);
    assert_eq!(boss.get(&e.url("/admin/report")).await.status, 200);
    let seen = e.up.last().unwrap();
    assert_eq!(
        seen.one("x-forwarded-email").as_deref(),
        Some("boss@example.com")
    );
    assert_eq!(seen.all("x-portcullis-share"), Vec::<String>::new());
}

/// A WebSocket handshake to `/ws` with `cookie` and `origin`: the
/// stream, or the status it was refused with.
async fn ws_handshake(
    e: &Env,
    cookie: &str,
    origin: &str,
) -> Result<tokio_tungstenite::WebSocketStream<support::client::Stream>, u16> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Error as WsError;
    let mut req = format!("ws://127.0.0.1:{}/ws", e.gw.addr.port())
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    req.headers_mut().insert("origin", origin.parse().unwrap());
    let stream = support::client::connect(e.gw.addr).await;
    match tokio_tungstenite::client_async(req, stream).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(resp)) => Err(resp.status().as_u16()),
        Err(other) => panic!("handshake failed: {other}"),
    }
}

#[tokio::test]
async fn a_shared_websocket_checks_the_origin_like_a_session() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let s = gateway(ON).await;
    let e = &s.e;
    let (url, _) = s.share(&["--path", "/ws"]);
    let (_, b) = open(&url).await;
    let cookie = format!("portcullis-share={}", b.jar["portcullis-share"]);
    assert_eq!(
        ws_handshake(e, &cookie, "https://evil.example").await.err(),
        Some(403)
    );
    let mut ws = ws_handshake(e, &cookie, &e.origin).await.unwrap();
    ws.send(Message::text("ping")).await.unwrap();
    let back = ws.next().await.unwrap().unwrap();
    assert_eq!(back.into_text().unwrap().as_str(), "ping");
}
