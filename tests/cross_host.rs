//! One sign-in for several hosts (`[session] cookie_domain`), end to end
//! behind nginx with the shipped `deploy/nginx/portcullis.conf` serving two
//! host names: signing in on `a.example.test` gives a session cookie for
//! the whole domain, which `b.example.test` accepts (the app behind it gets
//! the identity), and signing out on `b` ends it on `a` too. This is the
//! walk-through of `deploy/README.md` ("One sign-in for several hosts").
//! `PORTCULLIS_SKIP_PROXIES=1` skips it with a notice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use support::browser::Browser;
use support::flow::{self, Opts};
use support::gateway::{free_port, TestGateway};
use support::proxies::{self, Kind, Proxy};
use support::smtp::{Script, SmtpServer};
use support::upstream::Upstream;

const EMAIL: &str = "ann@example.com";

const ROUTES: &str = r#"
[[route]]
host = "a.example.test"
path = "/"

[[route]]
host = "b.example.test"
path = "/"
"#;

#[tokio::test]
async fn one_sign_in_opens_every_host_under_cookie_domain() {
    if proxies::skipped() || support::mode::tls() {
        return;
    }
    let port = free_port();
    let up = Upstream::start().await;
    let smtp = SmtpServer::start(Script::Accept);
    let server = format!(
        "listen = \"127.0.0.1:$PORT\"\npublic_url = \"http://a.example.test:{port}\"\n\
         trusted_proxies = [\"127.0.0.1/32\"]"
    );
    let text = flow::config_text(
        &Opts {
            server: &server,
            session: "cookie_domain = \"example.test\"",
            only_routes: Some(ROUTES),
            ..Opts::default()
        },
        "",
        smtp.port(),
        "",
    );
    let gw = TestGateway::start(&text).await;
    let _nginx = Proxy::start_for(
        Kind::Nginx,
        port,
        gw.addr.port(),
        up.addr.port(),
        "a.example.test b.example.test",
    )
    .await;
    // Both names lead to nginx, as DNS would.
    let at = SocketAddr::from(([127, 0, 0, 1], port));
    let client = support::client::builder()
        .resolve("a.example.test", at)
        .resolve("b.example.test", at)
        .build()
        .unwrap();
    let a = format!("http://a.example.test:{port}");
    let b = format!("http://b.example.test:{port}");

    // Signed out on a: to a's sign-in page, and through it.
    let mut browser = Browser::with_client(client.clone());
    let first = browser.get(&format!("{a}/x")).await;
    assert_eq!(first.status, 302, "{first:?}");
    assert_eq!(first.location(), format!("{a}/.portcullis/login?rd=%2Fx"));
    assert_eq!(browser.get(&first.location()).await.status, 200);
    let asked = flow::ask_link(&mut browser, &a, EMAIL, "/x").await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    let (token, _) = flow::mail_for(&smtp, EMAIL, 1).await;
    let mail = smtp.received()[0].text().unwrap();
    assert!(
        mail.contains(&format!("{a}/.portcullis/verify?token={token}")),
        "the link leads to the host that asked:\n{mail}"
    );
    let done = flow::confirm(&mut browser, &a, &token).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), "/x");

    // The session cookie is the domain's; a browser sends it to b as well
    // (and only it: the sign-in's own cookies stay on a).
    let session = done
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("portcullis="))
        .expect("a session cookie");
    assert!(session.contains("; Domain=example.test"), "{session}");
    let value = session
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("portcullis=")
        .to_string();
    let mut on_b = Browser::with_client(client.clone());
    on_b.jar.insert("portcullis".into(), value);
    let page = on_b.get(&format!("{b}/y")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let seen = up.last().unwrap();
    assert_eq!(seen.target, "/y");
    assert_eq!(seen.all("x-forwarded-email"), [EMAIL], "{seen:?}");
    assert_eq!(
        seen.one("host").as_deref(),
        Some(&*format!("b.example.test:{port}"))
    );

    // A browser without it is sent to b's own sign-in page.
    let stranger = Browser::with_client(client.clone())
        .get(&format!("{b}/y"))
        .await;
    assert_eq!(
        stranger.location(),
        format!("{b}/.portcullis/login?rd=%2Fy")
    );

    // Signing out on b ends the session on a too.
    let confirm = on_b.get(&format!("{b}/.portcullis/logout")).await;
    let csrf = confirm.field("csrf").unwrap();
    let out = on_b
        .post(&b, "/.portcullis/logout", &[("csrf", &csrf), ("rd", "/")])
        .await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert!(
        out.set_cookies()
            .iter()
            .any(|c| c.starts_with("portcullis=;") && c.contains("Domain=example.test")),
        "{:?}",
        out.set_cookies()
    );
    let back = browser.get(&format!("{a}/x")).await;
    assert_eq!(back.status, 302, "the session ended on a as well");
}
