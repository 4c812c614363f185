//! Fault injection: what a person gets when the upstream, Redis or the SMTP
//! server misbehaves, and that the gateway recovers without a restart.
//!
//! For every fault the tests check four things: the answer (status, page,
//! timing), no panic (the real binary's log is scanned for "panicked"; the
//! in-process gateways count panics on tokio worker threads), no 2xx on a
//! protected route without a valid session while the fault lasts, and
//! recovery once the fault ends, on the same gateway.
//!
//! - Upstream (`FaultyUpstream`): refused, closed or reset before the
//!   answer, garbage, hanging (504 after the route timeout), half a body
//!   with a `Content-Length`, half a chunked body, reset mid-body.
//! - Redis: paused (`CLIENT PAUSE`) and stopped then restarted.
//! - SMTP: 550 to every message, a tarpit, 421 then 250.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::browser::{Browser, Page};
use support::client::{body_of, raw, status_of};
use support::faulty::{FaultyUpstream, Mode, ANNOUNCED, HEALTHY_BODY};
use support::gateway::{GatewayProcess, TestGateway, SECRET};
use support::mode::cookie;
use support::redis::RedisServer;
use support::smtp::{wait_until, Script, SmtpServer};

const ROUTE_TIMEOUT_MS: u64 = 500;

fn config(upstream: &str, smtp_port: u16, store: &str, session: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:$PORT"
public_url = "http://127.0.0.1:$PORT"

[session]
secret_env = "PORTCULLIS_SECRET"
{session}

[login]
allow_domains = ["example.com"]
resend_delay = "0s"
address_rate = "100/15m"
ip_rate = "1000/15m"

[mail]
from = "Portcullis <login@example.com>"
transport = "smtp"
[mail.smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
timeout = "1s"

{store}

[[route]]
path = "/"
upstream = "{upstream}"
timeout = "{ROUTE_TIMEOUT_MS}ms"
connect_timeout = "500ms"
"#
    )
}

fn redis_store(redis: &RedisServer, prefix: &str) -> String {
    format!(
        "[store]\nbackend = \"redis\"\nurl = \"{}\"\nkey_prefix = \"{prefix}\"\n\
         connect_timeout = \"500ms\"\nresponse_timeout = \"200ms\"\n",
        redis.url()
    )
}

const MEMORY: &str = "[store]\nbackend = \"memory\"\n";

// === sign-in helpers ===

/// The link token of the `nth` mail to `to`.
async fn token_for(smtp: &SmtpServer, to: &str, nth: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mails: Vec<_> = smtp
            .received()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == to))
            .collect();
        if mails.len() >= nth {
            let text = mails[nth - 1].text().unwrap();
            let marker = "/.portcullis/verify?token=";
            let start = text.find(marker).unwrap() + marker.len();
            return text[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
        }
        assert!(Instant::now() < deadline, "no mail {nth} for {to}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn mails_to(smtp: &SmtpServer, to: &str) -> usize {
    smtp.received()
        .iter()
        .filter(|m| m.to.iter().any(|t| t == to))
        .count()
}

/// GET the sign-in page and POST the address.
async fn ask(b: &mut Browser, origin: &str, email: &str) -> Page {
    let page = b.get(&format!("{origin}/.portcullis/login")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.field("csrf").unwrap();
    b.post(
        origin,
        "/.portcullis/login",
        &[("email", email), ("rd", "/"), ("csrf", &csrf)],
    )
    .await
}

/// Opens the link in the browser that asked and presses the button.
async fn click(b: &mut Browser, origin: &str, token: &str) -> Page {
    let confirm = b
        .get(&format!("{origin}/.portcullis/verify?token={token}"))
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let csrf = confirm
        .field("csrf")
        .expect("the asking browser gets a button");
    b.post(
        origin,
        "/.portcullis/verify",
        &[("token", token), ("csrf", &csrf)],
    )
    .await
}

async fn sign_in(b: &mut Browser, smtp: &SmtpServer, origin: &str, email: &str, nth: usize) {
    let page = ask(b, origin, email).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let token = token_for(smtp, email, nth).await;
    let done = click(b, origin, &token).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(b.jar.contains_key(&cookie("portcullis")), "{:?}", b.jar);
}

/// A cookie that passes no HMAC check, and one signed with the right key
/// for a session that was never stored.
fn forged_cookies() -> [String; 2] {
    let key = portcullis::crypto::Key::new(SECRET.as_bytes());
    let made = portcullis::session::new_session(&key);
    let forged = format!(
        "v1.{}.{}",
        portcullis::crypto::b64(&[7u8; 32]),
        portcullis::crypto::b64(&[9u8; 32])
    );
    [forged, made.cookie]
}

/// Requests without a valid session never get a 2xx: anonymous fetches
/// get 401, anonymous navigations the way to the sign-in page, forged
/// cookies one of those; a signed but unknown session may get 503 while
/// the store is down, never a 2xx.
async fn no_pass_without_session(origin: &str) {
    let url = format!("{origin}/protected?x=1");
    let p = Browser::new().fetch(&url).await;
    assert_eq!(p.status, 401, "anonymous fetch: {}", p.body);
    let p = Browser::new().get(&url).await;
    assert_eq!(p.status, 303, "anonymous navigation: {}", p.body);
    assert!(
        p.location().starts_with("/.portcullis/login?rd="),
        "{}",
        p.location()
    );
    let [forged, unknown] = forged_cookies();
    let mut b = Browser::new();
    b.jar.insert(cookie("portcullis"), forged);
    let p = b.get(&url).await;
    assert_eq!(p.status, 303, "forged cookie: {}", p.body);
    let mut b = Browser::new();
    b.jar.insert(cookie("portcullis"), unknown);
    let p = b.fetch(&url).await;
    assert!(
        p.status == 401 || p.status == 503,
        "signed cookie of no stored session: {} {}",
        p.status,
        p.body
    );
}

fn assert_no_panic(gw: &GatewayProcess) {
    let log = gw.log_text();
    assert!(!log.contains("panicked"), "the gateway panicked:\n{log}");
}

/// Panics on tokio worker threads (where in-process gateways run their
/// tasks; test bodies run on the test thread) since this binary started.
static WORKER_PANICS: AtomicUsize = AtomicUsize::new(0);

fn watch_worker_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some("tokio-runtime-worker") {
                WORKER_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

fn assert_no_worker_panic() {
    assert_eq!(
        WORKER_PANICS.load(Ordering::SeqCst),
        0,
        "a gateway task panicked"
    );
}

// === upstream faults (the real binary) ===

struct UpEnv {
    gw: GatewayProcess,
    up: FaultyUpstream,
    origin: String,
    b: Browser,
    _smtp: SmtpServer,
    _dir: tempfile::TempDir,
}

impl UpEnv {
    async fn start() -> UpEnv {
        let up = FaultyUpstream::start(Mode::Healthy).await;
        let smtp = SmtpServer::start(Script::Accept);
        let dir = tempfile::tempdir().unwrap();
        let gw = GatewayProcess::start(dir.path(), &config(&up.url(), smtp.port(), MEMORY, ""));
        let origin = gw.origin();
        let mut b = Browser::new();
        sign_in(&mut b, &smtp, &origin, "user@example.com", 1).await;
        let env = UpEnv {
            gw,
            up,
            origin,
            b,
            _smtp: smtp,
            _dir: dir,
        };
        env.assert_healthy().await;
        env
    }

    async fn get(&self, path: &str) -> (Page, Duration) {
        let mut b = self.b.clone();
        let started = Instant::now();
        let p = b.get(&format!("{}{path}", self.origin)).await;
        (p, started.elapsed())
    }

    async fn assert_healthy(&self) {
        let (p, _) = self.get("/app").await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert_eq!(p.body, HEALTHY_BODY);
    }

    /// A raw HTTP/1.1 GET with the session cookie; everything read until
    /// the gateway closes, and how long that took.
    async fn raw_get(&self, path: &str) -> (String, Duration) {
        let name = cookie("portcullis");
        let cookie = self.b.jar.get(&name).unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nCookie: {name}={cookie}\r\n\
             Accept: text/html\r\nConnection: close\r\n\r\n",
            self.gw.port
        );
        let addr = self.gw.addr();
        let started = Instant::now();
        let text = raw(addr, request.as_bytes(), Duration::from_secs(10)).await;
        (text, started.elapsed())
    }
}

#[tokio::test]
async fn upstream_refusing_connections_is_502_then_recovers() {
    let env = UpEnv::start().await;
    env.up.stop_listening().await;
    let (p, took) = env.get("/app").await;
    assert_eq!(p.status, 502, "{}", p.body);
    assert!(p.body.contains("not answering"), "{}", p.body);
    assert!(took < Duration::from_secs(2), "took {took:?}");
    no_pass_without_session(&env.origin).await;
    env.up.listen_again().await;
    env.assert_healthy().await;
    assert_no_panic(&env.gw);
}

#[tokio::test]
async fn upstream_closing_resetting_or_babbling_before_the_answer_is_502() {
    let env = UpEnv::start().await;
    for mode in [Mode::CloseBeforeHead, Mode::ResetBeforeHead, Mode::Garbage] {
        env.up.set_mode(mode);
        let (p, took) = env.get("/app").await;
        assert_eq!(p.status, 502, "{mode:?}: {}", p.body);
        assert!(p.body.contains("not answering"), "{mode:?}: {}", p.body);
        assert!(took < Duration::from_secs(2), "{mode:?} took {took:?}");
        no_pass_without_session(&env.origin).await;
        env.up.set_mode(Mode::Healthy);
        env.assert_healthy().await;
    }
    assert_no_panic(&env.gw);
}

/// The answer to a request whose upstream never answers: the 504 page,
/// after the route timeout (not before it, and not long after).
fn assert_timed_out(p: &Page, took: Duration) {
    assert_eq!(p.status, 504, "{}", p.body);
    assert!(p.body.contains("took too long"), "{}", p.body);
    assert!(
        took >= Duration::from_millis(ROUTE_TIMEOUT_MS - 50),
        "504 before the timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

/// A pooled upstream connection keeps one answer timer for its life, moved
/// on for each request. Held here: a request on a connection that sat idle
/// for longer than the route timeout (its timer from the last request has
/// long fired) is answered, not timed out; and an answer that never comes
/// on a reused connection is still a 504 after the route timeout counted
/// from this request, neither sooner nor never.
#[tokio::test]
async fn a_reused_upstream_connection_times_out_by_its_own_request() {
    let env = UpEnv::start().await;
    env.assert_healthy().await;
    let accepted = env.up.accepted();
    // Idle past the route timeout: the last request's deadline goes by.
    tokio::time::sleep(Duration::from_millis(ROUTE_TIMEOUT_MS * 3)).await;
    for _ in 0..3 {
        let (p, _) = env.get("/app").await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert_eq!(p.body, HEALTHY_BODY);
    }
    assert_eq!(
        env.up.accepted(),
        accepted,
        "the pooled connection was reused"
    );
    // Most of a timeout since the last request, then one that hangs on the
    // same connection: its own full timeout applies.
    tokio::time::sleep(Duration::from_millis(ROUTE_TIMEOUT_MS * 4 / 5)).await;
    env.up.set_mode(Mode::Hang);
    let (p, took) = env.get("/hang").await;
    assert_timed_out(&p, took);
    assert_eq!(
        env.up.accepted(),
        accepted,
        "the hanging request reused it too"
    );
    env.up.set_mode(Mode::Healthy);
    env.assert_healthy().await;
    assert_no_panic(&env.gw);
}

#[tokio::test]
async fn hanging_upstream_is_504_after_the_route_timeout_and_blocks_nothing_else() {
    let env = UpEnv::start().await;
    env.up.set_mode(Mode::Hang);
    let heads = env.up.heads();
    // Several at once: each times out on its own, and the gateway's own
    // pages keep answering meanwhile.
    let hung: Vec<_> = (0..8)
        .map(|i| {
            let b = env.b.clone();
            let url = format!("{}/hang/{i}", env.origin);
            tokio::spawn(async move {
                let mut b = b;
                let started = Instant::now();
                let p = b.get(&url).await;
                (p, started.elapsed())
            })
        })
        .collect();
    let started = Instant::now();
    let p = Browser::new()
        .get(&format!("{}/.portcullis/login", env.origin))
        .await;
    assert_eq!(p.status, 200);
    assert!(
        started.elapsed() < Duration::from_millis(ROUTE_TIMEOUT_MS),
        "sign-in page waited {:?}",
        started.elapsed()
    );
    for h in hung {
        let (p, took) = h.await.unwrap();
        assert_timed_out(&p, took);
    }
    assert!(
        env.up.heads() >= heads + 8,
        "the requests reached the upstream"
    );
    no_pass_without_session(&env.origin).await;
    env.up.set_mode(Mode::Healthy);
    env.assert_healthy().await;
    assert_no_panic(&env.gw);
}

/// The response a client got for a broken upstream body: a 502, a 2xx
/// whose body is visibly incomplete (shorter than its Content-Length, or
/// chunked without the last chunk), or a connection closed before any
/// answer (the upstream died before the gateway had flushed the head);
/// never a complete-looking 2xx.
fn assert_truncated_or_502(what: &str, text: &str) {
    if text.is_empty() {
        return;
    }
    let status = status_of(text);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let head_lower = head.to_ascii_lowercase();
    match status {
        502 => assert!(body.contains("not answering"), "{what}: {text}"),
        200..=299 => {
            let length = head_lower
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse::<usize>().unwrap());
            let chunked = head_lower.contains("transfer-encoding: chunked");
            match (length, chunked) {
                (Some(n), false) => {
                    assert_eq!(n, ANNOUNCED, "{what}: {head}");
                    assert!(
                        body.len() < n,
                        "{what}: complete-looking body of {} bytes",
                        body.len()
                    );
                }
                (None, true) => assert!(
                    !body.ends_with("0\r\n\r\n"),
                    "{what}: chunked body has its last chunk"
                ),
                _ => panic!("{what}: 2xx framed by close only, which looks complete:\n{head}"),
            }
        }
        other => panic!("{what}: status {other}:\n{text}"),
    }
}

/// An upstream that resets (or closes) in the middle of a body: the access
/// log says 200 (the head went out first), so a warning says what
/// happened, naming the route; a whole answer logs no such warning.
#[tokio::test]
async fn an_upstream_reset_mid_body_is_logged_as_a_warning_naming_the_route() {
    let env = UpEnv::start().await;
    let warning = "the upstream broke off its answer in the middle of the body";
    let warnings = |log: &str| {
        log.lines()
            .filter(|l| l.contains(warning))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let (text, _) = env.raw_get("/whole").await;
    assert_eq!(status_of(&text), 200, "{text}");
    assert_eq!(warnings(&env.gw.log_text()), Vec::<String>::new());
    for (n, mode) in [Mode::ResetMidBody, Mode::HalfBody].into_iter().enumerate() {
        env.up.set_mode(mode);
        let (text, _) = env.raw_get("/half").await;
        assert_eq!(status_of(&text), 200, "{mode:?}: {text}");
        env.up.set_mode(Mode::Healthy);
        // The warning is written when the body fails, which the client
        // saw as the end of its connection: wait for the line.
        let deadline = Instant::now() + Duration::from_secs(5);
        let lines = loop {
            let lines = warnings(&env.gw.log_text());
            if lines.len() > n || Instant::now() > deadline {
                break lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(lines.len(), n + 1, "{mode:?}: {}", env.gw.log_text());
        let line = &lines[n];
        assert!(line.contains("WARN"), "{mode:?}: {line}");
        assert!(line.contains("route=/ "), "{mode:?}: {line}");
    }
    assert_no_panic(&env.gw);
}

#[tokio::test]
async fn half_a_body_from_the_upstream_never_looks_complete() {
    let env = UpEnv::start().await;
    for mode in [Mode::HalfBody, Mode::HalfChunked, Mode::ResetMidBody] {
        env.up.set_mode(mode);
        let (text, took) = env.raw_get("/half").await;
        assert_truncated_or_502(&format!("{mode:?}"), &text);
        assert!(
            took < Duration::from_secs(5),
            "{mode:?}: the gateway kept the client waiting {took:?}"
        );
        // The same through an HTTP client: a 2xx must fail while reading the body.
        let name = cookie("portcullis");
        let cookie = format!("{name}={}", env.b.jar.get(&name).unwrap());
        let r = support::client::http()
            .get(format!("{}/half", env.origin))
            .header("cookie", cookie)
            .send()
            .await;
        match r {
            Ok(r) if r.status().is_success() => {
                let body = r.bytes().await;
                assert!(
                    body.is_err(),
                    "{mode:?}: a 2xx body read completely: {body:?}"
                );
            }
            Ok(r) => assert_eq!(r.status(), 502, "{mode:?}"),
            // Closed before any answer: the client sees an error, not a page.
            Err(e) => assert!(!e.is_timeout(), "{mode:?}: {e}"),
        }
        env.up.set_mode(Mode::Healthy);
        env.assert_healthy().await;
    }
    let (text, _) = env.raw_get("/whole").await;
    assert_eq!(status_of(&text), 200, "{text}");
    assert_eq!(body_of(&text), HEALTHY_BODY);
    no_pass_without_session(&env.origin).await;
    assert_no_panic(&env.gw);
}

// === Redis faults (the real binary) ===

struct RedisEnv {
    gw: GatewayProcess,
    smtp: SmtpServer,
    redis: RedisServer,
    origin: String,
    _up: FaultyUpstream,
    _dir: tempfile::TempDir,
}

const GRACE_MS: u64 = 1000;

impl RedisEnv {
    async fn start(prefix: &str) -> RedisEnv {
        let redis = RedisServer::start();
        let up = FaultyUpstream::start(Mode::Healthy).await;
        let smtp = SmtpServer::start(Script::Accept);
        let dir = tempfile::tempdir().unwrap();
        let session = format!("revalidate = \"100ms\"\nstore_grace = \"{GRACE_MS}ms\"");
        let text = config(
            &up.url(),
            smtp.port(),
            &redis_store(&redis, prefix),
            &session,
        );
        let gw = GatewayProcess::start(dir.path(), &text);
        let origin = gw.origin();
        RedisEnv {
            gw,
            smtp,
            redis,
            origin,
            _up: up,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// What a stranger gets while the store is down: the way to the
    /// sign-in page and the page itself, and a 503 (quickly, with
    /// Retry-After) when asking for a link; no mail is sent.
    async fn stranger_during_outage(&self, email: &str) {
        let mut s = Browser::new();
        let p = s.get(&self.url("/somewhere")).await;
        assert_eq!(p.status, 303, "{}", p.body);
        let page = s.get(&self.url(&p.location())).await;
        assert_eq!(
            page.status, 200,
            "the sign-in page needs no store: {}",
            page.body
        );
        assert!(page.body.contains("Sign in"), "{}", page.body);
        let csrf = page.field("csrf").unwrap();
        let started = Instant::now();
        let p = s
            .post(
                &self.origin,
                "/.portcullis/login",
                &[("email", email), ("rd", "/"), ("csrf", &csrf)],
            )
            .await;
        assert_eq!(p.status, 503, "{}", p.body);
        assert_eq!(p.header("retry-after").as_deref(), Some("5"));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "sign-in waited {:?}",
            started.elapsed()
        );
    }

    /// Polls until `b` gets `status` on a protected page.
    async fn until_status(&self, b: &mut Browser, status: u16, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let got = b.get(&self.url("/again")).await.status;
            if got == status {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "still {got}, waiting for {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn redis_paused_answers_503_never_a_pass_keeps_links_and_recovers() {
    let env = RedisEnv::start("pause:").await;
    let mut signed_in = Browser::new();
    sign_in(&mut signed_in, &env.smtp, &env.origin, "in@example.com", 1).await;
    assert_eq!(signed_in.get(&env.url("/a")).await.status, 200);
    // A link asked for before the outage and clicked during it.
    let mut asker = Browser::new();
    assert_eq!(
        ask(&mut asker, &env.origin, "asker@example.com")
            .await
            .status,
        200
    );
    let token = token_for(&env.smtp, "asker@example.com", 1).await;

    env.redis.client_pause(Duration::from_secs(10));
    let paused_at = Instant::now();
    let p = signed_in.get(&env.url("/b")).await;
    assert_eq!(p.status, 200, "within the grace: {}", p.body);

    let started = Instant::now();
    let p = asker
        .get(&env.url(&format!("/.portcullis/verify?token={token}")))
        .await;
    assert_eq!(p.status, 503, "a link opened during the outage: {}", p.body);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    env.stranger_during_outage("stranger@example.com").await;
    no_pass_without_session(&env.origin).await;

    // Past the grace: 503, not the sign-in page (a redirect loop), not a pass.
    while paused_at.elapsed() < Duration::from_millis(GRACE_MS + 200) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let p = signed_in.get(&env.url("/c")).await;
    assert_eq!(p.status, 503, "past the grace: {}", p.body);
    assert!(p.body.contains("Try again shortly"), "{}", p.body);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let p = signed_in.fetch(&env.url("/c")).await;
    assert_eq!(p.status, 503, "{}", p.body);

    env.redis.client_unpause();
    env.until_status(&mut signed_in, 200, Duration::from_secs(5))
        .await;
    // The link was not used up by the failed attempt.
    let done = click(&mut asker, &env.origin, &token).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(asker.get(&env.url("/d")).await.status, 200);
    // Nothing was sent for the address asked during the outage.
    assert_eq!(mails_to(&env.smtp, "stranger@example.com"), 0);
    let mut again = Browser::new();
    sign_in(
        &mut again,
        &env.smtp,
        &env.origin,
        "stranger@example.com",
        1,
    )
    .await;
    assert_no_panic(&env.gw);
}

#[tokio::test]
async fn redis_stopped_then_restarted_never_passes_and_recovers() {
    let env = RedisEnv::start("stop:").await;
    let mut signed_in = Browser::new();
    sign_in(&mut signed_in, &env.smtp, &env.origin, "in@example.com", 1).await;
    assert_eq!(signed_in.get(&env.url("/a")).await.status, 200);

    env.redis.stop();
    let stopped_at = Instant::now();
    env.stranger_during_outage("down@example.com").await;
    no_pass_without_session(&env.origin).await;
    while stopped_at.elapsed() < Duration::from_millis(GRACE_MS + 200) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let p = signed_in.get(&env.url("/b")).await;
    assert_eq!(p.status, 503, "past the grace: {}", p.body);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    env.redis.start_again();
    // This Redis keeps nothing across a restart: the session is gone, so
    // back to the sign-in page (not 503, not 200), on the same gateway.
    env.until_status(&mut signed_in, 303, Duration::from_secs(5))
        .await;
    no_pass_without_session(&env.origin).await;
    let [_, unknown] = forged_cookies();
    let mut b = Browser::new();
    b.jar.insert(cookie("portcullis"), unknown);
    assert_eq!(
        b.fetch(&env.url("/x")).await.status,
        401,
        "unknown session, store up"
    );
    assert_eq!(mails_to(&env.smtp, "down@example.com"), 0);
    let mut again = Browser::new();
    sign_in(&mut again, &env.smtp, &env.origin, "down@example.com", 1).await;
    assert_eq!(again.get(&env.url("/c")).await.status, 200);
    assert_no_panic(&env.gw);
}

// === SMTP faults (in process, to read the mail counters) ===

async fn smtp_gateway(smtp: &SmtpServer) -> (TestGateway, FaultyUpstream) {
    watch_worker_panics();
    let up = FaultyUpstream::start(Mode::Healthy).await;
    let gw = TestGateway::start(&config(&up.url(), smtp.port(), MEMORY, "")).await;
    (gw, up)
}

/// The page body with the CSRF value blanked out.
fn without_csrf(p: &Page) -> String {
    match p.field("csrf") {
        Some(csrf) => p.body.replace(&csrf, "CSRF"),
        None => p.body.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_rejecting_with_550_changes_nothing_the_person_sees() {
    let smtp = SmtpServer::start(Script::AlwaysReject);
    let (gw, _up) = smtp_gateway(&smtp).await;
    let o = gw.origin();
    let mut b = Browser::new();
    let rejected = ask(&mut b, &o, "alice@example.com").await;
    assert_eq!(rejected.status, 200, "{}", rejected.body);
    assert!(
        rejected.body.contains("Check your email"),
        "{}",
        rejected.body
    );
    // The same page as for an address that gets no mail at all.
    let mut other = Browser::new();
    let no_mail = ask(&mut other, &o, "someone@elsewhere.org").await;
    assert_eq!(no_mail.status, 200);
    assert_eq!(
        without_csrf(&rejected).replace("alice@example.com", "ADDRESS"),
        without_csrf(&no_mail).replace("someone@elsewhere.org", "ADDRESS")
    );

    let mailer = gw.app.mailer().clone();
    wait_until(
        Duration::from_secs(10),
        "the mail counted as failed",
        || mailer.stats().failed == 1,
    )
    .await;
    let stats = mailer.stats();
    assert_eq!(
        (stats.queued, stats.sent, stats.retried, stats.dropped),
        (1, 0, 0, 0),
        "{stats:?}"
    );
    assert_eq!(smtp.attempts(), 1, "a permanent failure is not retried");
    assert!(smtp.received().is_empty());
    // Asking again still answers normally.
    assert_eq!(ask(&mut b, &o, "alice@example.com").await.status, 200);
    wait_until(Duration::from_secs(10), "second failure", || {
        mailer.stats().failed == 2
    })
    .await;
    no_pass_without_session(&o).await;
    assert_no_worker_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_tarpit_does_not_slow_the_sign_in_page_and_mail_goes_out_later() {
    let smtp = SmtpServer::tarpit();
    let (gw, _up) = smtp_gateway(&smtp).await;
    let o = gw.origin();
    let addresses = ["t1@example.com", "t2@example.com", "t3@example.com"];
    let mut browsers = Vec::new();
    for email in addresses {
        let mut b = Browser::new();
        let page = b.get(&format!("{o}/.portcullis/login")).await;
        let csrf = page.field("csrf").unwrap();
        let started = Instant::now();
        let p = b
            .post(
                &o,
                "/.portcullis/login",
                &[("email", email), ("rd", "/"), ("csrf", &csrf)],
            )
            .await;
        let took = started.elapsed();
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(
            took < Duration::from_millis(500),
            "sign-in POST took {took:?}"
        );
        browsers.push(b);
    }
    wait_until(Duration::from_secs(5), "the worker connects", || {
        smtp.connections() >= 1
    })
    .await;
    assert!(smtp.received().is_empty());
    let mailer = gw.app.mailer().clone();
    assert_eq!(mailer.stats().sent, 0);
    no_pass_without_session(&o).await;

    // The tarpit ends: the attempts time out (1 s) and the retries deliver.
    smtp.set_tarpit(false);
    smtp.wait_for(addresses.len(), Duration::from_secs(20))
        .await;
    wait_until(Duration::from_secs(5), "all sent", || {
        mailer.stats().sent == 3
    })
    .await;
    let stats = mailer.stats();
    assert!(stats.retried >= 3, "{stats:?}");
    assert_eq!(stats.failed, 0, "{stats:?}");
    for (b, email) in browsers.iter_mut().zip(addresses) {
        let token = token_for(&smtp, email, 1).await;
        assert_eq!(click(b, &o, &token).await.status, 303);
    }
    assert_no_worker_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_421_then_250_delivers_later_and_the_link_works() {
    let smtp = SmtpServer::start(Script::TempFailFirst(1));
    let (gw, _up) = smtp_gateway(&smtp).await;
    let o = gw.origin();
    let mut b = Browser::new();
    let started = Instant::now();
    let p = ask(&mut b, &o, "later@example.com").await;
    assert_eq!(p.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let token = token_for(&smtp, "later@example.com", 1).await;
    let mailer = gw.app.mailer().clone();
    wait_until(Duration::from_secs(5), "counted as sent", || {
        mailer.stats().sent == 1
    })
    .await;
    let stats = mailer.stats();
    assert_eq!(
        (stats.sent, stats.retried, stats.failed),
        (1, 1, 0),
        "{stats:?}"
    );
    assert_eq!(smtp.attempts(), 2);
    assert_eq!(click(&mut b, &o, &token).await.status, 303);
    assert_eq!(b.get(&format!("{o}/app")).await.status, 200);
    assert_eq!(mails_to(&smtp, "later@example.com"), 1, "delivered once");
    assert_no_worker_panic();
}
