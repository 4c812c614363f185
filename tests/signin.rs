//! The email sign-in flow end to end, against a real SMTP server, a real
//! upstream and both stores (memory, and a private redis-server). Each
//! test body is written once and run for both backends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::browser::{Browser, Page};
use support::gateway::TestGateway;
use support::redis::RedisServer;
use support::smtp::{Script, SmtpServer};
use support::upstream::Upstream;

#[derive(Clone, Copy, Debug)]
enum Backend {
    Memory,
    Redis,
}

struct Env {
    gw: TestGateway,
    up: Upstream,
    smtp: SmtpServer,
    _redis: Option<Arc<RedisServer>>,
    origin: String,
}

fn unique(name: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t{}-{}-{name}:",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn store_block(backend: Backend, redis: Option<&RedisServer>, prefix: &str) -> String {
    match (backend, redis) {
        (Backend::Redis, Some(r)) => format!(
            "[store]\nbackend = \"redis\"\nurl = \"{}\"\nkey_prefix = \"{prefix}\"\n",
            r.url()
        ),
        _ => "[store]\nbackend = \"memory\"\n".to_string(),
    }
}

/// The gateway config; `login` and `session` lines are added to those
/// sections, `extra` at the end.
fn config_text(up: &Upstream, smtp_port: u16, store: &str, login: &str, session: &str) -> String {
    // Defaults for the test, unless the test sets the same key.
    let mut login = login.to_string();
    for line in [
        "allow_domains = [\"example.com\"]",
        "resend_delay = \"0s\"",
        "address_rate = \"100/15m\"",
        "ip_rate = \"1000/15m\"",
    ] {
        let key = line.split(' ').next().unwrap();
        if !login.contains(&format!("{key} ")) {
            login.push('\n');
            login.push_str(line);
        }
    }
    format!(
        r#"
[server]
listen = "127.0.0.1:$PORT"
public_url = "http://127.0.0.1:$PORT"

[session]
secret_env = "PORTCULLIS_SECRET"
{session}

[login]
{login}

[mail]
from = "Portcullis <login@example.com>"
transport = "smtp"
[mail.smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
timeout = "5s"

{store}

[ui]
title = "Test Tools"

[[route]]
path = "/"
upstream = "{up}"

[[route]]
path = "/public"
upstream = "{up}"
access = "public"

[[route]]
path = "/admin"
upstream = "{up}"
allow_emails = ["boss@example.com"]
"#,
        up = up.url()
    )
}

async fn env_with(backend: Backend, script: Script, login: &str, session: &str) -> Env {
    let up = Upstream::start().await;
    let smtp = SmtpServer::start(script);
    let redis = matches!(backend, Backend::Redis).then(RedisServer::shared);
    let store = store_block(backend, redis.as_deref(), &unique("signin"));
    let gw = TestGateway::start(&config_text(&up, smtp.port(), &store, login, session)).await;
    let origin = gw.origin();
    Env {
        gw,
        up,
        smtp,
        _redis: redis,
        origin,
    }
}

async fn env(backend: Backend) -> Env {
    env_with(backend, Script::Accept, "", "").await
}

/// The link token and the code from the newest mail to `to`.
async fn mail_for(smtp: &SmtpServer, to: &str, nth: usize) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mails: Vec<_> = smtp
            .received()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == to))
            .collect();
        if mails.len() >= nth {
            let text = mails[nth - 1].text().unwrap();
            let start = text.find("/.portcullis/verify?token=").unwrap()
                + "/.portcullis/verify?token=".len();
            let token: String = text[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            let code = text
                .split_whitespace()
                .find(|w| {
                    w.len() == 9
                        && w.as_bytes()[4] == b'-'
                        && w.chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
                })
                .unwrap()
                .to_string();
            return (token, code);
        }
        assert!(Instant::now() < deadline, "no mail {nth} for {to}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// GET the sign-in page and POST the address: the "check your email" page.
async fn ask_link(b: &mut Browser, origin: &str, email: &str, rd: &str) -> Page {
    let page = b
        .get(&format!("{origin}/.portcullis/login?rd={}", urlenc(rd)))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.field("csrf").unwrap();
    b.post(
        origin,
        "/.portcullis/login",
        &[("email", email), ("rd", rd), ("csrf", &csrf)],
    )
    .await
}

fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The whole sign-in in one browser; returns the POST /verify answer.
async fn sign_in(e: &Env, b: &mut Browser, email: &str, rd: &str, nth_mail: usize) -> Page {
    let page = ask_link(b, &e.origin, email, rd).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (token, _) = mail_for(&e.smtp, &email.trim().to_lowercase(), nth_mail).await;
    let confirm = b
        .get(&format!("{}/.portcullis/verify?token={token}", e.origin))
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let csrf = confirm
        .field("csrf")
        .expect("the asking browser gets a button");
    b.post(
        &e.origin,
        "/.portcullis/verify",
        &[("token", &token), ("csrf", &csrf)],
    )
    .await
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Memory).await; })*
        }
        mod redis {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Redis).await; })*
        }
    };
}

both!(
    full_journey_lands_on_the_original_url_with_identity,
    fifty_concurrent_posts_make_one_session,
    expired_links_are_refused,
    mail_scanner_changes_nothing_then_the_browser_completes,
    code_typed_in_the_asking_browser_signs_in_there,
    five_wrong_codes_end_the_attempt,
    answers_are_identical_whatever_the_address,
    spoofed_identity_headers_never_pass,
    redirect_corpus_falls_back_to_root,
    smtp_refusing_then_accepting_delivers_later,
    logout_ends_the_session_everywhere,
    forbidden_page_names_the_address,
    cross_site_posts_are_refused,
    a_new_session_id_at_every_sign_in,
    link_is_built_from_configuration_not_the_request,
    idle_and_absolute_timeouts_end_sessions,
    non_navigation_gets_401_and_navigation_303,
    newer_link_replaces_older_for_the_same_browser,
    revoking_an_address_ends_all_its_sessions,
    strict_address_parsing_sends_nothing,
);

async fn full_journey_lands_on_the_original_url_with_identity(backend: Backend) {
    let e = env(backend).await;
    let mut b = Browser::new();
    let first = b.get(&format!("{}/app/page?x=1", e.origin)).await;
    assert_eq!(first.status, 303);
    assert_eq!(
        first.location(),
        "/.portcullis/login?rd=%2Fapp%2Fpage%3Fx%3D1"
    );
    let rd = "/app/page?x=1";
    let done = sign_in(&e, &mut b, "Alice@Example.COM ", rd, 1).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), rd);
    let cookie = done
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("portcullis=v1."))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let app = b.get(&format!("{}{rd}", e.origin)).await;
    assert_eq!(app.status, 200, "{}", app.body);
    let seen = e.up.last().unwrap();
    assert_eq!(seen.target, rd);
    assert_eq!(
        seen.one("x-forwarded-email").as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(
        seen.one("x-forwarded-user").as_deref(),
        Some("alice@example.com")
    );
    let cookies = seen.one("cookie").unwrap_or_default();
    assert!(
        !cookies.contains("portcullis"),
        "gateway cookies forwarded: {cookies}"
    );
    assert_eq!(
        e.gw.app.session_count("alice@example.com").await.unwrap(),
        1
    );
    // The mail: both parts, the link and the code, built from public_url.
    let mail = &e.smtp.received()[0];
    assert!(mail.html().unwrap().contains("/.portcullis/verify?token="));
    assert!(mail
        .text()
        .unwrap()
        .contains(&format!("{}/.portcullis/verify?token=", e.origin)));
}

async fn fifty_concurrent_posts_make_one_session(backend: Backend) {
    let e = env(backend).await;
    let mut b = Browser::new();
    ask_link(&mut b, &e.origin, "race@example.com", "/").await;
    let (token, _) = mail_for(&e.smtp, "race@example.com", 1).await;
    let confirm = b
        .get(&format!("{}/.portcullis/verify?token={token}", e.origin))
        .await;
    let csrf = confirm.field("csrf").unwrap();
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
    let mut wins = 0;
    let mut gone = 0;
    for t in tasks {
        let p = t.await.unwrap();
        match p.status {
            303 => {
                assert!(p
                    .set_cookies()
                    .iter()
                    .any(|c| c.starts_with("portcullis=v1.")));
                wins += 1;
            }
            410 => gone += 1,
            other => panic!("unexpected {other}: {}", p.body),
        }
    }
    assert_eq!((wins, gone), (1, 49));
    assert_eq!(e.gw.app.session_count("race@example.com").await.unwrap(), 1);
}

async fn expired_links_are_refused(backend: Backend) {
    let e = env_with(backend, Script::Accept, "link_ttl = \"1s\"", "").await;
    let mut b = Browser::new();
    ask_link(&mut b, &e.origin, "late@example.com", "/").await;
    let (token, code) = mail_for(&e.smtp, "late@example.com", 1).await;
    // The TTL itself is what is tested: waiting it out is the point.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let page = b
        .get(&format!("{}/.portcullis/verify?token={token}", e.origin))
        .await;
    assert_eq!(page.status, 410);
    assert!(page.body.contains("can no longer be used"));
    let csrf = page_csrf(&mut b, &e.origin).await;
    let by_code = b
        .post(
            &e.origin,
            "/.portcullis/code",
            &[("code", &code), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(by_code.status, 410);
    // Unknown and used tokens get the very same page.
    let unknown = b
        .get(&format!(
            "{}/.portcullis/verify?token={}",
            e.origin,
            "A".repeat(43)
        ))
        .await;
    assert_eq!(unknown.status, 410);
    assert_eq!(unknown.body, page.body);
}

async fn page_csrf(b: &mut Browser, origin: &str) -> String {
    b.get(&format!("{origin}/.portcullis/login"))
        .await
        .field("csrf")
        .unwrap()
}

async fn mail_scanner_changes_nothing_then_the_browser_completes(backend: Backend) {
    let e = env(backend).await;
    let mut b = Browser::new();
    ask_link(&mut b, &e.origin, "scanned@example.com", "/inbox").await;
    let (token, code) = mail_for(&e.smtp, "scanned@example.com", 1).await;
    let link = format!("{}/.portcullis/verify?token={token}", e.origin);
    // A scanner: HEAD, two cookie-less GETs, and a POST with its own CSRF
    // cookie but no verifier.
    let client = support::client::http();
    let head = client.head(&link).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert!(head
        .headers()
        .get_all("set-cookie")
        .iter()
        .all(|c| !c.to_str().unwrap().starts_with("portcullis=")));
    let mut scanner = Browser::new();
    for _ in 0..2 {
        let p = scanner.get(&link).await;
        assert_eq!(p.status, 200);
        assert!(!p.body.contains(&code), "no code on GET elsewhere");
        assert_eq!(p.field("action").as_deref(), Some("show-code"));
        assert!(!scanner.jar.contains_key("portcullis"));
    }
    let csrf = page_csrf(&mut scanner, &e.origin).await;
    for action in [None, Some("show-code")] {
        let mut fields = vec![("token", token.as_str()), ("csrf", csrf.as_str())];
        fields.extend(action.map(|a| ("action", a)));
        let p = scanner
            .post(&e.origin, "/.portcullis/verify", &fields)
            .await;
        assert_eq!(p.status, 200);
        assert!(p.body.contains(&code), "the button shows the code");
    }
    assert!(!scanner.jar.contains_key("portcullis"));
    assert_eq!(
        e.gw.app.session_count("scanned@example.com").await.unwrap(),
        0
    );
    // The person, in the browser that asked, still gets in.
    let confirm = b.get(&link).await;
    let csrf = confirm.field("csrf").unwrap();
    let done = b
        .post(
            &e.origin,
            "/.portcullis/verify",
            &[("token", &token), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location(), "/inbox");
}

async fn code_typed_in_the_asking_browser_signs_in_there(backend: Backend) {
    let e = env(backend).await;
    let mut laptop = Browser::new();
    let waiting = ask_link(&mut laptop, &e.origin, "bob@example.com", "/dash").await;
    let (token, code) = mail_for(&e.smtp, "bob@example.com", 1).await;
    let mut phone = Browser::new();
    let shown = phone
        .get(&format!("{}/.portcullis/verify?token={token}", e.origin))
        .await;
    assert!(!shown.body.contains(&code), "no code on GET elsewhere");
    let pressed = phone
        .post(
            &e.origin,
            "/.portcullis/verify",
            &[
                ("token", &shown.field("token").unwrap()),
                ("csrf", &shown.field("csrf").unwrap()),
                ("action", &shown.field("action").unwrap()),
            ],
        )
        .await;
    assert_eq!(pressed.status, 200);
    assert!(pressed.body.contains(&format!(">{code}<")));
    assert!(!phone.jar.contains_key("portcullis"));
    let typed = code.to_lowercase().replace('-', "");
    let csrf = waiting.field("csrf").unwrap();
    let done = laptop
        .post(
            &e.origin,
            "/.portcullis/code",
            &[("code", &typed), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), "/dash");
    assert_eq!(laptop.get(&format!("{}/dash", e.origin)).await.status, 200);
    assert_eq!(phone.get(&format!("{}/dash", e.origin)).await.status, 303);
    // The code worked once: the link is spent too.
    let again = laptop
        .get(&format!("{}/.portcullis/verify?token={token}", e.origin))
        .await;
    assert_eq!(again.status, 410);
}

async fn five_wrong_codes_end_the_attempt(backend: Backend) {
    let e = env(backend).await;
    let mut b = Browser::new();
    let waiting = ask_link(&mut b, &e.origin, "brute@example.com", "/").await;
    let (token, code) = mail_for(&e.smtp, "brute@example.com", 1).await;
    let csrf = waiting.field("csrf").unwrap();
    let wrong = if code.starts_with('A') {
        "BBBB-BBBB"
    } else {
        "AAAA-AAAA"
    };
    for left in (1..=4).rev() {
        let p = b
            .post(
                &e.origin,
                "/.portcullis/code",
                &[("code", wrong), ("csrf", &csrf)],
            )
            .await;
        assert_eq!(p.status, 400);
        assert!(p.body.contains(&format!("{left} tr")), "{}", p.body);
    }
    let locked = b
        .post(
            &e.origin,
            "/.portcullis/code",
            &[("code", wrong), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(locked.status, 429);
    let right = b
        .post(
            &e.origin,
            "/.portcullis/code",
            &[("code", &code), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(right.status, 410);
    let link = b
        .get(&format!("{}/.portcullis/verify?token={token}", e.origin))
        .await;
    assert_eq!(link.status, 410);
    assert_eq!(
        e.gw.app.session_count("brute@example.com").await.unwrap(),
        0
    );
}

async fn answers_are_identical_whatever_the_address(backend: Backend) {
    let e = env_with(backend, Script::Accept, "address_rate = \"2/15m\"", "").await;
    let mut b = Browser::new();
    // Use one browser, so even the CSRF field is the same: then every
    // answer must be identical byte for byte.
    for _ in 0..3 {
        ask_link(&mut b, &e.origin, "limited@example.com", "/").await;
    }
    let mut answers = Vec::new();
    for who in [
        "allowed@example.com",
        "unknown@example.com",
        "eve@evil.example",
        "limited@example.com",
    ] {
        let p = ask_link(&mut b, &e.origin, who, "/").await;
        assert_eq!(p.status, 200);
        answers.push((who, p));
    }
    // The same page, byte for byte, but for the address it repeats (the
    // one typed).
    let (first_who, first) = &answers[0];
    for (who, p) in &answers[1..] {
        assert_eq!(
            p.body_without_address(who),
            first.body_without_address(first_who),
            "{who} got another page"
        );
        let names = |p: &Page| {
            let mut v: Vec<String> = p
                .headers
                .keys()
                .map(|k| k.to_string())
                .filter(|k| k != "date")
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(p), names(first), "{who} got other headers");
    }
    // Only the allowed, unlimited addresses got mail (2 for limited, 1 each for the others).
    e.smtp.wait_for(4, Duration::from_secs(10)).await;
    let to = |a: &str| {
        e.smtp
            .received()
            .iter()
            .filter(|m| m.to.iter().any(|t| t == a))
            .count()
    };
    assert_eq!(to("allowed@example.com"), 1);
    assert_eq!(to("unknown@example.com"), 1);
    assert_eq!(to("eve@evil.example"), 0);
    assert_eq!(to("limited@example.com"), 2);
}

async fn spoofed_identity_headers_never_pass(backend: Backend) {
    let e = env(backend).await;
    let mut b = Browser::new();
    sign_in(&e, &mut b, "real@example.com", "/", 1).await;
    let cookie: String = b
        .jar
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let client = support::client::http();
    for path in ["/app", "/public/x"] {
        let r = client
            .get(format!("{}{path}", e.origin))
            .header("cookie", &cookie)
            .header("X-Forwarded-Email", "ceo@example.com")
            .header("x-forwarded-email", "ceo2@example.com")
            .header("X_Forwarded_Email", "ceo3@example.com")
            .header("X-Forwarded_User", "ceo")
            .header("X-Forwarded-Groups", "admins")
            .header("X-Auth-Request-Email", "ceo@example.com")
            .header("Remote-User", "ceo")
            .header("Remote_Email", "ceo@example.com")
            .header("Remote-Name", "CEO")
            .header("Remote-Groups", "admins")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let seen = e.up.last().unwrap();
        // Public routes carry no identity, even for a signed-in user (as
        // oauth2-proxy's skip-auth routes and Authelia's bypass rules).
        let expected = (path == "/app").then_some("real@example.com");
        assert_eq!(seen.one("x-forwarded-email").as_deref(), expected, "{path}");
        assert_eq!(seen.one("x-forwarded-user").as_deref(), expected, "{path}");
        for (k, _) in &seen.headers {
            let canonical = k.to_ascii_lowercase().replace('_', "-");
            assert!(
                canonical == "x-forwarded-email"
                    || canonical == "x-forwarded-user"
                    || !portcullis::headers::is_identity_header(k),
                "{k} reached the upstream on {path}"
            );
        }
    }
    // Anonymous on the public route: no identity at all.
    let r = client
        .get(format!("{}/public/y", e.origin))
        .header("X-Forwarded-Email", "ceo@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(e.up.last().unwrap().all("x-forwarded-email").is_empty());
}

fn redirect_corpus() -> Vec<String> {
    let text = std::fs::read_to_string(format!(
        "{}/tests/corpus/redirects.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if line.contains("<A:") {
            continue;
        }
        let raw = line
            .replace("<TAB>", "\t")
            .replace("<LF>", "\n")
            .replace("<CR>", "\r")
            .replace("<VT>", "\x0b")
            .replace("<NUL>", "\0")
            .replace("<SP>", " ");
        let decoded: String = percent_decode(&raw);
        out.push(raw);
        out.push(decoded);
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn redirect_corpus_falls_back_to_root(backend: Backend) {
    let e = env(backend).await;
    let mut b = Browser::new();
    let corpus = redirect_corpus();
    assert!(corpus.len() >= 100, "{}", corpus.len());
    for rd in &corpus {
        let page = b
            .get(&format!("{}/.portcullis/login?rd={}", e.origin, urlenc(rd)))
            .await;
        assert_eq!(page.status, 200);
        assert_eq!(page.field("rd").as_deref(), Some("/"), "rd {rd:?} was kept");
    }
    // And through a whole sign-in: the Location is the fallback.
    let done = sign_in(&e, &mut b, "rd@example.com", "//evil.example/x", 1).await;
    assert_eq!(done.location(), "/");
    let mut b2 = Browser::new();
    let done = sign_in(&e, &mut b2, "rd2@example.com", "https://evil.example/", 1).await;
    assert_eq!(done.location(), "/");
    let mut b3 = Browser::new();
    let done = sign_in(&e, &mut b3, "rd3@example.com", "/ok/path?q=1", 1).await;
    assert_eq!(done.location(), "/ok/path?q=1");
}

async fn smtp_refusing_then_accepting_delivers_later(backend: Backend) {
    let e = env_with(backend, Script::TempFailFirst(2), "", "").await;
    let mut b = Browser::new();
    let started = Instant::now();
    let page = ask_link(&mut b, &e.origin, "patient@example.com", "/").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Check your email"));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the answer waited for SMTP"
    );
    let mails = e.smtp.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 1);
    assert!(e.smtp.attempts() >= 3);
    assert!(e.gw.app.mailer().stats().retried >= 2);
}

async fn logout_ends_the_session_everywhere(backend: Backend) {
    let e = env(backend).await;
    let mut b = Browser::new();
    sign_in(&e, &mut b, "out@example.com", "/", 1).await;
    let old = b.jar.clone();
    let confirm = b
        .get(&format!(
            "{}/.portcullis/logout?rd=https://evil.example/",
            e.origin
        ))
        .await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("out@example.com"));
    assert_eq!(
        b.get(&format!("{}/x", e.origin)).await.status,
        200,
        "GET logout changed nothing"
    );
    let csrf = confirm.field("csrf").unwrap();
    let rd = confirm.field("rd").unwrap();
    let done = b
        .post(
            &e.origin,
            "/.portcullis/logout",
            &[("csrf", &csrf), ("rd", &rd)],
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(
        done.location(),
        "/.portcullis/logout?done=1",
        "off-site rd refused"
    );
    assert_eq!(
        done.header("clear-site-data").as_deref(),
        Some("\"cookies\"")
    );
    assert!(done
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("portcullis=;") && c.contains("Max-Age=0")));
    assert_eq!(e.gw.app.session_count("out@example.com").await.unwrap(), 0);
    // Replaying the old cookie: back to sign-in.
    let mut replay = Browser::new();
    replay.jar = old;
    let p = replay.get(&format!("{}/x", e.origin)).await;
    assert_eq!(p.status, 303);
    assert!(p.location().starts_with("/.portcullis/login"));
}

async fn forbidden_page_names_the_address(backend: Backend) {
    let e = env(backend).await;
    let mut b = Browser::new();
    sign_in(&e, &mut b, "alice@example.com", "/", 1).await;
    let before = e.up.count();
    let p = b.get(&format!("{}/admin/panel", e.origin)).await;
    assert_eq!(p.status, 403);
    assert!(p.body.contains("alice@example.com"));
    assert!(p.body.contains("action=\"/.portcullis/logout\""));
    assert_eq!(e.up.count(), before);
    let mut boss = Browser::new();
    sign_in(&e, &mut boss, "boss@example.com", "/", 1).await;
    assert_eq!(
        boss.get(&format!("{}/admin/panel", e.origin)).await.status,
        200
    );
}

async fn cross_site_posts_are_refused(backend: Backend) {
    let e = env(backend).await;
    let mut b = Browser::new();
    let csrf = page_csrf(&mut b, &e.origin).await;
    let fields = [
        ("email", "csrf@example.com"),
        ("rd", "/"),
        ("csrf", csrf.as_str()),
    ];
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![
            ("origin", e.origin.as_str()),
            ("sec-fetch-site", "cross-site"),
        ],
        vec![("sec-fetch-site", "same-site")],
        vec![("referer", "https://evil.example/page")],
    ];
    for headers in &cases {
        let p = b
            .post_with(&e.origin, "/.portcullis/login", &fields, headers)
            .await;
        assert_eq!(p.status, 403, "{headers:?}");
    }
    let bad_token = [
        ("email", "csrf@example.com"),
        ("rd", "/"),
        ("csrf", "forged"),
    ];
    assert_eq!(
        b.post(&e.origin, "/.portcullis/login", &bad_token)
            .await
            .status,
        403
    );
    let mut no_cookie = Browser::new();
    assert_eq!(
        no_cookie
            .post(&e.origin, "/.portcullis/login", &fields)
            .await
            .status,
        403
    );
    // Fetch metadata alone (same-origin) is enough with a good token.
    let ok = b
        .post_with(
            &e.origin,
            "/.portcullis/login",
            &fields,
            &[("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(ok.status, 200);
    e.smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(e.smtp.received().len(), 1);
}

async fn a_new_session_id_at_every_sign_in(backend: Backend) {
    let e = env(backend).await;
    let mut b = Browser::new();
    b.jar
        .insert("portcullis".into(), "v1.chosen-by-attacker.x".into());
    let first = sign_in(&e, &mut b, "fix@example.com", "/", 1).await;
    let s1 = b.jar.get("portcullis").unwrap().clone();
    assert_ne!(s1, "v1.chosen-by-attacker.x");
    assert!(first
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("portcullis=v1.")));
    sign_in(&e, &mut b, "fix@example.com", "/", 2).await;
    let s2 = b.jar.get("portcullis").unwrap().clone();
    assert_ne!(s1, s2);
    // The browser's previous session ended with the new sign-in.
    assert_eq!(e.gw.app.session_count("fix@example.com").await.unwrap(), 1);
    // A tampered cookie is refused without a store lookup.
    let mut t = Browser::new();
    let mut forged = s2.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    t.jar.insert("portcullis".into(), forged);
    assert_eq!(t.get(&format!("{}/x", e.origin)).await.status, 303);
}

async fn link_is_built_from_configuration_not_the_request(backend: Backend) {
    let e = env(backend).await;
    let mut b = Browser::new();
    let csrf = page_csrf(&mut b, &e.origin).await;
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("email", "host@example.com"),
            ("rd", "/"),
            ("csrf", csrf.as_str()),
        ])
        .finish();
    let cookie: String = b
        .jar
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let req = format!(
        "POST /.portcullis/login HTTP/1.1\r\nHost: evil.example\r\nX-Forwarded-Host: evil2.example\r\n\
         Origin: http://evil.example\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let resp = support::client::raw(e.gw.addr, req.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(support::client::status_of(&resp), 200, "{resp}");
    e.smtp.wait_for(1, Duration::from_secs(10)).await;
    let text = e.smtp.received()[0].text().unwrap();
    assert!(
        text.contains(&format!("{}/.portcullis/verify?token=", e.origin)),
        "{text}"
    );
    assert!(!text.contains("evil"), "{text}");
}

async fn idle_and_absolute_timeouts_end_sessions(backend: Backend) {
    let e = env_with(
        backend,
        Script::Accept,
        "",
        "lifetime = \"3s\"\nidle_timeout = \"1s\"\nrevalidate = \"100ms\"",
    )
    .await;
    let mut b = Browser::new();
    sign_in(&e, &mut b, "idle@example.com", "/", 1).await;
    // Keep it busy: used every 300 ms, it outlives the idle timeout...
    for _ in 0..6 {
        assert_eq!(b.get(&format!("{}/x", e.origin)).await.status, 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // ...but not its absolute lifetime (3 s after sign-in).
    tokio::time::sleep(Duration::from_millis(1400)).await;
    assert_eq!(b.get(&format!("{}/x", e.origin)).await.status, 303);
    // Idle: unused for longer than 1 s.
    let mut b2 = Browser::new();
    sign_in(&e, &mut b2, "idle@example.com", "/", 2).await;
    assert_eq!(b2.get(&format!("{}/x", e.origin)).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(b2.get(&format!("{}/x", e.origin)).await.status, 303);
}

async fn non_navigation_gets_401_and_navigation_303(backend: Backend) {
    let e = env(backend).await;
    let mut b = Browser::new();
    assert_eq!(b.fetch(&format!("{}/api/data", e.origin)).await.status, 401);
    let nav = b.get(&format!("{}/api/data", e.origin)).await;
    assert_eq!(nav.status, 303);
    let client = support::client::http();
    let post = client
        .post(format!("{}/api/data", e.origin))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 401);
    assert_eq!(e.up.count(), 0);
}

async fn newer_link_replaces_older_for_the_same_browser(backend: Backend) {
    let e = env(backend).await;
    let mut b = Browser::new();
    ask_link(&mut b, &e.origin, "twice@example.com", "/").await;
    let (old, _) = mail_for(&e.smtp, "twice@example.com", 1).await;
    ask_link(&mut b, &e.origin, "twice@example.com", "/").await;
    let (new, _) = mail_for(&e.smtp, "twice@example.com", 2).await;
    assert_ne!(old, new);
    assert_eq!(
        b.get(&format!("{}/.portcullis/verify?token={old}", e.origin))
            .await
            .status,
        410
    );
    assert_eq!(
        b.get(&format!("{}/.portcullis/verify?token={new}", e.origin))
            .await
            .status,
        200
    );
}

async fn revoking_an_address_ends_all_its_sessions(backend: Backend) {
    let e = env(backend).await;
    let mut b1 = Browser::new();
    let mut b2 = Browser::new();
    sign_in(&e, &mut b1, "many@example.com", "/", 1).await;
    sign_in(&e, &mut b2, "many@example.com", "/", 2).await;
    assert_eq!(e.gw.app.session_count("many@example.com").await.unwrap(), 2);
    assert_eq!(e.gw.app.revoke("many@example.com").await.unwrap(), 2);
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let s1 = b1.get(&format!("{}/x", e.origin)).await.status;
        let s2 = b2.get(&format!("{}/x", e.origin)).await.status;
        if s1 == 303 && s2 == 303 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "revocation not applied within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn strict_address_parsing_sends_nothing(backend: Backend) {
    let e = env(backend).await;
    let mut b = Browser::new();
    for bad in [
        "a@evil.com@example.com",
        "v@example.com,a@evil.com",
        "v@example.com\nBcc: a@evil.com",
        "Victim <v@example.com>",
        "\"a@b\"@example.com",
    ] {
        let p = ask_link(&mut b, &e.origin, bad, "/").await;
        assert_eq!(p.status, 400, "{bad:?}");
        assert!(p.body.contains("Enter one email address"));
    }
    // Repeated and array-style fields.
    let csrf = page_csrf(&mut b, &e.origin).await;
    let p = b
        .post(
            &e.origin,
            "/.portcullis/login",
            &[
                ("email", "v@example.com"),
                ("email", "a@example.com"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(p.status, 400);
    let p = b
        .post(
            &e.origin,
            "/.portcullis/login",
            &[
                ("email[]", "v@example.com"),
                ("email", "a@example.com"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(p.status, 400);
    // Nothing was sent for any of them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(e.smtp.received().len(), 0);
    assert_eq!(e.gw.app.mailer().stats().queued, 0);
}
