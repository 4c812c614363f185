//! The security regression suite: one test per applicable item of the
//! project's security checklist, named `<section><item>_<what>` (a05 is
//! item 5 of section A). tests/README.md holds the checklist itself (each
//! item's property in one line) and maps every item to its test here, in
//! tests/protocol.rs (raw-TCP framing items 37-43 and 52), or says why it
//! does not apply yet. Each test runs against a real gateway with a real
//! upstream, SMTP server and, where the item is about Redis, redis-server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use portcullis::crypto::{self, Key};
use support::browser::{Browser, Page};
use support::client::{body_of, http, raw, status_of};
use support::flow::{
    self, ask_link, confirm, cookie_header, env, get_with, mail_for, page_csrf, sign_in, urlenc,
    Env, Opts,
};
use support::gateway::SECRET;
use support::mode::cookie;
use support::redis::RedisServer;
use support::smtp::Script;
use support::upstream::Seen;

const T: Duration = Duration::from_secs(5);

fn seen_from(body: &str) -> Seen {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not an echo ({e}): {body}"))
}

fn session_cookie(p: &Page) -> Option<String> {
    p.set_cookies()
        .into_iter()
        .find(|c| c.starts_with("portcullis=") || c.starts_with("__Host-portcullis="))
}

/// A raw GET with the browser's cookies; returns what the upstream saw.
async fn raw_get(e: &Env, b: &Browser, path: &str, extra: &str) -> (u16, String) {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nCookie: {}\r\n{extra}Connection: close\r\n\r\n",
        e.gw.addr.port(),
        cookie_header(b)
    );
    let r = raw(e.gw.addr, req.as_bytes(), T).await;
    (status_of(&r), body_of(&r).to_string())
}

/// A cookie with a valid signature for a session the store never had.
fn forged_valid_cookie() -> String {
    portcullis::session::new_session(&Key::new(SECRET.as_bytes())).cookie
}

// ===== A. Magic-link token lifecycle =====

#[tokio::test]
async fn a01_get_never_consumes_the_token() {
    let e = env(Opts::default()).await;
    let mut b = Browser::new();
    ask_link(&mut b, &e.origin, "scan@example.com", "/in").await;
    let (token, code) = mail_for(&e.smtp, "scan@example.com", 1).await;
    let link = e.url(&format!("/.portcullis/verify?token={token}"));
    let head = http().head(&link).send().await.unwrap();
    assert_eq!(head.status(), 200);
    let cookies: Vec<_> = head.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies.len(), 1, "only the CSRF cookie of the button");
    let csrf_cookie = format!("{}=", cookie("portcullis-csrf"));
    assert!(cookies[0].to_str().unwrap().starts_with(&csrf_cookie));
    let mut scanner = Browser::new();
    for _ in 0..2 {
        let p = scanner.get(&link).await;
        assert_eq!(p.status, 200);
        assert!(!p.body.contains(&code), "no code on GET");
        assert_eq!(p.field("action").as_deref(), Some("show-code"));
        assert_eq!(session_cookie(&p), None);
    }
    // The person's own GET renders a POST button and sets no session.
    let page = b.get(&link).await;
    assert_eq!(session_cookie(&page), None);
    assert!(page
        .body
        .contains("<form method=\"post\" action=\"/.portcullis/verify\">"));
    let done = confirm(&mut b, &e.origin, &token).await;
    assert_eq!((done.status, done.location().as_str()), (303, "/in"));
    assert!(session_cookie(&done).is_some());
}

#[tokio::test]
async fn a02_consuming_needs_a_click_no_script_or_refresh() {
    let e = env(Opts::default()).await;
    let mut b = Browser::new();
    ask_link(&mut b, &e.origin, "click@example.com", "/").await;
    let (token, _) = mail_for(&e.smtp, "click@example.com", 1).await;
    let page = b
        .get(&e.url(&format!("/.portcullis/verify?token={token}")))
        .await;
    let lower = page.body.to_ascii_lowercase();
    for banned in ["<script", "http-equiv", "onload", "javascript:"] {
        assert!(!lower.contains(banned), "{banned} in the landing page");
    }
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.starts_with("default-src 'none'") && !csp.contains("script-src"));
    // Nothing happened by rendering it: the session count is still 0.
    assert_eq!(
        e.gw.app.session_count("click@example.com").await.unwrap(),
        0
    );
}

#[tokio::test]
async fn a03_a_click_never_approves_another_browsers_login() {
    let e = env(Opts::default()).await;
    let mut attacker = Browser::new();
    ask_link(&mut attacker, &e.origin, "victim@example.com", "/").await;
    let (token, code) = mail_for(&e.smtp, "victim@example.com", 1).await;
    // The victim (or a scanner) opens the link and even posts the button.
    let mut victim = Browser::new();
    let shown = victim
        .get(&e.url(&format!("/.portcullis/verify?token={token}")))
        .await;
    assert!(!shown.body.contains(&code), "no code on GET");
    let csrf = page_csrf(&mut victim, &e.origin).await;
    let p = victim
        .post(
            &e.origin,
            "/.portcullis/verify",
            &[("token", &token), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, 200, "the code page, nothing consumed");
    assert!(p.body.contains(&code));
    assert_eq!(session_cookie(&p), None);
    // The attacker's browser stays signed out.
    assert_eq!(attacker.get(&e.url("/x")).await.status, 303);
    assert_eq!(
        e.gw.app.session_count("victim@example.com").await.unwrap(),
        0
    );
}

#[tokio::test]
async fn a04_tokens_are_32_random_bytes_base64url() {
    let e = env(Opts::default()).await;
    let mut tokens = Vec::new();
    for i in 1..=5 {
        let mut b = Browser::new();
        ask_link(&mut b, &e.origin, "entropy@example.com", "/").await;
        let (token, _) = mail_for(&e.smtp, "entropy@example.com", i).await;
        assert_eq!(token.len(), 43, "{token}");
        assert_eq!(crypto::unb64(&token).map(|v| v.len()), Some(32), "{token}");
        assert!(!token.contains("entropy") && !token.contains("example"));
        tokens.push(token);
    }
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 5);
    // The session cookie carries a 32-byte id and a 32-byte tag as well.
    let mut b = Browser::new();
    sign_in(&e, &mut b, "entropy2@example.com", "/", 1).await;
    let cookie = b.jar.get(&cookie("portcullis")).unwrap();
    let parts: Vec<&str> = cookie.split('.').collect();
    assert_eq!(parts[0], "v1");
    for p in &parts[1..] {
        assert_eq!(crypto::unb64(p).map(|v| v.len()), Some(32), "{cookie}");
    }
}

/// 50 concurrent button presses for one link: one session.
async fn fifty_presses(e: &Env, email: &str) {
    let mut b = Browser::new();
    ask_link(&mut b, &e.origin, email, "/").await;
    let (token, _) = mail_for(&e.smtp, email, 1).await;
    let page = b
        .get(&e.url(&format!("/.portcullis/verify?token={token}")))
        .await;
    let csrf = page.field("csrf").unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let mut b = b.clone();
        let (origin, token, csrf) = (e.origin.clone(), token.clone(), csrf.clone());
        tasks.push(tokio::spawn(async move {
            b.post(
                &origin,
                "/.portcullis/verify",
                &[("token", &token), ("csrf", &csrf)],
            )
            .await
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let p = t.await.unwrap();
        if p.status == 303 {
            assert!(session_cookie(&p).is_some());
        }
        statuses.push(p.status);
    }
    let wins = statuses.iter().filter(|s| **s == 303).count();
    let gone = statuses.iter().filter(|s| **s == 410).count();
    assert_eq!((wins, gone), (1, 49), "{statuses:?}");
    assert_eq!(e.gw.app.session_count(email).await.unwrap(), 1);
}

#[tokio::test]
async fn a05_single_use_is_atomic() {
    let e = env(Opts::default()).await;
    fifty_presses(&e, "race@example.com").await;
    // A newer link supersedes the older one for the same browser.
    let mut b = Browser::new();
    ask_link(&mut b, &e.origin, "twice@example.com", "/").await;
    let (old, _) = mail_for(&e.smtp, "twice@example.com", 1).await;
    ask_link(&mut b, &e.origin, "twice@example.com", "/").await;
    let (new, _) = mail_for(&e.smtp, "twice@example.com", 2).await;
    let verify = |t: &str| e.url(&format!("/.portcullis/verify?token={t}"));
    assert_eq!(b.get(&verify(&old)).await.status, 410);
    assert_eq!(b.get(&verify(&new)).await.status, 200);
}

#[tokio::test]
async fn a06_expired_used_and_unknown_links_fail_alike() {
    let e = env(Opts {
        login: "link_ttl = \"1s\"",
        ..Opts::default()
    })
    .await;
    let mut used = Browser::new();
    let done = sign_in(&e, &mut used, "used@example.com", "/", 1).await;
    assert_eq!(done.status, 303, "within the TTL the link works");
    let (used_token, _) = mail_for(&e.smtp, "used@example.com", 1).await;
    let mut late = Browser::new();
    ask_link(&mut late, &e.origin, "late@example.com", "/").await;
    let (token, code) = mail_for(&e.smtp, "late@example.com", 1).await;
    // The TTL itself is under test: waiting past it is the point.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let verify = |t: &str| e.url(&format!("/.portcullis/verify?token={t}"));
    let expired = late.get(&verify(&token)).await;
    assert_eq!(expired.status, 410);
    let again = used.get(&verify(&used_token)).await;
    let unknown = late.get(&verify(&"A".repeat(43))).await;
    assert_eq!((again.status, unknown.status), (410, 410));
    assert_eq!(again.body, expired.body);
    assert_eq!(unknown.body, expired.body);
    let csrf = page_csrf(&mut late, &e.origin).await;
    let by_code = late
        .post(
            &e.origin,
            "/.portcullis/code",
            &[("code", &code), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(by_code.status, 410);
}

#[tokio::test]
async fn a07_tokens_are_hashed_at_rest() {
    let redis = RedisServer::shared();
    let e = env(Opts {
        redis: Some(redis.clone()),
        ..Opts::default()
    })
    .await;
    let mut b = Browser::new();
    ask_link(&mut b, &e.origin, "rest@example.com", "/").await;
    let (token, code) = mail_for(&e.smtp, "rest@example.com", 1).await;
    let key = Key::new(SECRET.as_bytes());
    let pending = format!(
        "{}att:{}",
        e.prefix,
        key.hash_hex("token", token.as_bytes())
    );
    assert_eq!(redis.cli(&["exists", &pending]), "1", "{pending}");
    let keys = redis.cli(&["--scan", "--pattern", &format!("{}*", e.prefix)]);
    assert!(keys.lines().count() >= 4, "{keys}");
    for k in keys.lines() {
        let rest = k.strip_prefix(&e.prefix).unwrap();
        if rest == "pend:all" {
            // The one fixed name: the list of pending sign-ins (token hashes).
            continue;
        }
        let (kinds, hash) = rest.rsplit_once(':').unwrap();
        assert!(
            kinds
                .split(':')
                .all(|w| w.bytes().all(|c| c.is_ascii_lowercase())),
            "{k}"
        );
        assert!(
            hash.len() == 64 && hash.bytes().all(|c| c.is_ascii_hexdigit()),
            "{k}"
        );
        let dump = redis.cli(&["dump", k]);
        for secret in [token.as_str(), code.as_str(), &code.replace('-', "")] {
            assert!(!k.contains(secret) && !dump.contains(secret), "{k}");
        }
        assert!(!k.contains("rest@"), "{k}");
    }
}

#[tokio::test]
async fn a08_the_link_never_comes_from_the_request() {
    let e = env(Opts::default()).await;
    let mut b = Browser::new();
    let csrf = page_csrf(&mut b, &e.origin).await;
    let body = format!("email=host%40example.com&rd=%2F&csrf={}", urlenc(&csrf));
    let cookie = cookie_header(&b);
    let port = e.gw.addr.port();
    let scheme = support::mode::scheme();
    let requests = [
        format!("POST /.portcullis/login HTTP/1.1\r\nHost: evil.example\r\nOrigin: {scheme}://evil.example\r\n"),
        format!("POST /.portcullis/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Forwarded-Host: evil.example\r\nOrigin: {}\r\n", e.origin),
        format!("POST http://evil.example/.portcullis/login HTTP/1.1\r\nHost: evil.example\r\nOrigin: {scheme}://evil.example\r\n"),
    ];
    for (i, head) in requests.iter().enumerate() {
        let req = format!(
            "{head}Cookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let resp = raw(e.gw.addr, req.as_bytes(), T).await;
        assert_eq!(status_of(&resp), 200, "{resp}");
        let mails = e.smtp.wait_for(i + 1, T).await;
        let text = mails[i].text().unwrap();
        assert!(
            text.contains(&format!("{}/.portcullis/verify?token=", e.origin)),
            "{text}"
        );
        assert!(!text.contains("evil"), "{text}");
    }
}

#[tokio::test]
async fn a09_no_leak_through_referer_or_caches() {
    let e = env(Opts::default()).await;
    let mut b = Browser::new();
    ask_link(&mut b, &e.origin, "leak@example.com", "/next").await;
    let (token, _) = mail_for(&e.smtp, "leak@example.com", 1).await;
    let page = b
        .get(&e.url(&format!("/.portcullis/verify?token={token}")))
        .await;
    assert_eq!(
        page.header("referrer-policy").as_deref(),
        Some("no-referrer")
    );
    assert_eq!(page.header("cache-control").as_deref(), Some("no-store"));
    // Only our own stylesheet: no third-party resources.
    for attr in ["src=\"", "href=\""] {
        for (i, _) in page.body.match_indices(attr) {
            let v = &page.body[i + attr.len()..];
            // Our own paths, or an inline image (the default logo).
            let own = v.starts_with('/') && !v.starts_with("//");
            assert!(
                own || v.starts_with("data:image/"),
                "{}",
                &v[..30.min(v.len())]
            );
        }
    }
    let csrf = page.field("csrf").unwrap();
    let done = b
        .post(
            &e.origin,
            "/.portcullis/verify",
            &[("token", &token), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(done.location(), "/next");
    assert!(!done.location().contains(&token));
}

#[tokio::test]
async fn a10_no_token_in_logs() {
    let up = support::upstream::Upstream::start().await;
    let smtp = support::smtp::SmtpServer::start(Script::Accept);
    let dir = tempfile::tempdir().unwrap();
    let text = flow::config_text(&Opts::default(), &up.url(), smtp.port(), "");
    let gw = support::gateway::GatewayProcess::start(dir.path(), &text);
    let o = gw.origin();
    let smtp_env = smtp.clone();
    let mut b = Browser::new();
    let email = "secret.person@example.com";
    ask_link(&mut b, &o, email, "/").await;
    let (token, code) = mail_for(&smtp_env, email, 1).await;
    let done = confirm(&mut b, &o, &token).await;
    assert_eq!(done.status, 303);
    assert_eq!(b.get(&format!("{o}/app?q=1")).await.status, 200);
    let mut secrets = vec![token.clone(), code.clone(), code.replace('-', "")];
    secrets.extend(b.jar.values().cloned());
    let deadline = Instant::now() + T;
    while !gw.log_text().contains("/app") {
        assert!(Instant::now() < deadline, "{}", gw.log_text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = gw.log_text();
    assert!(
        log.contains("/.portcullis/verify") && log.contains("s***@example.com"),
        "{log}"
    );
    for s in &secrets {
        assert!(!log.contains(s.as_str()), "the log holds a secret");
    }
    assert!(!log.contains(email) && !log.contains("token="), "{log}");
}

#[tokio::test]
async fn a11_another_device_gets_the_code_not_a_session() {
    let e = env(Opts::default()).await;
    let mut laptop = Browser::new();
    let waiting = ask_link(&mut laptop, &e.origin, "bob@example.com", "/dash").await;
    let (token, code) = mail_for(&e.smtp, "bob@example.com", 1).await;
    let mut phone = Browser::new();
    let shown = phone
        .get(&e.url(&format!("/.portcullis/verify?token={token}")))
        .await;
    assert!(!shown.body.contains(&code), "no code on GET");
    assert_eq!(session_cookie(&shown), None);
    let revealed = show_code(&mut phone, &e.origin, &shown).await;
    assert_eq!(revealed.status, 200);
    assert!(revealed.body.contains(&format!(">{code}<")));
    assert_eq!(session_cookie(&revealed), None);
    // The asking browser gets an explicit confirm naming the masked address.
    let own = laptop
        .get(&e.url(&format!("/.portcullis/verify?token={token}")))
        .await;
    assert!(own.body.contains("b***@example.com"), "{}", own.body);
    assert!(!own.body.contains("bob@example.com"));
    let csrf = waiting.field("csrf").unwrap();
    let done = laptop
        .post(
            &e.origin,
            "/.portcullis/code",
            &[("code", &code), ("csrf", &csrf)],
        )
        .await;
    assert_eq!((done.status, done.location().as_str()), (303, "/dash"));
    assert_eq!(laptop.get(&e.url("/dash")).await.status, 200);
    assert_eq!(phone.get(&e.url("/dash")).await.status, 303);
}

/// Presses the "Show the code" button of a link page opened in another
/// browser: the POST /verify answer.
async fn show_code(b: &mut Browser, origin: &str, page: &Page) -> Page {
    let token = page.field("token").expect("the button carries the token");
    let csrf = page.field("csrf").expect("the button carries a CSRF field");
    assert_eq!(page.field("action").as_deref(), Some("show-code"));
    b.post(
        origin,
        "/.portcullis/verify",
        &[("token", &token), ("csrf", &csrf), ("action", "show-code")],
    )
    .await
}

/// Whether `text` holds something shaped like a sign-in code: `XXXX-XXXX`
/// or 8 code characters in a row, standing alone.
fn has_code_shape(text: &str) -> bool {
    let code_char = |c: char| "ABCDEFGHJKMNPQRSTUVWXYZ23456789".contains(c);
    text.split(|c: char| !code_char(c) && c != '-').any(|w| {
        let parts: Vec<&str> = w.split('-').collect();
        parts.iter().any(|p| p.len() == 8)
            || parts.windows(2).any(|p| p[0].len() == 4 && p[1].len() == 4)
    })
}

/// The page's text: everything outside `<...>`.
fn visible_text(html: &str) -> String {
    html.split('<')
        .map(|part| part.split_once('>').map_or(part, |(_, text)| text))
        .collect::<Vec<_>>()
        .join(" ")
}

const FIREFOX_ON_WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";

/// Asks for a link as Firefox on Windows would.
async fn ask_link_as_firefox(b: &mut Browser, e: &Env, email: &str) {
    let csrf = page_csrf(b, &e.origin).await;
    let p = b
        .post_with(
            &e.origin,
            "/.portcullis/login",
            &[("email", email), ("rd", "/in"), ("csrf", &csrf)],
            &[("origin", &e.origin), ("user-agent", FIREFOX_ON_WINDOWS)],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
}

#[tokio::test]
async fn a11_a_link_in_another_browser_shows_the_code_only_after_a_post() {
    let e = env(Opts::default()).await;
    let mut attacker = Browser::new();
    ask_link_as_firefox(&mut attacker, &e, "victim@example.com").await;
    let (token, code) = mail_for(&e.smtp, "victim@example.com", 1).await;
    assert!(has_code_shape(&code) && has_code_shape(&code.replace('-', "")));
    let link = e.url(&format!("/.portcullis/verify?token={token}"));

    // A URL scanner: HEAD and cookie-less GETs reveal nothing.
    let head = http().head(&link).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.text().await.unwrap(), "");
    for _ in 0..2 {
        let p = Browser::new().get(&link).await;
        assert_eq!(p.status, 200);
        let body = &p.body;
        assert!(!body.contains(&code), "the code on GET:\n{body}");
        assert!(!body.contains(&code.replace('-', "")));
        // Nothing code-shaped in the page's text, nor in its attributes
        // other than the two random form fields (the favicon's base64 is
        // the same on every page and holds no code).
        let text = visible_text(body);
        assert!(!has_code_shape(&text), "{text}");
        let fields = body
            .replace(&token, "")
            .replace(&p.field("csrf").unwrap(), "");
        let fields: String = fields
            .split("<input")
            .skip(1)
            .map(|i| i.split('>').next().unwrap_or(""))
            .collect();
        assert!(!has_code_shape(&fields), "{fields}");
        assert!(body.contains("<button type=\"submit\">Show the code</button>"));
    }

    // The person presses the button: the code, and where it was asked from.
    let mut phone = Browser::new();
    let page = phone.get(&link).await;
    let shown = show_code(&mut phone, &e.origin, &page).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(shown
        .body
        .contains(&format!("<p class=\"code-box\">{code}</p>")));
    assert!(
        shown.body.contains("<dd>Firefox on Windows</dd>"),
        "{}",
        shown.body
    );
    assert!(shown.body.contains("<dd>127.0.0.1</dd>"), "{}", shown.body);
    assert!(
        shown.body.contains("<dd>less than a minute ago (")
            || shown.body.contains("<dd>about 1 minute ago ("),
        "{}",
        shown.body
    );
    assert!(shown.body.contains(" UTC)</dd>"), "{}", shown.body);
    assert!(shown
        .body
        .contains("If this was not you, do not type the code anywhere."));
    assert!(shown.body.contains("browser that asked for the link"));
    assert_eq!(session_cookie(&shown), None);
    assert_eq!(
        e.gw.app.session_count("victim@example.com").await.unwrap(),
        0
    );

    // Nothing was consumed: pressed again, the same; the asking browser
    // types the code and is in.
    let again = show_code(&mut phone, &e.origin, &page).await;
    assert!(again.body.contains(&code));
    let csrf = page_csrf(&mut attacker, &e.origin).await;
    let done = attacker
        .post(
            &e.origin,
            "/.portcullis/code",
            &[("code", &code), ("csrf", &csrf)],
        )
        .await;
    assert_eq!((done.status, done.location().as_str()), (303, "/in"));
    assert_eq!(
        e.gw.app.session_count("victim@example.com").await.unwrap(),
        1
    );
}

#[tokio::test]
async fn a11_the_code_button_is_csrf_checked_and_counted() {
    // ip_rate 5/15m: at most 20 failed checks per IP.
    let e = env(Opts {
        login: "ip_rate = \"5/15m\"",
        ..Opts::default()
    })
    .await;
    let mut asker = Browser::new();
    ask_link(&mut asker, &e.origin, "count@example.com", "/").await;
    let (token, code) = mail_for(&e.smtp, "count@example.com", 1).await;
    let mut other = Browser::new();
    let page = other
        .get(&e.url(&format!("/.portcullis/verify?token={token}")))
        .await;
    let csrf = page.field("csrf").unwrap();
    let post = |fields: Vec<(&'static str, String)>, origin: String| {
        let mut b = other.clone();
        let o = e.origin.clone();
        async move {
            let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            b.post_with(&o, "/.portcullis/verify", &f, &[("origin", &origin)])
                .await
        }
    };
    let good = |t: &str| {
        vec![
            ("token", t.to_string()),
            ("csrf", csrf.clone()),
            ("action", "show-code".to_string()),
        ]
    };
    // No CSRF field, a wrong one, another site's Origin: 403, no code.
    let mut no_field = good(&token);
    no_field.retain(|(k, _)| *k != "csrf");
    let mut wrong = good(&token);
    wrong[1].1 = "A".repeat(43);
    for (fields, origin) in [
        (no_field, e.origin.clone()),
        (wrong, e.origin.clone()),
        (good(&token), "http://evil.test".to_string()),
    ] {
        let p = post(fields, origin).await;
        assert_eq!(p.status, 403, "{}", p.body);
        assert!(!p.body.contains(&code));
    }
    // An unknown action is refused.
    let mut odd = good(&token);
    odd[2].1 = "sign-in-here".into();
    assert_eq!(post(odd, e.origin.clone()).await.status, 400);
    // Guessed tokens through the button count as failed checks...
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let t = crypto::random_token();
        statuses.push(post(good(&t), e.origin.clone()).await.status);
    }
    assert_eq!(statuses, vec![410; 20]);
    // ...and once over the limit even the right token is refused, before
    // any lookup.
    let p = post(good(&token), e.origin.clone()).await;
    assert_eq!(p.status, 429, "{}", p.body);
    assert!(!p.body.contains(&code));
}

#[tokio::test]
async fn a12_rd_is_stored_with_the_token() {
    let e = env(Opts::default()).await;
    let mut b = Browser::new();
    ask_link(&mut b, &e.origin, "rd@example.com", "/deep/page?x=1").await;
    let (token, _) = mail_for(&e.smtp, "rd@example.com", 1).await;
    let page = b
        .get(&e.url(&format!("/.portcullis/verify?token={token}")))
        .await;
    assert_eq!(page.field("rd"), None, "the button form carries no rd");
    let csrf = page.field("csrf").unwrap();
    // An rd added to the POST is ignored: the stored one wins.
    let done = b
        .post(
            &e.origin,
            "/.portcullis/verify",
            &[("token", &token), ("csrf", &csrf), ("rd", "/elsewhere")],
        )
        .await;
    assert_eq!(done.location(), "/deep/page?x=1");
}

// ===== B. Login request: enumeration, abuse, parsing =====

// Item 13 (the same answer for every address) is
// `signin::*::answers_are_identical_whatever_the_address`, for both stores.

#[tokio::test]
async fn b14_timing_does_not_tell_addresses_apart() {
    // With the SMTP server silent, an inline send would take seconds.
    let e = env(Opts {
        tarpit: true,
        ..Opts::default()
    })
    .await;
    let mut b = Browser::new();
    let csrf = page_csrf(&mut b, &e.origin).await;
    let mut allowed = Vec::new();
    let mut refused = Vec::new();
    for i in 0..20 {
        for (list, who) in [
            (&mut allowed, format!("in{i}@example.com")),
            (&mut refused, format!("out{i}@evil.example")),
        ] {
            let started = Instant::now();
            let p = b
                .post(
                    &e.origin,
                    "/.portcullis/login",
                    &[("email", &who), ("rd", "/"), ("csrf", &csrf)],
                )
                .await;
            assert_eq!(p.status, 200);
            list.push(started.elapsed());
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (a, r) = (median(&mut allowed), median(&mut refused));
    let gap = a.abs_diff(r);
    assert!(
        gap < Duration::from_millis(30).max(a.max(r) / 2),
        "median allowed {a:?} vs refused {r:?}"
    );
    assert!(a < Duration::from_secs(1), "{a:?}");
}

#[tokio::test]
async fn b15_send_limits_use_the_canonical_address_and_the_client_ip() {
    let e = env(Opts {
        server: "trusted_proxies = [\"127.0.0.0/8\"]",
        login: "address_rate = \"3/15m\"\nip_rate = \"4/15m\"",
        ..Opts::default()
    })
    .await;
    let mut b = Browser::new();
    let csrf = page_csrf(&mut b, &e.origin).await;
    let post = |b: &mut Browser, email: &str, ip: &str| {
        let (mut b, email, ip, csrf, origin) = (
            b.clone(),
            email.to_string(),
            ip.to_string(),
            csrf.clone(),
            e.origin.clone(),
        );
        async move {
            b.post_with(
                &origin,
                "/.portcullis/login",
                &[("email", &email), ("rd", "/"), ("csrf", &csrf)],
                &[("origin", &origin), ("x-forwarded-for", &ip)],
            )
            .await
        }
    };
    // One address in six spellings from six addresses: one bucket of 3.
    for (i, spelling) in [
        "Alice@Example.COM",
        " alice@example.com",
        "alice@example.com.",
        "ALICE@EXAMPLE.COM",
        "alice@EXAMPLE.com",
        "alice@example.com",
    ]
    .iter()
    .enumerate()
    {
        let p = post(&mut b, spelling, &format!("198.51.100.{i}")).await;
        assert_eq!(p.status, 200, "{spelling:?}");
    }
    // Six addresses from one client address: 4 get mail.
    for i in 0..6 {
        let p = post(&mut b, &format!("user{i}@example.com"), "203.0.113.9").await;
        assert_eq!(p.status, 200);
    }
    e.smtp.wait_for(7, T).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(e.mails_to("alice@example.com"), 3);
    let users: usize = (0..6)
        .map(|i| e.mails_to(&format!("user{i}@example.com")))
        .sum();
    assert_eq!(users, 4);
    assert_eq!(e.smtp.received().len(), 7);
}

#[tokio::test]
async fn b16_exactly_one_recipient_or_nothing() {
    let e = env(Opts::default()).await;
    let mut b = Browser::new();
    for bad in [
        "a@evil.com@example.com",
        "v@example.com,a@evil.com",
        "v@example.com\nBcc: a@evil.com",
        "v@example.com\r\nBcc: a@evil.com",
        "Victim <v@example.com>",
        "v@example.com;a@evil.com",
        "\"a@b\"@example.com",
    ] {
        let p = ask_link(&mut b, &e.origin, bad, "/").await;
        assert_eq!(p.status, 400, "{bad:?}");
    }
    let csrf = page_csrf(&mut b, &e.origin).await;
    for fields in [
        vec![("email", "v@example.com"), ("email", "a@evil.com")],
        vec![("email[]", "v@example.com"), ("email", "a@evil.com")],
        vec![("email[0]", "v@example.com")],
    ] {
        let mut fields = fields.clone();
        fields.push(("csrf", &csrf));
        let p = b.post(&e.origin, "/.portcullis/login", &fields).await;
        assert_eq!(p.status, 400, "{fields:?}");
    }
    let json = http()
        .post(e.url("/.portcullis/login"))
        .header("origin", &e.origin)
        .header("cookie", cookie_header(&b))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"email\":[\"v@example.com\",\"a@evil.com\"],\"csrf\":\"{csrf}\"}}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 400);
    // A homoglyph domain is another domain: generic answer, no mail.
    let p = ask_link(&mut b, &e.origin, "v@exаmple.com", "/").await;
    assert_eq!(p.status, 200);
    // The domain is compared in lowercase: this one is sent, once.
    let p = ask_link(&mut b, &e.origin, "v@EXAMPLE.com", "/").await;
    assert_eq!(p.status, 200);
    let mails = e.smtp.wait_for(1, T).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(e.smtp.received().len(), 1);
    assert_eq!(mails[0].to, vec!["v@example.com".to_string()]);
}

#[tokio::test]
async fn b17_code_guessing_ends_the_attempt_after_five() {
    let e = env(Opts::default()).await;
    let mut b = Browser::new();
    let waiting = ask_link(&mut b, &e.origin, "brute@example.com", "/").await;
    let (token, code) = mail_for(&e.smtp, "brute@example.com", 1).await;
    let csrf = waiting.field("csrf").unwrap();
    let wrong = if code.starts_with('A') {
        "BBBB-BBBB"
    } else {
        "AAAA-AAAA"
    };
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let p = b
            .post(
                &e.origin,
                "/.portcullis/code",
                &[("code", wrong), ("csrf", &csrf)],
            )
            .await;
        statuses.push(p.status);
    }
    assert_eq!(statuses, vec![400, 400, 400, 400, 429]);
    let right = b
        .post(
            &e.origin,
            "/.portcullis/code",
            &[("code", &code), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(right.status, 410);
    let link = b
        .get(&e.url(&format!("/.portcullis/verify?token={token}")))
        .await;
    assert_eq!(link.status, 410);
}

#[tokio::test]
async fn b17_random_tokens_are_rate_limited() {
    // The default ip_rate (30/15m) makes the failure limit 4 x 30 = 120.
    let e = env(Opts {
        login: "ip_rate = \"30/15m\"",
        ..Opts::default()
    })
    .await;
    let c = http();
    let mut statuses = Vec::new();
    for _ in 0..300 {
        let t = crypto::random_token();
        let r = c
            .get(e.url(&format!("/.portcullis/verify?token={t}")))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            break;
        }
    }
    assert_eq!(
        statuses.last(),
        Some(&429),
        "{} tries, none limited",
        statuses.len()
    );
}

// ===== C. Sessions and cookies =====

/// Signs in as if behind a trusted TLS-terminating proxy (https = true).
async fn https_sign_in(e: &Env, b: &mut Browser, email: &str) -> Page {
    let https_origin = e.origin.replace("http://", "https://");
    let xfp = [("x-forwarded-proto", "https")];
    let page = get_with(b, &e.url("/.portcullis/login"), &xfp).await;
    let csrf = page.field("csrf").unwrap();
    let p = b
        .post_with(
            &e.origin,
            "/.portcullis/login",
            &[("email", email), ("rd", "/"), ("csrf", &csrf)],
            &[("origin", &https_origin), xfp[0]],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    let (token, _) = mail_for(&e.smtp, email, 1).await;
    let page = get_with(
        b,
        &e.url(&format!("/.portcullis/verify?token={token}")),
        &xfp,
    )
    .await;
    let csrf = page.field("csrf").unwrap();
    b.post_with(
        &e.origin,
        "/.portcullis/verify",
        &[("token", &token), ("csrf", &csrf)],
        &[("origin", &https_origin), xfp[0]],
    )
    .await
}

fn trusted_proxy() -> Opts<'static> {
    Opts {
        server: "trusted_proxies = [\"127.0.0.0/8\"]",
        ..Opts::default()
    }
}

#[tokio::test]
async fn c18_session_cookie_attributes() {
    let e = env(trusted_proxy()).await;
    let mut b = Browser::new();
    let done = https_sign_in(&e, &mut b, "cookie@example.com").await;
    assert_eq!(done.status, 303, "{}", done.body);
    let set = session_cookie(&done).unwrap();
    let value = set.split(';').next().unwrap();
    assert!(value.starts_with("__Host-portcullis=v1."), "{set}");
    let attrs: Vec<&str> = set.split(';').skip(1).map(str::trim).collect();
    for want in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(attrs.contains(&want), "{set} lacks {want}");
    }
    assert!(!attrs.iter().any(|a| a.starts_with("Domain")), "{set}");
    // Pre-auth cookies have other names than the session.
    let names: Vec<&String> = b.jar.keys().collect();
    assert!(
        names.contains(&&"__Host-portcullis-csrf".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&&"__Host-portcullis-verifier".to_string()),
        "{names:?}"
    );
}

/// The decision for item 18's "non-persistent" (README, Choices): the
/// session cookie lives exactly `session.lifetime` in the browser (as
/// oauth2-proxy's `cookie_expire`), so closing the browser does not sign
/// a person out; the server enforces lifetime and idle timeout regardless
/// (c20).
#[tokio::test]
async fn c18_session_cookie_lives_the_session_lifetime() {
    let e = env(Opts {
        session: "lifetime = \"2h\"",
        ..trusted_proxy()
    })
    .await;
    let mut b = Browser::new();
    let done = https_sign_in(&e, &mut b, "cookie@example.com").await;
    let set = session_cookie(&done).unwrap();
    let attrs: Vec<&str> = set.split(';').skip(1).map(str::trim).collect();
    assert!(attrs.contains(&"Max-Age=7200"), "{set}");
    assert!(!attrs.iter().any(|a| a.starts_with("Expires")), "{set}");
}

#[tokio::test]
async fn c19_session_ids_rotate_and_unknown_ids_are_never_adopted() {
    let e = env(Opts::default()).await;
    // A well-signed id the store never issued is not a session.
    let mut stranger = Browser::new();
    stranger
        .jar
        .insert(cookie("portcullis"), forged_valid_cookie());
    assert_eq!(stranger.get(&e.url("/x")).await.status, 303);
    // An id planted before sign-in is replaced, never adopted.
    let planted = forged_valid_cookie();
    let mut b = Browser::new();
    b.jar.insert(cookie("portcullis"), planted.clone());
    sign_in(&e, &mut b, "fix@example.com", "/", 1).await;
    let s1 = b.jar.get(&cookie("portcullis")).unwrap().clone();
    assert_ne!(s1, planted);
    sign_in(&e, &mut b, "fix@example.com", "/", 2).await;
    let s2 = b.jar.get(&cookie("portcullis")).unwrap().clone();
    assert_ne!(s1, s2);
    assert_eq!(e.gw.app.session_count("fix@example.com").await.unwrap(), 1);
    let mut old = Browser::new();
    old.jar.insert(cookie("portcullis"), s1);
    assert_eq!(old.get(&e.url("/x")).await.status, 303, "the old id ended");
}

#[tokio::test]
async fn c20_idle_and_absolute_timeouts_end_sessions() {
    let e = env(Opts {
        session: "lifetime = \"3s\"\nidle_timeout = \"1s\"\nrevalidate = \"100ms\"",
        ..Opts::default()
    })
    .await;
    let mut busy = Browser::new();
    sign_in(&e, &mut busy, "idle@example.com", "/", 1).await;
    let signed_in = Instant::now();
    let mut idle = Browser::new();
    sign_in(&e, &mut idle, "idle@example.com", "/", 2).await;
    // Used every 300 ms, the first outlives the idle timeout...
    while signed_in.elapsed() < Duration::from_millis(1800) {
        assert_eq!(busy.get(&e.url("/x")).await.status, 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // ...while the unused one is gone.
    assert_eq!(idle.get(&e.url("/x")).await.status, 303);
    // And past the absolute lifetime (3 s) the busy one ends too.
    while signed_in.elapsed() < Duration::from_millis(3300) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(busy.get(&e.url("/x")).await.status, 303);
    assert_eq!(e.gw.app.session_count("idle@example.com").await.unwrap(), 0);
}

#[tokio::test]
async fn c21_logout_deletes_expires_and_clears() {
    let e = env(Opts::default()).await;
    let mut b = Browser::new();
    sign_in(&e, &mut b, "out@example.com", "/", 1).await;
    let old = b.jar.clone();
    let confirm_page = b
        .get(&e.url("/.portcullis/logout?rd=https://evil.example/"))
        .await;
    assert_eq!(confirm_page.status, 200);
    assert_eq!(b.get(&e.url("/x")).await.status, 200, "GET changed nothing");
    let csrf = confirm_page.field("csrf").unwrap();
    let rd = confirm_page.field("rd").unwrap();
    let done = b
        .post(
            &e.origin,
            "/.portcullis/logout",
            &[("csrf", &csrf), ("rd", &rd)],
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location(), "/.portcullis/logout?done=1");
    assert_eq!(
        done.header("clear-site-data").as_deref(),
        Some("\"cookies\"")
    );
    let expired = session_cookie(&done).unwrap();
    assert!(
        expired.starts_with(&format!("{}=;", cookie("portcullis")))
            && expired.contains("Max-Age=0"),
        "{expired}"
    );
    assert_eq!(e.gw.app.session_count("out@example.com").await.unwrap(), 0);
    let mut replay = Browser::new();
    replay.jar = old;
    let p = replay.get(&e.url("/x")).await;
    assert_eq!(p.status, 303);
    assert!(p.location().starts_with("/.portcullis/login"));
}

#[tokio::test]
async fn c22_gateway_cookie_never_forwarded() {
    let e = env(Opts::default()).await;
    let mut b = Browser::new();
    sign_in(&e, &mut b, "jar@example.com", "/", 1).await;
    let session = b.jar.get(&cookie("portcullis")).unwrap().clone();
    // The checklist's vector with our names, plus every name we use (the
    // session under this mode's name, the other name with junk).
    let (ours, other) = if support::mode::tls() {
        ("__Host-portcullis", "portcullis")
    } else {
        ("portcullis", "__Host-portcullis")
    };
    let vector = format!(
        "cookieA=aaa_portcullis=123; cookieb=bbb; {ours}={session};portcullis_x=stay ; portcullis_y=stay; \
         {other}=x; __Secure-portcullis=x; portcullis-csrf=y; portcullis-verifier=z; \
         __Host-portcullis-csrf=y; __Host-portcullis-verifier=z"
    );
    for path in ["/app", "/public/p"] {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nCookie: {vector}\r\nConnection: close\r\n\r\n",
            e.gw.addr.port()
        );
        let r = raw(e.gw.addr, req.as_bytes(), T).await;
        assert_eq!(status_of(&r), 200, "{path}: {r}");
        assert_eq!(
            seen_from(body_of(&r)).one("cookie").as_deref(),
            Some("cookieA=aaa_portcullis=123; cookieb=bbb; portcullis_x=stay ; portcullis_y=stay"),
            "{path}"
        );
    }
    // And the upstream cannot set ours.
    let p = b.get(&e.url("/public/set-cookie")).await;
    assert_eq!(p.set_cookies(), vec!["app=1; Path=/".to_string()]);
}

#[tokio::test]
async fn c23_authorization_follows_the_live_configuration() {
    let opts = Opts::default();
    let e = env(Opts::default()).await;
    let mut boss = Browser::new();
    sign_in(&e, &mut boss, "boss@example.com", "/", 1).await;
    assert_eq!(boss.get(&e.url("/admin/panel")).await.status, 200);
    let text = flow::config_text(&opts, &e.up.url(), e.smtp.port(), &e.prefix)
        .replace("[\"boss@example.com\"]", "[\"other@example.com\"]");
    let cfg = support::gateway::config(&text, e.gw.addr.port());
    e.gw.app.reload(cfg);
    assert_eq!(boss.get(&e.url("/admin/panel")).await.status, 403);
    assert_eq!(boss.get(&e.url("/x")).await.status, 200);
    // Removing the address from [login] ends access everywhere.
    let text = text.replace(
        "allow_domains = [\"example.com\"]",
        "allow_domains = [\"example.org\"]",
    );
    e.gw.app
        .reload(support::gateway::config(&text, e.gw.addr.port()));
    assert_eq!(boss.get(&e.url("/x")).await.status, 403);
}

// ===== D. Redirect (rd) validation =====

/// A gateway whose redirect policy mirrors the corpus files': route hosts
/// app.example.com and foo.bar, cookie domain example.com.
async fn redirect_env() -> Env {
    env(Opts {
        server: "public_url = \"http://app.example.com:$PORT\"",
        session: "cookie_domain = \"example.com\"",
        routes: "[[route]]\nhost = \"app.example.com\"\nupstream = \"{up}\"\n\n\
                 [[route]]\nhost = \"foo.bar\"\nupstream = \"{up}\"\n",
        ..Opts::default()
    })
    .await
}

/// The `rd` field the sign-in page keeps for `rd`.
async fn kept_rd(e: &Env, b: &mut Browser, rd: &str) -> String {
    let p = b
        .get(&e.url(&format!("/.portcullis/login?rd={}", urlenc(rd))))
        .await;
    assert_eq!(p.status, 200, "{rd:?}");
    p.field("rd").unwrap()
}

#[tokio::test]
async fn d24_redirect_corpora_through_the_gateway() {
    let e = redirect_env().await;
    let policy = portcullis::redirect::RedirectPolicy {
        allowed_hosts: vec!["app.example.com".into(), "foo.bar".into()],
        cookie_domain: Some("example.com".into()),
    };
    let more = flow::corpus("redirects_more.txt");
    assert!(more.len() >= 50, "{}", more.len());
    let base = flow::corpus("redirects.txt");
    let mut b = Browser::new();
    let mut checked = 0;
    let mut kept = Vec::new();
    for line in base.iter().chain(&more) {
        for rd in [line.clone(), flow::percent_decode_once(line)] {
            let pure = portcullis::redirect::check(&rd, "https://app.example.com", &policy);
            assert_eq!(pure, None, "redirect::check kept {rd:?}");
            let field = kept_rd(&e, &mut b, &rd).await;
            if field != "/" {
                kept.push(format!("{rd:?} -> {field:?}"));
            }
            checked += 1;
        }
    }
    assert!(kept.is_empty(), "kept:\n{}", kept.join("\n"));
    assert_eq!(checked, 2 * (base.len() + more.len()));
    // Control: good destinations survive, exactly.
    for (input, want) in flow::corpus_pairs("redirects_ok.txt") {
        assert_eq!(kept_rd(&e, &mut b, &input).await, want, "{input:?}");
    }
}

#[tokio::test]
async fn d25_the_location_bytes_are_what_was_checked() {
    let e = env(Opts::default()).await;
    for (i, rd) in ["%0d//a.com", "%2f%2fa.com", "/%2f%2fa.com/..", "//a.com"]
        .iter()
        .enumerate()
    {
        let mut b = Browser::new();
        let email = format!("loc{i}@example.com");
        let done = sign_in(&e, &mut b, &email, rd, 1).await;
        assert_eq!(done.status, 303);
        let location = done.location();
        assert!(
            location.starts_with('/') && !location.starts_with("//"),
            "{rd}: {location}"
        );
        assert!(
            !location.contains("a.com") || location == "/a.com",
            "{rd}: {location}"
        );
    }
    // The sign-in redirect made from a request path never starts with //.
    let p = Browser::new().get(&e.url("//a.com/x")).await;
    assert_eq!(p.location(), "/.portcullis/login?rd=%2Fa.com%2Fx");
}

#[tokio::test]
async fn d26_suffix_matching_respects_labels_and_case() {
    let e = redirect_env().await;
    let mut b = Browser::new();
    for bad in [
        "https://badexample.com/",
        "https://example.com.evil.io/",
        "https://xexample.com/",
        "https://app.example.com.evil.io/",
    ] {
        assert_eq!(kept_rd(&e, &mut b, bad).await, "/", "{bad}");
    }
    assert_eq!(
        kept_rd(&e, &mut b, "https://EXAMPLE.com/").await,
        "https://example.com/"
    );
    assert_eq!(
        kept_rd(&e, &mut b, "https://Sub.Example.COM/x").await,
        "https://sub.example.com/x"
    );
}

#[tokio::test]
async fn d27_no_http_no_chaining_no_credentials_attached() {
    let e = redirect_env().await;
    let mut b = Browser::new();
    for bad in [
        "http://app.example.com/",
        "https://app.example.com/x?url=https://evil.com",
        "https://app.example.com/x?next=//evil.com",
        "https://app.example.com/#https://evil.com",
    ] {
        assert_eq!(kept_rd(&e, &mut b, bad).await, "/", "{bad}");
    }
    let good = "https://app.example.com/x?y=1";
    let done = sign_in(&e, &mut b, "chain@example.com", good, 1).await;
    assert_eq!(done.location(), good, "nothing appended");
}

// ===== E. CSRF, including login CSRF =====

#[tokio::test]
async fn e28_cross_site_posts_are_refused() {
    let e = env(Opts::default()).await;
    let mut b = Browser::new();
    let csrf = page_csrf(&mut b, &e.origin).await;
    let origin = e.origin.clone();
    let bad_headers: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![("origin", &origin), ("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![("referer", "https://evil.example/page")],
    ];
    for path in [
        "/.portcullis/login",
        "/.portcullis/verify",
        "/.portcullis/code",
        "/.portcullis/logout",
    ] {
        let fields = [
            ("email", "csrf@example.com"),
            ("rd", "/"),
            ("csrf", csrf.as_str()),
        ];
        for headers in &bad_headers {
            let p = b.post_with(&e.origin, path, &fields, headers).await;
            assert_eq!(p.status, 403, "{path} {headers:?}");
        }
        let forged = [("email", "csrf@example.com"), ("csrf", "forged")];
        assert_eq!(b.post(&e.origin, path, &forged).await.status, 403, "{path}");
        let mut no_cookie = Browser::new();
        assert_eq!(
            no_cookie.post(&e.origin, path, &fields).await.status,
            403,
            "{path}"
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(e.smtp.received().len(), 0);
}

#[tokio::test]
async fn e29_an_attackers_link_does_not_sign_the_victim_in() {
    let e = env(Opts::default()).await;
    let mut attacker = Browser::new();
    ask_link(&mut attacker, &e.origin, "attacker@example.com", "/").await;
    let (token, _) = mail_for(&e.smtp, "attacker@example.com", 1).await;
    let mut victim = Browser::new();
    let link = e.url(&format!("/.portcullis/verify?token={token}"));
    let page = victim.get(&link).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.field("action").as_deref(),
        Some("show-code"),
        "only the button that shows the code"
    );
    let csrf = page_csrf(&mut victim, &e.origin).await;
    let p = victim
        .post(
            &e.origin,
            "/.portcullis/verify",
            &[("token", &token), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, 200);
    assert_eq!(session_cookie(&p), None);
    assert!(!victim.jar.contains_key(&cookie("portcullis")));
    assert_eq!(victim.get(&e.url("/x")).await.status, 303);
    assert_eq!(
        e.gw.app
            .session_count("attacker@example.com")
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn e30_no_state_change_on_get() {
    let e = env(Opts::default()).await;
    let mut b = Browser::new();
    sign_in(&e, &mut b, "get@example.com", "/", 1).await;
    for _ in 0..3 {
        assert_eq!(b.get(&e.url("/.portcullis/logout")).await.status, 200);
    }
    assert_eq!(
        b.get(&e.url("/x")).await.status,
        200,
        "GET logout logged out"
    );
    let mut c = Browser::new();
    ask_link(&mut c, &e.origin, "get2@example.com", "/").await;
    let (token, _) = mail_for(&e.smtp, "get2@example.com", 1).await;
    for _ in 0..3 {
        let p = c
            .get(&e.url(&format!("/.portcullis/verify?token={token}")))
            .await;
        assert_eq!(p.status, 200);
    }
    assert_eq!(confirm(&mut c, &e.origin, &token).await.status, 303);
    for path in ["/.portcullis/code", "/.portcullis/verify?token=x&csrf=y"] {
        let r = http().get(e.url(path)).send().await.unwrap();
        let want = if path.starts_with("/.portcullis/code") {
            405
        } else {
            410
        };
        assert_eq!(r.status(), want, "{path}");
    }
}

// ===== F. Proxy header trust =====

#[tokio::test]
async fn f31_identity_headers_stripped_in_every_spelling() {
    let e = env(Opts::default()).await;
    let mut b = Browser::new();
    sign_in(&e, &mut b, "real@example.com", "/", 1).await;
    let spoof = "X-Forwarded-Email: ceo@example.com\r\nx-forwarded-email: ceo2@example.com\r\n\
                 X_Forwarded_Email: ceo3@example.com\r\nX-Forwarded_User: ceo\r\nX-Forwarded-Groups: admins\r\n\
                 X-Forwarded-Preferred-Username: ceo\r\nX-Auth-Request-Email: ceo@example.com\r\n\
                 Remote-User: ceo\r\nRemote_Email: ceo@example.com\r\nRemote-Name: CEO\r\nRemote-Groups: admins\r\n";
    for (path, who) in [("/app", Some("real@example.com")), ("/public/x", None)] {
        let (status, body) = raw_get(&e, &b, path, spoof).await;
        assert_eq!(status, 200, "{path}");
        let seen = seen_from(&body);
        assert_eq!(seen.one("x-forwarded-email").as_deref(), who, "{path}");
        assert_eq!(seen.one("x-forwarded-user").as_deref(), who, "{path}");
        let identity: Vec<&String> = seen
            .headers
            .iter()
            .map(|(k, _)| k)
            .filter(|k| portcullis::headers::is_identity_header(k))
            .collect();
        let expected = if who.is_some() { 2 } else { 0 };
        assert_eq!(identity.len(), expected, "{path}: {identity:?}");
    }
}

#[tokio::test]
async fn f32_connection_cannot_remove_gateway_headers() {
    let e = env(Opts::default()).await;
    let mut b = Browser::new();
    sign_in(&e, &mut b, "conn@example.com", "/", 1).await;
    for connection in [
        "close, X-Forwarded-Email",
        "x-forwarded-email, X-Forwarded-User",
        "X-Forwarded-For, X-Real-IP, X-Forwarded-Proto, X-Forwarded-Host",
        "keep-alive, x_forwarded_email",
    ] {
        let extra = format!("Connection: {connection}\r\nX-Forwarded-Email: ceo@example.com\r\n");
        let req = format!(
            "GET /app HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nCookie: {}\r\n{extra}\r\n",
            e.gw.addr.port(),
            cookie_header(&b)
        );
        let r = raw(e.gw.addr, req.as_bytes(), Duration::from_secs(1)).await;
        assert_eq!(status_of(&r), 200, "{connection}: {r}");
        let seen = seen_from(body_of(&r));
        assert_eq!(
            seen.one("x-forwarded-email").as_deref(),
            Some("conn@example.com")
        );
        assert_eq!(
            seen.one("x-forwarded-user").as_deref(),
            Some("conn@example.com")
        );
        assert_eq!(seen.one("x-forwarded-for").as_deref(), Some("127.0.0.1"));
        assert_eq!(
            seen.one("x-forwarded-proto").as_deref(),
            Some(support::mode::scheme())
        );
        assert_eq!(
            seen.one("x-forwarded-host").as_deref(),
            Some(&*format!("127.0.0.1:{}", e.gw.addr.port()))
        );
        assert!(seen.all("connection").is_empty(), "{connection}");
    }
}

#[tokio::test]
async fn f33_hop_by_hop_headers_dropped_both_ways() {
    let e = env(Opts::default()).await;
    let extra =
        "Connection: keep-alive, X-Custom\r\nX-Custom: drop-me\r\nKeep-Alive: timeout=5\r\n\
                 Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\n\
                 Proxy-Authorization: Basic Zm9vOmJhcg==\r\nX-Kept: yes\r\n";
    let (status, body) = raw_get(&e, &Browser::new(), "/public/hop", extra).await;
    assert_eq!(status, 200);
    let seen = seen_from(&body);
    for gone in [
        "connection",
        "x-custom",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authorization",
    ] {
        assert!(seen.all(gone).is_empty(), "{gone} reached the upstream");
    }
    assert_eq!(seen.one("x-kept").as_deref(), Some("yes"));
    // The upstream's answer carries Keep-Alive: it does not reach the client.
    let r = http().get(e.url("/public/hop")).send().await.unwrap();
    assert_eq!(r.headers().get("keep-alive"), None);
    assert_eq!(r.headers().get("x-upstream").unwrap(), "1");
    // An answer naming a header of its own in `Connection`, to a request
    // without a body (the gateway's own client) and with one (hyper's).
    let without = http()
        .get(e.url("/public/hop-answer"))
        .send()
        .await
        .unwrap();
    let with = http()
        .post(e.url("/public/hop-answer"))
        .body("x=1")
        .send()
        .await
        .unwrap();
    for r in [without, with] {
        assert_eq!(r.status(), 200);
        for gone in [
            "connection",
            "x-upstream-hidden",
            "keep-alive",
            "proxy-authenticate",
        ] {
            assert_eq!(r.headers().get(gone), None, "{gone} reached the client");
        }
        assert_eq!(r.headers().get("x-upstream").unwrap(), "1");
    }
}

#[tokio::test]
async fn f34_forwarded_headers_are_trusted_only_from_trusted_proxies() {
    // Untrusted peer: ignored for routing, rate keys, links; rebuilt upstream.
    let e = env(Opts {
        login: "ip_rate = \"2/15m\"",
        ..Opts::default()
    })
    .await;
    // The spoofed scheme is the one this connection does not have.
    let spoof = format!(
        "X-Forwarded-For: 10.9.9.9\r\nX-Forwarded-Host: admin.internal\r\nX-Forwarded-Proto: {}\r\n\
         X-Forwarded-Uri: /public\r\nX-Forwarded-Prefix: https://evil\r\nForwarded: for=9.9.9.9\r\nX-Real-IP: 1.1.1.1\r\n",
        support::mode::other_scheme()
    );
    let spoof = spoof.as_str();
    let (status, _) = raw_get(&e, &Browser::new(), "/admin", spoof).await;
    assert_eq!(status, 401, "X-Forwarded-Uri changed the route");
    let (_, body) = raw_get(&e, &Browser::new(), "/public/fw", spoof).await;
    let seen = seen_from(&body);
    assert_eq!(seen.one("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(
        seen.one("x-forwarded-proto").as_deref(),
        Some(support::mode::scheme())
    );
    for gone in [
        "x-forwarded-uri",
        "x-forwarded-prefix",
        "forwarded",
        "x-real-ip",
    ] {
        assert!(seen.all(gone).is_empty(), "{gone}");
    }
    let mut b = Browser::new();
    let csrf = page_csrf(&mut b, &e.origin).await;
    for i in 0..4 {
        let ip = format!("10.0.0.{i}");
        let email = format!("ip{i}@example.com");
        b.post_with(
            &e.origin,
            "/.portcullis/login",
            &[("email", &email), ("rd", "/"), ("csrf", &csrf)],
            &[("origin", &e.origin), ("x-forwarded-for", &ip)],
        )
        .await;
    }
    e.smtp.wait_for(2, T).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        e.smtp.received().len(),
        2,
        "spoofed XFF split the IP bucket"
    );

    // Trusted proxy: the client is the rightmost untrusted address.
    let e = env(Opts {
        server: "trusted_proxies = [\"127.0.0.0/8\", \"10.0.0.0/8\"]",
        login: "ip_rate = \"1/15m\"",
        ..Opts::default()
    })
    .await;
    let mut b = Browser::new();
    let csrf = page_csrf(&mut b, &e.origin).await;
    for (i, xff) in [
        "1.1.1.1, 198.51.100.7, 10.0.0.5",
        "2.2.2.2, 198.51.100.7",
        "198.51.100.8",
    ]
    .iter()
    .enumerate()
    {
        let email = format!("chain{i}@example.com");
        b.post_with(
            &e.origin,
            "/.portcullis/login",
            &[("email", &email), ("rd", "/"), ("csrf", &csrf)],
            &[("origin", &e.origin), ("x-forwarded-for", xff)],
        )
        .await;
    }
    e.smtp.wait_for(2, T).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(e.mails_to("chain0@example.com"), 1);
    assert_eq!(
        e.mails_to("chain1@example.com"),
        0,
        "same client, 198.51.100.7"
    );
    assert_eq!(e.mails_to("chain2@example.com"), 1);
    let (_, body) = raw_get(
        &e,
        &Browser::new(),
        "/public/fw",
        "X-Forwarded-For: 203.0.113.7\r\n",
    )
    .await;
    assert_eq!(
        seen_from(&body).one("x-forwarded-for").as_deref(),
        Some("203.0.113.7, 127.0.0.1")
    );
}

#[tokio::test]
async fn f35_no_header_bypass_and_no_internals_on_the_public_port() {
    let e = env(Opts {
        only_routes: Some("[[route]]\npath = \"/app\"\nupstream = \"{up}\"\n"),
        ..Opts::default()
    })
    .await;
    let c = http();
    for ua in ["GoogleHC/1.0", "kube-probe/1.29", "ELB-HealthChecker/2.0"] {
        let r = c
            .get(e.url("/app/admin"))
            .header("user-agent", ua)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{ua}");
    }
    for path in [
        "/metrics",
        "/debug/pprof",
        "/healthz",
        "/.portcullis/metrics",
        "/.portcullis/debug/pprof",
        "/.portcullis/health",
        "/.portcullis/config",
    ] {
        let r = c.get(e.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    assert_eq!(e.up.count(), 0);
}

// ===== G. Framing and limits: see tests/protocol.rs; here the advisory floor =====

/// The versions in Cargo.lock of a crate.
fn locked(lock: &str, name: &str) -> Vec<Vec<u64>> {
    let mut out = Vec::new();
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == format!("name = \"{name}\"") {
            let v = lines.next().unwrap();
            let v = v.trim_start_matches("version = \"").trim_end_matches('"');
            let core = v.split(['-', '+']).next().unwrap();
            out.push(core.split('.').map(|n| n.parse().unwrap()).collect());
        }
    }
    out
}

/// An offline stand-in for `cargo audit` limited to the advisories the
/// checklist names (cargo-audit and the advisory database are not
/// available on this machine): every locked version is past the fix.
#[test]
fn g44_lockfile_is_past_the_checklist_advisories() {
    let lock =
        std::fs::read_to_string(format!("{}/Cargo.lock", env!("CARGO_MANIFEST_DIR"))).unwrap();
    for (name, floor, advisories) in [
        (
            "hyper",
            [0, 14, 10],
            "RUSTSEC-2020-0008, 2021-0020, 2021-0078, 2021-0079",
        ),
        ("h2", [0, 4, 4], "RUSTSEC-2023-0034, 2024-0003, 2024-0332"),
        ("rustls", [0, 23, 18], "RUSTSEC-2024-0399"),
        ("lettre", [0, 10, 0], "RUSTSEC-2021-0069"),
    ] {
        let versions = locked(&lock, name);
        assert!(!versions.is_empty(), "{name} is not in Cargo.lock");
        for v in versions {
            assert!(
                v.as_slice() >= floor.as_slice(),
                "{name} {v:?} is before the fix of {advisories}"
            );
        }
    }
}

// ===== H. Routing: host and path =====

/// Routes: `/` and `/public` public, `/admin` protected.
async fn path_env() -> Env {
    env(Opts {
        only_routes: Some(
            "[[route]]\npath = \"/\"\nupstream = \"{up}\"\naccess = \"public\"\n\n\
             [[route]]\npath = \"/public\"\nupstream = \"{up}\"\naccess = \"public\"\n\n\
             [[route]]\npath = \"/admin\"\nupstream = \"{up}\"\n",
        ),
        ..Opts::default()
    })
    .await
}

/// Sends `target` as the request target; (status, what the upstream saw).
async fn send_target(e: &Env, target: &[u8]) -> (u16, Option<Seen>) {
    let before = e.up.count();
    let mut req = b"GET ".to_vec();
    req.extend_from_slice(target);
    req.extend_from_slice(b" HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n");
    let r = raw(e.gw.addr, &req, T).await;
    let status = status_of(&r);
    let seen = (e.up.count() > before).then(|| e.up.last().unwrap());
    (status, seen)
}

/// Whether path_env serves `path` (canonical) without a session, read
/// literally and as an upstream that drops `;parameters` and trailing dots
/// and spaces reads it: in neither reading under /admin (in any case), and
/// under /public only with that exact case.
fn anonymous_allowed(path: &str) -> bool {
    let allowed = |path: &str| {
        let under = |prefix: &str| {
            path.get(..prefix.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(prefix))
                && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'))
        };
        !under("/admin") && (!under("/public") || path.starts_with("/public"))
    };
    allowed(path) && allowed(&lenient_reading(path))
}

/// `path` as Tomcat/Spring (`;parameters` dropped, raw or `%3B`) and IIS
/// (trailing dots and spaces trimmed) read it, empty segments merged.
/// Written apart from `path::matching_view` on purpose.
fn lenient_reading(path: &str) -> String {
    let mut out = String::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let upper = segment.to_ascii_uppercase();
        let cut = [upper.find(';'), upper.find("%3B")]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(segment.len());
        let mut name = &segment[..cut];
        while let Some(rest) = name.strip_suffix('.').or_else(|| name.strip_suffix("%20")) {
            name = rest;
        }
        if !name.is_empty() {
            out.push('/');
            out.push_str(name);
        }
    }
    if out.is_empty() || path.ends_with('/') {
        out.push('/');
    }
    out
}

#[tokio::test]
async fn h45_path_corpora_through_the_gateway() {
    let e = path_env().await;
    let more = flow::corpus_pairs("paths_more.txt");
    assert!(more.len() >= 50, "{}", more.len());
    let mut failures = Vec::new();
    for (input, expected) in flow::corpus_pairs("paths.txt").iter().chain(&more) {
        let (input, expected) = (input.as_str(), expected.as_str());
        let canonical = portcullis::path::normalize(input);
        // The corpus expectation and the library agree...
        match (&canonical, expected) {
            (Err(_), "400") => {}
            (Ok(c), e) if c == e => {}
            (got, _) => failures.push(format!(
                "{input:?}: normalize gave {got:?}, corpus says {expected:?}"
            )),
        }
        if input.contains(['#', '?']) {
            continue; // split by the HTTP layer first: see h47
        }
        // ...and the running gateway decides and forwards that one path.
        let (status, seen) = send_target(&e, input.as_bytes()).await;
        let on_the_wire = input
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:@/".contains(&b));
        let shown: String = input.chars().take(60).collect();
        match canonical {
            Err(_) | Ok(_) if status == 400 || status == 414 => {
                if canonical.is_ok() && on_the_wire && status != 414 {
                    failures.push(format!("{shown:?}: 400 for a good path"));
                }
                if seen.is_some() {
                    failures.push(format!("{shown:?}: refused but forwarded"));
                }
            }
            Err(_) => failures.push(format!("{shown:?}: {status} for a bad path")),
            Ok(c) if !anonymous_allowed(&c) => {
                if status != 401 || seen.is_some() {
                    failures.push(format!("{shown:?} -> {c}: {status}, served anonymously"));
                }
            }
            Ok(c) => match seen {
                Some(s) if status == 200 && s.target == c => {}
                other => failures.push(format!(
                    "{shown:?}: {status}, forwarded {:?}, want {c}",
                    other.map(|s| s.target)
                )),
            },
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn h46_ambiguous_paths_are_400() {
    let e = path_env().await;
    let cases: &[&[u8]] = &[
        b"/public%2Fadmin",
        b"/public%5Cadmin",
        b"/public%00/admin",
        b"/public%23/admin",
        b"/public%3F/admin",
        b"/public\\admin",
        b"/public%zz",
        b"/public%",
        b"/public/%FF",
        b"/public/caf\xc3",
        b"/public/\xff",
        b"/public/..;/admin",
    ];
    for target in cases {
        let (status, seen) = send_target(&e, target).await;
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(target));
        assert!(seen.is_none());
    }
    // Repeated slashes merge and dot segments resolve after one decoding.
    for (target, want) in [
        ("//public//a", "/public/a"),
        ("/a/./b/../c", "/a/c"),
        ("/public/%2e%2e/x", "/x"),
    ] {
        let (status, seen) = send_target(&e, target.as_bytes()).await;
        assert_eq!(
            (status, seen.map(|s| s.target)),
            (200, Some(want.to_string())),
            "{target}"
        );
    }
}

#[tokio::test]
async fn h47_the_query_and_fragment_are_never_matched() {
    let e = path_env().await;
    for target in ["/admin?x=/public", "/admin/?p=/public/", "/admin#/public"] {
        let (status, seen) = send_target(&e, target.as_bytes()).await;
        assert!(status == 401 || status == 400, "{target}: {status}");
        assert!(seen.is_none(), "{target}");
    }
    let (status, seen) = send_target(&e, b"/public/x?next=/admin").await;
    assert_eq!(
        (status, seen.unwrap().target.as_str()),
        (200, "/public/x?next=/admin")
    );
    let (status, seen) = send_target(&e, b"/private/secret%23/public").await;
    assert_eq!((status, seen.is_none()), (400, true));
}

#[tokio::test]
async fn h48_case_cannot_dodge_a_protected_prefix() {
    let e = path_env().await;
    for target in ["/ADMIN", "/Admin/x", "/aDmIn/", "/%41DMIN", "/%61dmin/x"] {
        let (status, seen) = send_target(&e, target.as_bytes()).await;
        assert_eq!((status, seen.is_none()), (401, true), "{target}");
    }
    let (status, _) = send_target(&e, b"/ADMIN%2Fpanel").await;
    assert_eq!(status, 400);
    // A public route grants anonymous access only on an exact-case match.
    let e = env(Opts::default()).await;
    let r = http().get(e.url("/PUBLIC/x")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http().get(e.url("/public/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn h49_canonical_host() {
    let e = env(Opts {
        only_routes: Some(
            "[[route]]\nhost = \"admin.example.com\"\nupstream = \"{up}\"\n\n\
             [[route]]\nhost = \"app.example.com\"\nupstream = \"{up}\"\naccess = \"public\"\n",
        ),
        ..Opts::default()
    })
    .await;
    for host in [
        "app.example.com",
        "APP.EXAMPLE.COM",
        "app.example.com.",
        "app.example.com:80",
        "App.Example.Com.:80",
    ] {
        let r = raw(
            e.gw.addr,
            format!("GET /p HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
            T,
        )
        .await;
        assert_eq!(status_of(&r), 200, "{host}");
    }
    let before = e.up.count();
    for host in [
        "unknown.example.com",
        "app.example.com.evil.com",
        "example.com",
        "127.0.0.1",
    ] {
        let r = raw(
            e.gw.addr,
            format!("GET /p HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
            T,
        )
        .await;
        assert_eq!(status_of(&r), 404, "{host} was routed");
    }
    assert_eq!(e.up.count(), before);
}

#[tokio::test]
async fn h50_default_deny_and_anchored_public_prefixes() {
    let e = env(Opts::default()).await;
    let c = http();
    for (path, want) in [
        ("/publicfoo", 401),
        ("/public.old", 401),
        ("/public", 200),
        ("/public/", 200),
        ("/public/x", 200),
        ("/anything", 401),
    ] {
        let r = c.get(e.url(path)).send().await.unwrap();
        assert_eq!(r.status(), want, "{path}");
    }
}

#[tokio::test]
async fn h51_fail_closed_on_parse_config_and_store_errors() {
    // A control byte in the request target.
    let e = path_env().await;
    for target in [&b"/public/a\x01b"[..], b"/public/a\x7fb", b"/admin\x00"] {
        let (status, seen) = send_target(&e, target).await;
        assert_eq!((status, seen.is_none()), (400, true));
    }
    // A bad value in the configuration: no configuration, naming the key.
    let text = flow::config_text(&Opts::default(), "http://127.0.0.1:9", 25, "")
        .replace("$PORT", "8080")
        .replace("access = \"public\"", "access = \"publik\"");
    let Err(err) =
        portcullis::Config::from_toml_str(&text, "t.toml", &[("PORTCULLIS_SECRET", SECRET)])
    else {
        panic!("a bad access value was accepted");
    };
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, vec!["route[1].access"]);
    // The store is down: 503, never a pass and never a redirect to sign in.
    let redis = std::sync::Arc::new(RedisServer::start());
    let e = env(Opts {
        redis: Some(redis.clone()),
        ..Opts::default()
    })
    .await;
    redis.stop();
    let mut b = Browser::new();
    b.jar.insert(cookie("portcullis"), forged_valid_cookie());
    let p = b.get(&e.url("/x")).await;
    assert_eq!(p.status, 503);
    assert_eq!(p.header("retry-after").as_deref(), Some("5"));
    assert_eq!(e.up.count(), 0);
}

// ===== I. WebSocket / Upgrade: item 52 is in tests/protocol.rs =====

/// A WebSocket handshake to `/ws` with the browser's cookies and `origin`.
async fn ws_handshake(
    e: &Env,
    b: &Browser,
    origin: Option<&str>,
) -> Result<tokio_tungstenite::WebSocketStream<support::client::Stream>, u16> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Error as WsError;
    let mut req = format!("ws://127.0.0.1:{}/ws", e.gw.addr.port())
        .into_client_request()
        .unwrap();
    let h = req.headers_mut();
    h.insert("cookie", cookie_header(b).parse().unwrap());
    if let Some(o) = origin {
        h.insert("origin", o.parse().unwrap());
    }
    let stream = support::client::connect(e.gw.addr).await;
    match tokio_tungstenite::client_async(req, stream).await {
        Ok((ws, resp)) => {
            assert_eq!(resp.status(), 101);
            Ok(ws)
        }
        Err(WsError::Http(resp)) => Err(resp.status().as_u16()),
        Err(other) => panic!("handshake failed: {other}"),
    }
}

#[tokio::test]
async fn i53_websocket_origin_is_checked() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let e = env(Opts::default()).await;
    let mut b = Browser::new();
    sign_in(&e, &mut b, "ws@example.com", "/", 1).await;
    for evil in [
        "https://evil.com",
        "http://127.0.0.1.evil.com",
        "null",
        "http://localhost:1",
    ] {
        assert_eq!(
            ws_handshake(&e, &b, Some(evil)).await.err(),
            Some(403),
            "Origin {evil}"
        );
    }
    // The page's own origin (any case, default port or not), and a client
    // that sends no Origin (not a browser), are let through.
    let own = e
        .origin
        .to_ascii_uppercase()
        .replace("HTTP://", "http://")
        .replace("HTTPS://", "https://");
    for origin in [Some(e.origin.as_str()), Some(own.as_str()), None] {
        let mut ws = ws_handshake(&e, &b, origin).await.unwrap();
        ws.send(Message::text("ping")).await.unwrap();
        let back = ws.next().await.unwrap().unwrap();
        assert_eq!(back.into_text().unwrap().as_str(), "ping");
    }
    // Without a session there is no handshake at all.
    assert_eq!(
        ws_handshake(&e, &Browser::new(), Some(&e.origin))
            .await
            .err(),
        Some(401)
    );
}

#[tokio::test]
async fn i53_websocket_closes_at_logout() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let e = env(Opts::default()).await;
    let mut b = Browser::new();
    sign_in(&e, &mut b, "wsout@example.com", "/", 1).await;
    let mut ws = ws_handshake(&e, &b, Some(&e.origin)).await.unwrap();
    ws.send(Message::text("before")).await.unwrap();
    assert_eq!(
        ws.next()
            .await
            .unwrap()
            .unwrap()
            .into_text()
            .unwrap()
            .as_str(),
        "before"
    );
    let confirm_page = b.get(&e.url("/.portcullis/logout")).await;
    let csrf = confirm_page.field("csrf").unwrap();
    let done = b
        .post(&e.origin, "/.portcullis/logout", &[("csrf", &csrf)])
        .await;
    assert_eq!(done.status, 303);
    let logged_out = Instant::now();
    // The tunnel ends: the stream closes (or errors) without another frame.
    let end = tokio::time::timeout(Duration::from_secs(3), async {
        match ws.next().await {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => {}
            Some(Ok(other)) => panic!("a frame after logout: {other:?}"),
        }
    })
    .await;
    assert!(end.is_ok(), "the WebSocket stayed open after logout");
    assert!(logged_out.elapsed() < Duration::from_secs(2));
}

// ===== J. Redis =====

#[tokio::test]
async fn j54_consume_is_atomic_on_redis() {
    let e = env(Opts {
        redis: Some(RedisServer::shared()),
        ..Opts::default()
    })
    .await;
    fifty_presses(&e, "race@example.com").await;
}

/// Every key under the test's prefix with its PTTL.
fn keys_with_ttl(redis: &RedisServer, prefix: &str) -> Vec<(String, i64)> {
    redis
        .cli(&["--scan", "--pattern", &format!("{prefix}*")])
        .lines()
        .map(|k| (k.to_string(), redis.cli(&["pttl", k]).parse().unwrap()))
        .collect()
}

#[tokio::test]
async fn j55_every_key_has_a_ttl() {
    let redis = RedisServer::shared();
    let e = env(Opts {
        redis: Some(redis.clone()),
        login: "resend_delay = \"30s\"",
        ..Opts::default()
    })
    .await;
    let mut b = Browser::new();
    sign_in(&e, &mut b, "ttl@example.com", "/", 1).await;
    let mut pending = Browser::new();
    ask_link(&mut pending, &e.origin, "pending@example.com", "/").await;
    let waiting = ask_link(&mut pending, &e.origin, "pending@example.com", "/").await;
    assert_eq!(waiting.status, 200);
    let csrf = waiting.field("csrf").unwrap();
    pending
        .post(
            &e.origin,
            "/.portcullis/code",
            &[("code", "AAAA-AAAA"), ("csrf", &csrf)],
        )
        .await;
    let keys = keys_with_ttl(&redis, &e.prefix);
    let kinds: std::collections::BTreeSet<&str> = keys
        .iter()
        .map(|(k, _)| k[e.prefix.len()..].split(':').next().unwrap())
        .collect();
    for kind in ["att", "brw", "fail", "ses", "idx", "rl"] {
        assert!(kinds.contains(kind), "no {kind} key among {keys:?}");
    }
    for (k, ttl) in &keys {
        assert!(*ttl > 0, "{k} has no TTL ({ttl})");
    }
}

#[tokio::test]
async fn j56_redis_paused_fails_closed_and_recovers() {
    let redis = std::sync::Arc::new(RedisServer::start());
    let e = env(Opts {
        redis: Some(redis.clone()),
        session: "revalidate = \"100ms\"\nstore_grace = \"300ms\"",
        ..Opts::default()
    })
    .await;
    let mut b = Browser::new();
    sign_in(&e, &mut b, "up@example.com", "/", 1).await;
    let mut other = Browser::new();
    let csrf = page_csrf(&mut other, &e.origin).await;
    redis.client_pause(Duration::from_millis(2500));
    let paused = Instant::now();
    let started = Instant::now();
    let p = other
        .post(
            &e.origin,
            "/.portcullis/login",
            &[("email", "new@example.com"), ("rd", "/"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, 503);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    while paused.elapsed() < Duration::from_millis(400) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    let p = b.get(&e.url("/x")).await;
    assert_eq!(
        (p.status, p.header("retry-after").as_deref()),
        (503, Some("5"))
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        b.fetch(&e.url("/api")).await.status,
        503,
        "never 401/303 for a session"
    );
    // The pause ends by itself (redis-cli's UNPAUSE would wait for it).
    let deadline = Instant::now() + T;
    while b.get(&e.url("/x")).await.status != 200 {
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        e.mails_to("new@example.com"),
        0,
        "mail sent while the store was down"
    );
}

#[tokio::test]
async fn j58_a_dump_is_useless() {
    let redis = RedisServer::shared();
    let e = env(Opts {
        redis: Some(redis.clone()),
        ..Opts::default()
    })
    .await;
    let mut b = Browser::new();
    sign_in(&e, &mut b, "dump@example.com", "/", 1).await;
    let (token, code) = mail_for(&e.smtp, "dump@example.com", 1).await;
    let mut pending = Browser::new();
    ask_link(&mut pending, &e.origin, "dump2@example.com", "/x").await;
    let (token2, code2) = mail_for(&e.smtp, "dump2@example.com", 1).await;
    let mut secrets = vec![token, code, token2, code2];
    secrets.extend(b.jar.values().cloned());
    secrets.extend(pending.jar.values().cloned());
    for (k, _) in keys_with_ttl(&redis, &e.prefix) {
        let kind = redis.cli(&["type", &k]);
        let value = match kind.as_str() {
            "string" => redis.cli(&["get", &k]),
            "set" => redis.cli(&["smembers", &k]),
            "zset" => redis.cli(&["zrange", &k, "0", "-1"]),
            other => panic!("{k}: unexpected type {other}"),
        };
        for s in &secrets {
            let s = s.split('.').nth(1).unwrap_or(s); // the id part of a session cookie
            assert!(!k.contains(s) && !value.contains(s), "{k} holds a secret");
        }
        if k.contains(":ses:") {
            let v: serde_json::Value = serde_json::from_str(&value).unwrap();
            let mut fields: Vec<&String> = v.as_object().unwrap().keys().collect();
            fields.sort();
            assert_eq!(fields, ["amr", "created_at", "email", "expires_at"], "{k}");
            // How the session was signed in (`link`, `code`, `oidc:NAME`).
            assert_eq!(v["amr"], "link", "{k}");
        }
    }
}

// ===== K. Email sending =====

#[tokio::test]
async fn k59_mail_is_sent_off_the_request_path() {
    let e = env(Opts {
        tarpit: true,
        mail: "queue_capacity = 2",
        smtp_timeout: Some("30s"),
        ..Opts::default()
    })
    .await;
    let mut b = Browser::new();
    let mut bodies = Vec::new();
    for i in 0..4 {
        let started = Instant::now();
        let who = format!("q{i}@example.com");
        let p = ask_link(&mut b, &e.origin, &who, "/").await;
        assert_eq!(p.status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        // The same page but for the address it repeats.
        bodies.push(p.body_without_address(&who));
    }
    assert!(
        bodies.iter().all(|body| *body == bodies[0]),
        "a full queue changed the answer"
    );
    let stats = e.gw.app.mailer().stats();
    assert_eq!((stats.queued, stats.dropped), (2, 2));
}

#[tokio::test]
async fn k60_temporary_failures_retry_permanent_ones_do_not() {
    let e = env(Opts {
        script: Some(Script::TempFailFirst(1)),
        ..Opts::default()
    })
    .await;
    ask_link(&mut Browser::new(), &e.origin, "retry@example.com", "/").await;
    e.smtp.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(e.smtp.attempts(), 2);
    assert_eq!(e.gw.app.mailer().stats().retried, 1);

    let e = env(Opts {
        script: Some(Script::AlwaysReject),
        ..Opts::default()
    })
    .await;
    ask_link(&mut Browser::new(), &e.origin, "reject@example.com", "/").await;
    let deadline = Instant::now() + T;
    while e.gw.app.mailer().stats().failed == 0 {
        assert!(Instant::now() < deadline, "550 not reported as failed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = e.gw.app.mailer().stats();
    assert_eq!((e.smtp.attempts(), stats.retried, stats.failed), (1, 0, 1));

    // A silent server is given up on at the configured timeout, then retried.
    let e = env(Opts {
        tarpit: true,
        smtp_timeout: Some("500ms"),
        ..Opts::default()
    })
    .await;
    ask_link(&mut Browser::new(), &e.origin, "slow@example.com", "/").await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while e.gw.app.mailer().stats().retried == 0 {
        assert!(
            Instant::now() < deadline,
            "no retry within 3 s: the timeout is not applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn k61_the_recipient_is_one_parsed_mailbox_and_headers_carry_no_input() {
    let e = env(Opts::default()).await;
    let rd = "/x?<script>alert(1)</script>";
    ask_link(
        &mut Browser::new(),
        &e.origin,
        " Mixed.Case@EXAMPLE.com ",
        rd,
    )
    .await;
    let mails = e.smtp.wait_for(1, T).await;
    let m = &mails[0];
    assert_eq!(m.to, vec!["mixed.case@example.com".to_string()]);
    assert_eq!(m.header("to").as_deref(), Some("mixed.case@example.com"));
    for h in ["cc", "bcc", "reply-to"] {
        assert_eq!(m.header(h), None, "{h}");
    }
    let raw = m.raw();
    let head = raw.split("\r\n\r\n").next().unwrap();
    assert!(!head.contains("script") && !head.contains("/x?"), "{head}");
    let subject = m.header("subject").unwrap();
    assert!(!subject.to_ascii_lowercase().contains("mixed"), "{subject}");
}

// ===== L. Gateway pages =====

#[tokio::test]
async fn l62_security_headers_on_gateway_pages() {
    let e = env(trusted_proxy()).await;
    let mut b = Browser::new();
    let https = get_with(
        &mut b,
        &e.url("/.portcullis/login"),
        &[("x-forwarded-proto", "https")],
    )
    .await;
    let plain = b.get(&e.url("/.portcullis/login")).await;
    for p in [&https, &plain] {
        assert_eq!(
            p.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
        assert_eq!(p.header("referrer-policy").as_deref(), Some("no-referrer"));
        assert_eq!(p.header("x-frame-options").as_deref(), Some("DENY"));
        assert_eq!(p.header("cache-control").as_deref(), Some("no-store"));
        let csp = p.header("content-security-policy").unwrap();
        for d in [
            "frame-ancestors 'none'",
            "form-action 'self'",
            "default-src 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(d), "{csp} lacks {d}");
        }
    }
    assert_eq!(
        https.header("strict-transport-security").as_deref(),
        Some("max-age=31536000")
    );
    // `plain` is a request without X-Forwarded-Proto: over plain HTTP no
    // HSTS; on the TLS listener it is an https request like the other.
    let hsts = support::mode::tls().then_some("max-age=31536000");
    assert_eq!(
        plain.header("strict-transport-security").as_deref(),
        hsts,
        "HSTS over {}",
        support::mode::scheme()
    );
    // Error pages too.
    let missing = b.get(&e.url("/.portcullis/nothing")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert!(missing.header("content-security-policy").is_some());
}
