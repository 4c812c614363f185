//! The shipped proxy configurations (`deploy/nginx`, `deploy/caddy`,
//! `deploy/traefik`, `deploy/ingress-nginx`) in front of a real gateway,
//! through real proxies: nginx, Caddy 2.6, Traefik 3, and nginx configured
//! the way ingress-nginx configures itself from the manifest's annotations
//! (`support/proxies.rs`). Each proxy runs the deploy file itself, its
//! placeholders replaced, so the documentation cannot rot.
//!
//! Each proxy serves the app (the recording upstream) at
//! `http://127.0.0.1:<port>` and asks the gateway (in process, its routes
//! on host 127.0.0.1 without an upstream, `trusted_proxies =
//! ["127.0.0.1/32"]`) about every request; `/.portcullis/*` goes to the
//! gateway itself. The checks, one test each per proxy:
//!
//! - a: a signed-out browser navigation ends on the sign-in page; signing
//!   in through the proxy (link asked for, mail read from the SMTP server,
//!   button pressed) leads back, and the app gets `X-Forwarded-Email` and
//!   `X-Forwarded-Groups` (`dev,ops`), and `X-Portcullis-Jwt-Assertion`
//!   (`[assertion]` is on: one token, for alice, passed on by the proxy).
//! - b: a signed-out XHR gets 401 (ingress-nginx: its template sends every
//!   401 to `auth-signin`, so 302).
//! - c: a signed-in address outside the route's `allow_emails` gets 403.
//! - d: a client's `X-Forwarded-Email`/`-User`/`-Groups` and
//!   `X-Portcullis-Jwt-Assertion` never reach the app (signed
//!   in as someone else, and on a public route), and a client's
//!   `X-Original-URL`/`X-Forwarded-*` naming a public page never open a
//!   protected one.
//! - e: the gateway stopped, the proxy answers 5xx and never the app.
//! - f: a POST is decided as a POST: signed out, a form post gets 303 (not
//!   302; ingress-nginx: 302, its template's), an XHR post 401; neither
//!   reaches the app; signed in, the app gets the POST and its body.
//!
//! Plus the manifest against the Kubernetes schemas (`kubernetes-validate
//! --strict`). Needs nginx, caddy, traefik, Debian's
//! libnginx-mod-http-set-misc and kubernetes-validate (`.ci/run` installs
//! them); `PORTCULLIS_SKIP_PROXIES=1` skips with a notice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::Instant;

use support::browser::{Browser, Page};
use support::flow::{self, Opts};
use support::gateway::{free_port, TestGateway};
use support::proxies::{self, Kind, Proxy};
use support::smtp::{Script, SmtpServer};
use support::upstream::{Seen, Upstream};

const ALICE: &str = "alice@example.com";
const MALLORY: &str = "mallory@evil.test";

/// The gateway's routes: all on host 127.0.0.1 (any port), none with an
/// upstream (the proxy serves the app; the gateway only decides).
const ROUTES: &str = r#"
[[route]]
host = "127.0.0.1"
path = "/"

[[route]]
host = "127.0.0.1"
path = "/public"
access = "public"

[[route]]
host = "127.0.0.1"
path = "/admin"
allow_emails = ["boss@example.com"]

[groups]
ops = ["@example.com"]
dev = ["alice@example.com"]
"#;

struct Setup {
    kind: Kind,
    gw: Option<TestGateway>,
    up: Upstream,
    smtp: SmtpServer,
    proxy: Proxy,
    started: Instant,
    /// Holds the `[assertion]` key file.
    _keys: tempfile::TempDir,
}

/// The gateway, the app, the SMTP server and `kind` in front of them;
/// `None` when the proxy tests are skipped.
async fn setup(kind: Kind) -> Option<Setup> {
    if proxies::skipped() {
        return None;
    }
    let started = Instant::now();
    let port = free_port();
    let up = Upstream::start().await;
    let smtp = SmtpServer::start(Script::Accept);
    let server = format!(
        "listen = \"127.0.0.1:$PORT\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
         trusted_proxies = [\"127.0.0.1/32\"]\nshutdown_timeout = \"1s\""
    );
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("assertion.pem");
    let pem = portcullis::assertion::keys::generate(portcullis::assertion::Algorithm::Es256);
    std::fs::write(&key, pem.unwrap()).unwrap();
    let assertion = format!(
        "[assertion]\nsigning_key_file = {:?}\n",
        key.display().to_string()
    );
    let text = flow::config_text(
        &Opts {
            server: &server,
            only_routes: Some(ROUTES),
            routes: &assertion,
            ..Opts::default()
        },
        "",
        smtp.port(),
        "",
    );
    let gw = TestGateway::start(&text).await;
    let proxy = Proxy::start(kind, port, gw.addr.port(), up.addr.port()).await;
    Some(Setup {
        kind,
        gw: Some(gw),
        up,
        smtp,
        proxy,
        started,
        _keys: keys,
    })
}

impl Setup {
    fn url(&self, path: &str) -> String {
        self.proxy.url(path)
    }

    fn origin(&self) -> String {
        self.proxy.origin()
    }

    /// Where a browser without a session is sent for `target`: the
    /// gateway's `Location` (rd = the path, encoded), or for ingress-nginx
    /// `auth-signin` with rd = the whole URL.
    fn signin_location(&self, target: &str) -> String {
        if self.kind.redirects_every_401() {
            format!(
                "{}/.portcullis/login?rd={}{}",
                self.origin(),
                self.origin(),
                target
            )
        } else {
            format!(
                "{}/.portcullis/login?rd={}",
                self.origin(),
                flow::urlenc(target)
            )
        }
    }

    /// `location`, its `rd` decoded once (ingress-nginx escapes the path
    /// with `set_escape_uri`, which these tests do not reproduce).
    fn decoded(location: &str) -> String {
        flow::percent_decode_once(location)
    }

    /// Signs `email` in through the proxy in `b`, from a navigation to
    /// `target`: follows the redirect to the sign-in page, asks for a link,
    /// reads the mail, presses the button. Returns the final 303's Location.
    async fn sign_in(&self, b: &mut Browser, email: &str, target: &str) -> String {
        let first = b.get(&self.url(target)).await;
        assert_eq!(first.status, 302, "{}: {first:?}", self.kind.name());
        let location = first.location();
        assert_eq!(
            Self::decoded(&location),
            Self::decoded(&self.signin_location(target)),
            "{}: where a signed-out navigation is sent",
            self.kind.name()
        );
        let page = b.get(&location).await;
        assert_eq!(
            page.status,
            200,
            "{}: the sign-in page: {}",
            self.kind.name(),
            page.body
        );
        assert!(page.field("csrf").is_some(), "{}", page.body);
        let rd = url::Url::parse(&location)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "rd")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        let asked = flow::ask_link(b, &self.origin(), email, &rd).await;
        assert_eq!(asked.status, 200, "{}: {}", self.kind.name(), asked.body);
        let (token, _) = flow::mail_for(&self.smtp, email, 1).await;
        // The link in the mail goes through the proxy.
        let text = self.smtp.received()[0].text().unwrap();
        let link = format!("{}/.portcullis/verify?token={token}", self.origin());
        assert!(text.contains(&link), "{link} not in the mail:\n{text}");
        let done = flow::confirm(b, &self.origin(), &token).await;
        assert_eq!(done.status, 303, "{}: {}", self.kind.name(), done.body);
        assert!(
            b.jar.contains_key("portcullis"),
            "{}: no session cookie: {:?}",
            self.kind.name(),
            b.jar
        );
        done.location()
    }

    fn done(&self, check: &str) {
        eprintln!(
            "{} {check}: ok in {:?}",
            self.kind.name(),
            self.started.elapsed()
        );
    }
}

/// One request through the proxy with `b`'s cookies (none taken back).
async fn send(
    b: &Browser,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Page {
    let mut req = support::client::http().request(method.parse().unwrap(), url);
    if !b.jar.is_empty() {
        req = req.header("cookie", flow::cookie_header(b));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(body) = body {
        req = req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.unwrap();
    Page {
        status,
        headers,
        body,
    }
}

const NAVIGATION: (&str, &str) = ("accept", "text/html,application/xhtml+xml,*/*;q=0.8");
const JSON: (&str, &str) = ("accept", "application/json");

/// The last request the app got, which must be for `target`.
fn seen(up: &Upstream, target: &str) -> Seen {
    let last = up.last().expect("the app got nothing");
    assert_eq!(last.target, target, "{last:?}");
    last
}

/// (a) Signed out, a navigation ends on the sign-in page; after signing in
/// through the proxy the original URL reaches the app with the identity.
async fn a_signin_journey(kind: Kind) {
    let Some(s) = setup(kind).await else { return };
    let target = "/app/page?x=1";
    let mut b = Browser::new();
    let back = s.sign_in(&mut b, ALICE, target).await;
    if kind.redirects_every_401() {
        // ingress-nginx's rd is the absolute URL with the request's scheme
        // and port (here http://127.0.0.1:<port>/...), which the rd check
        // refuses (only https on the default port): back to /. In a real
        // cluster it is https://app.example.com/... and kept.
        assert_eq!(back, "/", "{}", kind.name());
    } else {
        assert_eq!(back, target, "{}", kind.name());
    }
    assert_eq!(s.up.count(), 0, "the app was reached before the sign-in");
    let page = b.get(&s.url(target)).await;
    assert_eq!(page.status, 200, "{}: {}", kind.name(), page.body);
    let got = seen(&s.up, target);
    assert_eq!(got.method, "GET");
    assert_eq!(got.all("x-forwarded-email"), [ALICE], "{got:?}");
    assert_eq!(got.all("x-forwarded-user"), [ALICE], "{got:?}");
    assert_eq!(got.all("x-forwarded-groups"), ["dev,ops"], "{got:?}");
    assert_eq!(assertion_email(&got), ALICE, "{}", kind.name());
    s.done("a");
}

/// (b) Signed out, an XHR gets 401 (ingress-nginx: 302, see the module
/// doc) and never reaches the app.
async fn b_signed_out_xhr_is_401(kind: Kind) {
    let Some(s) = setup(kind).await else { return };
    let b = Browser::new();
    let want = if kind.redirects_every_401() { 302 } else { 401 };
    let json = send(&b, "GET", &s.url("/app/data"), &[JSON], None).await;
    assert_eq!(
        json.status,
        want,
        "{}: Accept: application/json",
        kind.name()
    );
    let xrw = send(
        &b,
        "GET",
        &s.url("/app/data"),
        &[NAVIGATION, ("x-requested-with", "XMLHttpRequest")],
        None,
    )
    .await;
    assert_eq!(xrw.status, want, "{}: X-Requested-With", kind.name());
    // A navigation is what gets the redirect, for HEAD as for GET.
    let nav = send(&b, "GET", &s.url("/app/data"), &[NAVIGATION], None).await;
    assert_eq!(nav.status, 302, "{}: navigation", kind.name());
    let head = send(&b, "HEAD", &s.url("/app/data"), &[NAVIGATION], None).await;
    assert_eq!(head.status, 302, "{}: HEAD navigation", kind.name());
    assert_eq!(head.location(), nav.location(), "{}", kind.name());
    if matches!(kind, Kind::Caddy | Kind::Traefik) {
        // The gateway's answer as it is: the 401 names the sign-in page
        // too, nothing is cached, no cookie is set.
        for (what, page) in [("401", &json), ("302", &nav)] {
            assert_eq!(
                Setup::decoded(&page.location()),
                Setup::decoded(&s.signin_location("/app/data")),
                "{}: {what}",
                kind.name()
            );
            assert_eq!(
                page.header("cache-control").as_deref(),
                Some("no-store"),
                "{}: {what}",
                kind.name()
            );
            assert!(page.set_cookies().is_empty(), "{}: {what}", kind.name());
        }
    }
    assert_eq!(s.up.count(), 0, "{}: the app was reached", kind.name());
    s.done("b");
}

/// (c) Signed in outside the route's allow list: 403, the app not reached.
async fn c_outside_the_allow_list_is_403(kind: Kind) {
    let Some(s) = setup(kind).await else { return };
    let mut b = Browser::new();
    s.sign_in(&mut b, ALICE, "/app/").await;
    let nav = b.get(&s.url("/admin/panel")).await;
    assert_eq!(nav.status, 403, "{}: {}", kind.name(), nav.body);
    let xhr = send(&b, "GET", &s.url("/admin/panel"), &[JSON], None).await;
    assert_eq!(xhr.status, 403, "{}: {}", kind.name(), xhr.body);
    assert_eq!(s.up.count(), 0, "{}: the app was reached", kind.name());
    // The same session is fine elsewhere.
    assert_eq!(b.get(&s.url("/app/")).await.status, 200);
    s.done("c");
}

/// (d) Identity headers a client sends never reach the app, and a client
/// cannot name the original request.
async fn d_client_identity_never_reaches_the_app(kind: Kind) {
    let Some(s) = setup(kind).await else { return };
    // Also the spellings that apps reading headers as variable names
    // (CGI, WSGI, PHP: `HTTP_X_FORWARDED_EMAIL`) take for the same header.
    let spoof = [
        NAVIGATION,
        ("x-forwarded-email", MALLORY),
        ("x-forwarded-user", MALLORY),
        ("x_forwarded_email", MALLORY),
        ("X_Forwarded_User", MALLORY),
        ("x-forwarded-groups", "mallory-admins"),
        ("X_Forwarded_Groups", "mallory-admins"),
        ("x-portcullis-jwt-assertion", "mallory.forged.token"),
        ("X_Portcullis_Jwt_Assertion", "mallory.forged.token"),
    ];
    // Signed out, on a public route: forwarded, without mallory.
    let anonymous = Browser::new();
    let public = send(&anonymous, "GET", &s.url("/public/page"), &spoof, None).await;
    assert_eq!(public.status, 200, "{}: {}", kind.name(), public.body);
    let got = seen(&s.up, "/public/page");
    assert_no_mallory(kind, &got);
    for name in [
        "x-forwarded-email",
        "x-forwarded-user",
        "x-forwarded-groups",
        "x-portcullis-jwt-assertion",
    ] {
        let values = got.all(name);
        assert!(
            values.iter().all(String::is_empty),
            "{}: {name} on a public route: {values:?}",
            kind.name()
        );
    }
    // A client naming a public page as the original request, signed out:
    // still the sign-in page for the page it asked for.
    let original = s.url("/public/page");
    let forged = [
        NAVIGATION,
        ("x-original-url", original.as_str()),
        ("x-original-method", "GET"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "127.0.0.1"),
        ("x-forwarded-uri", "/public/page"),
        ("x-forwarded-method", "GET"),
    ];
    let before = s.up.count();
    let forged_answer = send(&anonymous, "GET", &s.url("/app/secret"), &forged, None).await;
    assert_eq!(
        forged_answer.status,
        302,
        "{}: a forged original request: {forged_answer:?}",
        kind.name()
    );
    assert_eq!(
        Setup::decoded(&forged_answer.location()),
        Setup::decoded(&s.signin_location("/app/secret")),
        "{}",
        kind.name()
    );
    assert_eq!(s.up.count(), before, "{}: the app was reached", kind.name());
    // Signed in as alice: alice, once, never mallory.
    let mut b = Browser::new();
    s.sign_in(&mut b, ALICE, "/app/").await;
    let mine = send(&b, "GET", &s.url("/app/me"), &spoof, None).await;
    assert_eq!(mine.status, 200, "{}: {}", kind.name(), mine.body);
    let got = seen(&s.up, "/app/me");
    assert_no_mallory(kind, &got);
    assert_eq!(got.all("x-forwarded-email"), [ALICE], "{got:?}");
    assert_eq!(got.all("x-forwarded-user"), [ALICE], "{got:?}");
    assert_eq!(got.all("x-forwarded-groups"), ["dev,ops"], "{got:?}");
    assert_eq!(assertion_email(&got), ALICE, "{}", kind.name());
    s.done("d");
}

/// The `email` of the one `X-Portcullis-Jwt-Assertion` the app got (its
/// signature is checked by PyJWT and jose in `tests/assertion.rs`).
fn assertion_email(got: &Seen) -> String {
    let tokens = got.all("x-portcullis-jwt-assertion");
    assert_eq!(tokens.len(), 1, "{got:?}");
    let payload = tokens[0].split('.').nth(1).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&portcullis::crypto::unb64(payload).unwrap()).unwrap();
    assert_eq!(claims["aud"], "127.0.0.1", "{claims}");
    claims["email"].as_str().unwrap().to_string()
}

/// No header the app got says mallory, whatever its spelling.
fn assert_no_mallory(kind: Kind, got: &Seen) {
    let spoofed: Vec<_> = got
        .headers
        .iter()
        .filter(|(_, v)| v.contains("mallory"))
        .collect();
    assert!(
        spoofed.is_empty(),
        "{}: the app got {spoofed:?}",
        kind.name()
    );
}

/// (e) Portcullis down: the proxy answers 5xx itself, never with the app.
async fn e_gateway_down_fails_closed(kind: Kind) {
    let Some(mut s) = setup(kind).await else {
        return;
    };
    s.gw.take().unwrap().stop().await;
    let b = Browser::new();
    for path in ["/app/page", "/public/page"] {
        for accept in [NAVIGATION, JSON] {
            let page = send(&b, "GET", &s.url(path), &[accept], None).await;
            assert!(
                (500..600).contains(&page.status),
                "{}: {path} ({}) with the gateway down: {page:?}",
                kind.name(),
                accept.1
            );
            eprintln!(
                "{} e: {path} ({}) -> {}",
                kind.name(),
                accept.1,
                page.status
            );
        }
    }
    assert_eq!(s.up.count(), 0, "{}: the app was reached", kind.name());
    s.done("e");
}

/// (f) A POST is decided as a POST.
async fn f_post_is_decided_as_a_post(kind: Kind) {
    let Some(s) = setup(kind).await else { return };
    let anonymous = Browser::new();
    let form = send(
        &anonymous,
        "POST",
        &s.url("/app/form"),
        &[NAVIGATION, ("origin", &s.origin())],
        Some("a=1&b=2"),
    )
    .await;
    // 303: the browser follows with a GET (ingress-nginx's template
    // always answers 302, which browsers also follow with a GET).
    let want = if kind.redirects_every_401() { 302 } else { 303 };
    assert_eq!(
        form.status,
        want,
        "{}: signed-out form post: {form:?}",
        kind.name()
    );
    assert_eq!(
        Setup::decoded(&form.location()),
        Setup::decoded(&s.signin_location("/app/form")),
        "{}",
        kind.name()
    );
    let xhr = send(
        &anonymous,
        "POST",
        &s.url("/app/form"),
        &[JSON],
        Some("a=1"),
    )
    .await;
    let want = if kind.redirects_every_401() { 302 } else { 401 };
    assert_eq!(
        xhr.status,
        want,
        "{}: signed-out XHR post: {xhr:?}",
        kind.name()
    );
    assert_eq!(s.up.count(), 0, "{}: the app was reached", kind.name());
    // Signed in: the app gets the POST with its body.
    let mut b = Browser::new();
    s.sign_in(&mut b, ALICE, "/app/").await;
    let posted = send(
        &b,
        "POST",
        &s.url("/app/form"),
        &[NAVIGATION, ("origin", &s.origin())],
        Some("a=1&b=2"),
    )
    .await;
    assert_eq!(posted.status, 200, "{}: {}", kind.name(), posted.body);
    let got = seen(&s.up, "/app/form");
    assert_eq!(got.method, "POST");
    assert_eq!(got.body_len, 7, "{got:?}");
    assert_eq!(got.all("x-forwarded-email"), [ALICE], "{got:?}");
    s.done("f");
}

macro_rules! proxy_suite {
    ($($module:ident => $kind:expr),* $(,)?) => {$(
        mod $module {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_signed_out_navigation_signs_in_and_reaches_the_app() {
                plain_only!("the proxies speak plain HTTP to the gateway");
                a_signin_journey($kind).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn b_a_signed_out_xhr_gets_401() {
                plain_only!("the proxies speak plain HTTP to the gateway");
                b_signed_out_xhr_is_401($kind).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn c_outside_the_allow_list_gets_403() {
                plain_only!("the proxies speak plain HTTP to the gateway");
                c_outside_the_allow_list_is_403($kind).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn d_a_client_identity_never_reaches_the_app() {
                plain_only!("the proxies speak plain HTTP to the gateway");
                d_client_identity_never_reaches_the_app($kind).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn e_gateway_down_means_5xx_never_the_app() {
                plain_only!("the proxies speak plain HTTP to the gateway");
                e_gateway_down_fails_closed($kind).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn f_a_post_is_decided_as_a_post() {
                plain_only!("the proxies speak plain HTTP to the gateway");
                f_post_is_decided_as_a_post($kind).await;
            }
        }
    )*};
}

proxy_suite! {
    nginx => Kind::Nginx,
    caddy => Kind::Caddy,
    traefik => Kind::Traefik,
    ingress_nginx => Kind::IngressNginx,
}

/// The Ingress manifest against the Kubernetes schemas, strictly (unknown
/// fields are errors), for the oldest and the newest version
/// kubernetes-validate knows.
#[test]
fn ingress_nginx_manifest_is_valid_for_kubernetes() {
    if proxies::skipped() {
        return;
    }
    let bin = proxies::program("kubernetes-validate", "PyPI's kubernetes-validate");
    let manifest = format!(
        "{}/deploy/ingress-nginx/ingress.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    for version in ["1.25.0", "1.37.0"] {
        let out = Command::new(&bin)
            .args(["--strict", "-k", version, &manifest])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "kubernetes {version}:\n{text}");
        for resource in ["ingress/app", "ingress/portcullis"] {
            assert!(
                text.contains(&format!("passed for resource {resource}")),
                "kubernetes {version}: {resource} not validated:\n{text}"
            );
        }
    }
}

/// The template emulation reads the annotations it should: the values a
/// user copies from the manifest.
#[test]
fn ingress_nginx_annotations_are_the_documented_ones() {
    let a = proxies::ingress_annotations();
    assert!(a.auth_url.ends_with("/.portcullis/auth"), "{a:?}");
    assert!(a.auth_signin.ends_with("/.portcullis/login"), "{a:?}");
    assert_eq!(
        a.response_headers,
        [
            "X-Forwarded-Email",
            "X-Forwarded-User",
            "X-Forwarded-Groups",
            "X-Portcullis-Jwt-Assertion"
        ]
    );
}
