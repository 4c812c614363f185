//! The sign-in pages in a real browser: Chromium driven through WebDriver,
//! against the gateway in process, a real SMTP server and real upstreams.
//!
//! Every browser runs with JavaScript off for pages (WebDriver's own
//! scripts still run), so each journey also proves the pages need none.
//!
//! Journeys: the link in the asking browser; the link opened in a second
//! browser profile (the code shown there, typed into the first); a used and
//! an expired link; the 403 page and sign-out; sign-out from the app; the
//! 400, 502 and 504 pages. Every gateway page is audited in the browser at
//! 390 px and 1280 px: nothing in the browser's log (no console errors, no
//! CSP violations, no failed loads), every input labelled, the stylesheet
//! applied, no sideways scrolling, text contrast at least 4.5:1 (computed
//! from the rendered colours), and a visible focus ring on everything the
//! keyboard reaches. Screenshots go to `target/screenshots/`.
//!
//! Needs `chromium` and `chromedriver` on PATH (Debian: `chromium`,
//! `chromium-driver`); `PORTCULLIS_SKIP_BROWSER=1` skips with a notice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use support::chrome::{self, Chrome};
use support::gateway::TestGateway;
use support::smtp::{Script, SmtpServer};
use support::upstream::{refused_addr, Upstream};
use tokio::sync::{Mutex, MutexGuard};

const PHONE: (u32, u32) = (390, 844);
const DESKTOP: (u32, u32) = (1280, 800);
const SITE: &str = "Example Tools";

/// One browser journey at a time: the machine is small and Chromium is not.
static SERIAL: Mutex<()> = Mutex::const_new(());

async fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().await
}

struct Env {
    gw: TestGateway,
    smtp: SmtpServer,
    _up: Upstream,
}

/// A gateway with the demo app at `/` and `/admin` (for one address only),
/// the echo upstream at `/app` (public, 1 s timeout) and a refused port at
/// `/down` (public). `login` and `ui` lines are added to those sections.
async fn env(login: &str, ui: &str) -> Env {
    let up = Upstream::start().await;
    let smtp = SmtpServer::start(Script::Accept);
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:$PORT"
public_url = "http://127.0.0.1:$PORT"

[session]
secret_env = "PORTCULLIS_SECRET"

[login]
allow_domains = ["example.com"]
resend_delay = "0s"
address_rate = "100/15m"
ip_rate = "1000/15m"
{login}

[mail]
from = "Example Tools <login@example.com>"
transport = "smtp"
[mail.smtp]
host = "127.0.0.1"
port = {smtp}
tls = "none"
timeout = "5s"

[store]
backend = "memory"

[ui]
title = "{SITE}"
footer = "Example Ltd · IT help desk: help@example.com"
{ui}

[[route]]
path = "/"
upstream = "demo"

[[route]]
path = "/admin"
upstream = "demo"
allow_emails = ["boss@example.com"]

[[route]]
path = "/app"
upstream = "{up}"
access = "public"
timeout = "1s"

[[route]]
path = "/down"
upstream = "http://{down}"
access = "public"
"#,
        smtp = smtp.port(),
        up = up.url(),
        down = refused_addr(),
    );
    let gw = TestGateway::start(&text).await;
    Env { gw, smtp, _up: up }
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots")
}

/// The sign-in link of the `nth` mail to `to`, from its plain-text part.
async fn link_in_mail(smtp: &SmtpServer, to: &str, nth: usize) -> String {
    mail(smtp, to, nth).await.0
}

/// The link and the HTML part of the `nth` mail to `to`.
async fn mail(smtp: &SmtpServer, to: &str, nth: usize) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mails: Vec<_> = smtp
            .received()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == to))
            .collect();
        if let Some(mail) = mails.get(nth - 1) {
            let text = mail.text().unwrap();
            let html = mail.html().unwrap();
            let link = text
                .split_whitespace()
                .find(|w| w.contains("/.portcullis/verify?token="))
                .unwrap()
                .to_string();
            assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
            return (link, html);
        }
        assert!(Instant::now() < deadline, "no mail {nth} for {to}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Run in the page; returns what is wrong with it.
const AUDIT_JS: &str = r#"
const site = arguments[0];
const problems = [];
const rgba = (s) => (s.match(/[\d.]+/g) || []).map(Number);
const lum = (c) => {
  const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
};
const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
const background = (el) => {
  for (; el; el = el.parentElement) {
    const c = rgba(getComputedStyle(el).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c;
  }
  return [255, 255, 255];
};
if (document.documentElement.lang !== 'en') problems.push('html lang is not en');
if (!document.title.includes(site)) problems.push('title lacks the site name: ' + document.title);
if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
if (document.scripts.length) problems.push('the page has scripts');
const main = document.querySelector('main');
if (!main || getComputedStyle(main).maxWidth !== '440px') problems.push('the stylesheet is not applied');
if (!document.body.innerText.includes(site)) problems.push('the site name is not shown');
if (!document.body.innerText.includes('Portcullis')) problems.push('the product name is not shown');
if (document.documentElement.scrollWidth > window.innerWidth)
  problems.push('sideways scrolling: ' + document.documentElement.scrollWidth + ' > ' + window.innerWidth);
for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
  const named = (el.labels && el.labels.length) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
  if (!named) problems.push('input without a label: ' + (el.id || el.name));
}
for (const el of document.querySelectorAll('a, button')) {
  if (!el.innerText.trim() && !el.getAttribute('aria-label')) problems.push('unnamed ' + el.tagName);
  const r = el.getBoundingClientRect();
  if (el.tagName === 'BUTTON' && r.height < 44) problems.push('small button: ' + el.innerText);
}
for (const el of document.querySelectorAll('body *')) {
  const own = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
  if (!own || !el.getClientRects().length) continue;
  const r = ratio(rgba(getComputedStyle(el).color), background(el));
  if (r < 4.5) problems.push('contrast ' + r.toFixed(2) + ':1 for "' + el.innerText.trim().slice(0, 40) + '"');
}
return problems;
"#;

/// The element that has focus: a description, its outline style and width.
const FOCUS_JS: &str = r#"
const el = document.activeElement;
if (!el || el === document.body) return null;
const s = getComputedStyle(el);
return [el.tagName + (el.id ? '#' + el.id : '') + ' "' + (el.innerText || el.value || '').trim().slice(0, 30) + '"',
        s.outlineStyle, parseFloat(s.outlineWidth)];
"#;

/// Errors and warnings, CSP reports and console output are faults;
/// information (such as Chromium noting `Clear-Site-Data`) is not.
fn is_fault(e: &chrome::LogEntry) -> bool {
    e.level == "SEVERE"
        || e.level == "WARNING"
        || e.source == "security"
        || e.source == "console-api"
}

/// Everything every gateway page must get right, checked in the browser
/// at both widths, with a screenshot of each.
async fn audit(b: &Chrome, name: &str) {
    audit_as(b, name, SITE).await
}

/// [`audit`] for a page that names `site` (the demo app names Portcullis,
/// not the gateway's `[ui] title`).
async fn audit_as(b: &Chrome, name: &str, site: &str) {
    let url = b.url().await;
    // The page's own status (403, 410, 502…) is logged as a failed load;
    // anything else (the stylesheet, an image, the CSP, a console message)
    // is a fault.
    let own_status =
        format!("{url} - Failed to load resource: the server responded with a status of");
    let noise: Vec<_> = b
        .logs()
        .await
        .into_iter()
        .filter(|e| is_fault(e) && !(e.source == "network" && e.message.starts_with(&own_status)))
        .collect();
    assert!(
        noise.is_empty(),
        "{name} ({url}): the browser logged {noise:#?}"
    );
    for (w, h) in [PHONE, DESKTOP] {
        b.resize(w, h).await;
        let problems = b.execute(AUDIT_JS, json!([site])).await;
        assert_eq!(problems, json!([]), "{name} at {w}px ({url})");
        b.screenshot(&screenshots().join(format!("{name}-{w}.png")))
            .await;
    }
    // Keyboard: every focusable element gets a visible ring in turn.
    let focusable = b
        .execute(
            "return document.querySelectorAll('a[href], button, input:not([type=hidden])').length",
            json!([]),
        )
        .await
        .as_u64()
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 * focusable + 2 {
        b.tab().await;
        let focus = b.execute(FOCUS_JS, json!([])).await;
        if focus.is_null() {
            continue;
        }
        let what = focus[0].as_str().unwrap().to_string();
        assert!(
            focus[1] != "none" && focus[2].as_f64().unwrap() >= 2.0,
            "{name}: no visible focus on {what}: {focus}"
        );
        if !seen.contains(&what) {
            seen.push(what);
        }
    }
    assert!(
        seen.len() as u64 >= focusable,
        "{name}: the keyboard reached {seen:?} of {focusable}"
    );
    let noise: Vec<_> = b.logs().await.into_iter().filter(is_fault).collect();
    assert!(noise.is_empty(), "{name}: {noise:#?}");
    b.resize(PHONE.0, PHONE.1).await;
}

fn path_of(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    }
}

/// From a protected page to the "check your email" page.
async fn ask_for_link(b: &Chrome, e: &Env, protected: &str, email: &str, shots: bool) {
    b.goto(&e.gw.url(protected)).await;
    let here = b.url().await;
    assert!(
        path_of(&here).starts_with("/.portcullis/login?rd="),
        "{here}"
    );
    assert_eq!(b.text("h1").await, format!("Sign in to {SITE}"));
    if shots {
        audit(b, "login").await;
    }
    b.type_into("#email", email).await;
    b.click("button[type=submit]").await;
    let h1 = b.text("h1").await;
    assert_ne!(
        h1, "This form has expired",
        "the gateway refused the browser's own form post: browsers send \
         `Origin: null` on posts from a page with `Referrer-Policy: no-referrer`"
    );
    assert_eq!(h1, "Check your email", "{}", b.source().await);
    // The address typed, and what to do if nothing arrives.
    assert_eq!(b.text("strong.address").await, email);
    // (resend_delay = "0s" here; link_ttl varies by test.)
    let aside = b.text(".aside").await;
    assert!(
        aside.contains("one can be sent at once, and each works for "),
        "{aside}"
    );
    if shots {
        audit(b, "check-email").await;
    }
}

fn has_session(cookies: &[(String, String)]) -> bool {
    cookies.iter().any(|(n, _)| n == "portcullis")
}

#[tokio::test]
async fn the_link_signs_in_the_browser_that_asked_and_sign_out_ends_it() {
    if chrome::skipped() {
        return;
    }
    let _one = serial().await;
    let e = env("", "").await;
    let b = Chrome::open(PHONE.0, PHONE.1).await;
    ask_for_link(&b, &e, "/inbox?folder=2", "alice@example.com", true).await;

    let (link, html) = mail(&e.smtp, "alice@example.com", 1).await;
    // The mail as a mail program would show it (screenshots only).
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&html);
    b.goto(&format!("data:text/html;charset=utf-8;base64,{b64}"))
        .await;
    for (w, h) in [PHONE, DESKTOP] {
        b.resize(w, h).await;
        b.screenshot(&screenshots().join(format!("email-{w}.png")))
            .await;
    }
    b.resize(PHONE.0, PHONE.1).await;
    b.goto(&link).await;
    assert_eq!(b.text("h1").await, "Finish signing in");
    assert!(b.text("main").await.contains("a***@example.com"));
    audit(&b, "verify-confirm").await;
    b.click("button[type=submit]").await;
    assert_eq!(path_of(&b.url().await), "/inbox?folder=2");
    assert_eq!(b.text("#email").await, "alice@example.com");
    assert!(has_session(&b.cookies().await));
    // The demo app, where a newcomer lands: the identity first, and on a
    // phone in the first screenful.
    let identity = b
        .execute(
            "const d = document.querySelector('.identity dt'); \
             return [d.innerText, d.nextElementSibling.innerText, \
                     Math.round(d.getBoundingClientRect().bottom)]",
            json!([]),
        )
        .await;
    assert_eq!(identity[0], "x-forwarded-email");
    assert_eq!(identity[1], "alice@example.com");
    assert!(
        identity[2].as_f64().unwrap() < f64::from(PHONE.1),
        "x-forwarded-email is below the first screen: {identity}"
    );
    audit_as(&b, "demo-app", "Portcullis").await;

    // The link is spent.
    b.goto(&link).await;
    assert_eq!(b.text("h1").await, "This link can no longer be used");
    audit(&b, "link-used").await;

    // Sign out from the app's own link.
    b.goto(&e.gw.url("/inbox")).await;
    b.click("a[href='/.portcullis/logout']").await;
    assert_eq!(b.text("h1").await, format!("Sign out of {SITE}?"));
    assert!(b.text("main").await.contains("alice@example.com"));
    audit(&b, "logout-confirm").await;
    b.click("button[type=submit]").await;
    assert_eq!(b.text("h1").await, "You are signed out");
    audit(&b, "signed-out").await;
    assert!(!has_session(&b.cookies().await));
    b.goto(&e.gw.url("/inbox")).await;
    assert!(path_of(&b.url().await).starts_with("/.portcullis/login?rd="));
    b.close().await;
}

#[tokio::test]
async fn another_browser_shows_the_code_on_a_press_and_the_first_one_types_it() {
    if chrome::skipped() {
        return;
    }
    let _one = serial().await;
    let e = env("", "").await;
    let laptop = Chrome::open(DESKTOP.0, DESKTOP.1).await;
    ask_for_link(&laptop, &e, "/reports/q3", "bob@example.com", false).await;
    let link = link_in_mail(&e.smtp, "bob@example.com", 1).await;

    // A second, separate profile (the phone the mail was read on).
    // Opening the link shows no code, only a button.
    let phone = Chrome::open(PHONE.0, PHONE.1).await;
    phone.goto(&link).await;
    assert_eq!(
        phone.text("h1").await,
        "This link was asked for in another browser"
    );
    assert!(phone.try_find(".code-box").await.is_none(), "no code yet");
    audit(&phone, "verify-reveal").await;
    phone.click("button[type=submit]").await;
    assert_eq!(phone.text("h1").await, "Type this code where you started");
    let code = phone.text(".code-box").await;
    assert!(
        code.len() == 9 && code.as_bytes()[4] == b'-',
        "code shown as XXXX-XXXX: {code:?}"
    );
    let asked = phone.text(".asked").await;
    assert!(asked.contains("Chrome on Linux"), "{asked}");
    assert!(asked.contains("127.0.0.1"), "{asked}");
    assert!(
        asked.contains("minute ago") && asked.contains(" UTC)"),
        "{asked}"
    );
    assert!(phone
        .text(".notice")
        .await
        .starts_with("If this was not you, do not type the code anywhere."));
    assert!(phone.try_find("button").await.is_none(), "no button here");
    audit(&phone, "verify-elsewhere").await;
    assert!(!has_session(&phone.cookies().await));
    phone.goto(&e.gw.url("/reports/q3")).await;
    assert!(
        path_of(&phone.url().await).starts_with("/.portcullis/login?rd="),
        "the phone is not signed in"
    );
    phone.close().await;

    // A wrong code first, then the right one typed as a person might.
    let wrong = if code.starts_with('A') {
        "BBBB-BBBB"
    } else {
        "AAAA-AAAA"
    };
    laptop.type_into("#code", wrong).await;
    laptop.click("button[type=submit]").await;
    assert_eq!(
        laptop.text(".notice").await,
        "That code is not right. 4 tries left."
    );
    audit(&laptop, "check-email-wrong-code").await;
    laptop
        .type_into("#code", &code.to_lowercase().replace('-', ""))
        .await;
    laptop.click("button[type=submit]").await;
    assert_eq!(path_of(&laptop.url().await), "/reports/q3");
    assert_eq!(laptop.text("#email").await, "bob@example.com");
    laptop.close().await;
}

#[tokio::test]
async fn an_expired_link_says_so_and_offers_a_new_one() {
    if chrome::skipped() {
        return;
    }
    let _one = serial().await;
    let e = env("link_ttl = \"1s\"", "").await;
    let b = Chrome::open(PHONE.0, PHONE.1).await;
    ask_for_link(&b, &e, "/", "late@example.com", false).await;
    let link = link_in_mail(&e.smtp, "late@example.com", 1).await;
    // Wait for expiry by watching the link from outside the browser.
    let http = support::client::http();
    let deadline = Instant::now() + Duration::from_secs(10);
    while http.get(&link).send().await.unwrap().status() != 410 {
        assert!(Instant::now() < deadline, "the link did not expire");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.goto(&link).await;
    assert_eq!(b.text("h1").await, "This link can no longer be used");
    audit(&b, "link-expired").await;
    b.click("a.button").await;
    assert_eq!(b.text("h1").await, format!("Sign in to {SITE}"));
    b.close().await;
}

#[tokio::test]
async fn the_forbidden_page_names_the_address_and_signs_out() {
    if chrome::skipped() {
        return;
    }
    let _one = serial().await;
    let e = env("", "").await;
    let b = Chrome::open(PHONE.0, PHONE.1).await;
    ask_for_link(&b, &e, "/admin/users", "carol@example.com", false).await;
    b.goto(&link_in_mail(&e.smtp, "carol@example.com", 1).await)
        .await;
    b.click("button[type=submit]").await;
    assert_eq!(path_of(&b.url().await), "/admin/users");
    assert_eq!(b.text("h1").await, "You do not have access");
    assert!(b.text("main").await.contains("carol@example.com"));
    audit(&b, "forbidden").await;
    b.click("button[type=submit]").await;
    assert_eq!(b.text("h1").await, "You are signed out");
    b.goto(&e.gw.url("/admin/users")).await;
    assert!(path_of(&b.url().await).starts_with("/.portcullis/login?rd="));
    b.close().await;
}

#[tokio::test]
async fn error_pages_say_what_happened_and_what_to_do() {
    if chrome::skipped() {
        return;
    }
    let _one = serial().await;
    let e = env("", "").await;
    let b = Chrome::open(PHONE.0, PHONE.1).await;
    for (path, name, heading, words) in [
        (
            "/down/x",
            "error-502",
            "The application is not answering",
            "Error 502",
        ),
        (
            "/app/sleep?ms=3000",
            "error-504",
            "The application is taking too long",
            "Error 504",
        ),
        (
            "/a%2fb",
            "error-400",
            "That request could not be handled",
            "Error 400",
        ),
    ] {
        b.goto(&e.gw.url(path)).await;
        assert_eq!(b.text("h1").await, heading, "{path}");
        assert!(b.text("main").await.contains(words), "{path}");
        audit(&b, name).await;
    }
    b.close().await;
}

/// A light accent gets dark button text; a logo file is shown.
#[tokio::test]
async fn a_light_accent_stays_readable_and_the_logo_shows() {
    if chrome::skipped() {
        return;
    }
    let _one = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("logo.svg");
    std::fs::write(
        &logo,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 120 32\"><rect width=\"32\" height=\"32\" rx=\"6\" fill=\"#7a5c00\"/><text x=\"40\" y=\"23\" font-family=\"sans-serif\" font-size=\"18\" fill=\"#1b1f24\">Example</text></svg>",
    )
    .unwrap();
    let e = env(
        "",
        &format!("accent = \"#ffd400\"\nlogo_file = '{}'", logo.display()),
    )
    .await;
    let b = Chrome::open(PHONE.0, PHONE.1).await;
    b.goto(&e.gw.url("/.portcullis/login")).await;
    let logo_ok = b
        .execute(
            "const i = document.querySelector('img.logo'); return !!i && i.complete && i.naturalWidth > 0",
            json!([]),
        )
        .await;
    assert_eq!(logo_ok, json!(true));
    audit(&b, "login-yellow-accent").await;
    let button = b
        .execute(
            "const s = getComputedStyle(document.querySelector('button')); return [s.color, s.backgroundColor]",
            json!([]),
        )
        .await;
    assert_eq!(button, json!(["rgb(27, 31, 36)", "rgb(255, 212, 0)"]));
    b.close().await;
}

/// The sign-in page with two `[[provider]]` buttons above the email form
/// (the page audit and screenshots at both widths). The providers point at
/// a refused port: the buttons show whatever their state.
#[tokio::test]
async fn the_sign_in_page_with_two_providers() {
    if chrome::skipped() {
        return;
    }
    let _serial = serial().await;
    let down = refused_addr();
    let e = env(
        "",
        &format!(
            "\n[[provider]]\nname = \"google\"\nlabel = \"Sign in with Google\"\n\
             issuer = \"http://{down}\"\nclient_id = \"x\"\nclient_secret_env = \"PORTCULLIS_SECRET\"\n\
             [[provider]]\nname = \"github\"\nlabel = \"Sign in with GitHub\"\nkind = \"github\"\n\
             token_url = \"http://{down}/token\"\nauthorize_url = \"http://{down}/authorize\"\n\
             api_url = \"http://{down}/api\"\nclient_id = \"x\"\nclient_secret_env = \"PORTCULLIS_SECRET\"\n"
        ),
    )
    .await;
    let b = Chrome::open(PHONE.0, PHONE.1).await;
    b.goto(&e.gw.url("/.portcullis/login?rd=%2Fadmin")).await;
    assert_eq!(
        b.text(".providers a:first-child").await,
        "Sign in with Google"
    );
    assert_eq!(b.text(".or").await, "or with your email");
    audit(&b, "login-providers").await;
    // The button of a provider that is down leads to a page saying so.
    b.click(".providers a:first-child").await;
    assert_eq!(b.text("h1").await, "Sign-in is unavailable for a moment");
    assert!(b.text("main").await.contains(
        "Sign in with Google is not available right now. Try again in a few minutes, or sign in with your email address."
    ));
    audit(&b, "provider-down").await;
    b.close().await;

    // `[login] email = false`: only the buttons.
    let e = env(
        "email = false",
        &format!(
            "\n[[provider]]\nname = \"corp\"\nlabel = \"Sign in with Example SSO\"\n\
             issuer = \"http://{down}\"\nclient_id = \"x\"\nclient_secret_env = \"PORTCULLIS_SECRET\"\n"
        ),
    )
    .await;
    let b = Chrome::open(PHONE.0, PHONE.1).await;
    b.goto(&e.gw.url("/.portcullis/login")).await;
    assert_eq!(b.text("a.provider").await, "Sign in with Example SSO");
    assert!(b.try_find("input[type=email]").await.is_none());
    audit(&b, "login-providers-only").await;
    b.close().await;
}
