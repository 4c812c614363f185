//! Groups and per-route rules through a real gateway: each decision asked
//! three ways, through the proxy, `/.portcullis/auth` (as nginx asks) and
//! `/.portcullis/forward-auth` (as Traefik and Caddy ask), with the same
//! answer; `X-Forwarded-Groups` exactly as the upstream gets it, and a
//! client's never.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::client::{raw, status_of};
use support::flow::{cookie_line, env, Env, Opts};

const T: Duration = Duration::from_secs(5);

const ROUTES: &str = "[[route]]\npath = \"/\"\nupstream = \"{up}\"\naccess = \"public\"\n\n\
     [[route]]\npath = \"/app\"\nupstream = \"{up}\"\n\n\
     [[route]]\npath = \"/ops\"\nupstream = \"{up}\"\nallow_emails = [\"boss@example.com\"]\nallow_groups = [\"ops\"]\n\n\
     [groups]\nops = [\"alice@example.com\", \"@ops.example.com\"]\ndev = [\"alice@example.com\", \"bob@example.com\"]\n";

async fn gateway(routes: &str) -> Env {
    env(Opts {
        server: "trusted_proxies = [\"127.0.0.1/32\"]",
        login: "allow_domains = [\"example.com\", \"ops.example.com\"]",
        only_routes: Some(routes),
        ..Opts::default()
    })
    .await
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

/// `method target` through the proxy, with `extra` header lines.
async fn proxy(e: &Env, method: &str, target: &str, extra: &str) -> String {
    let port = e.gw.addr.port();
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    raw(e.gw.addr, req.as_bytes(), T).await
}

/// The answers of `/.portcullis/auth` and `/.portcullis/forward-auth`
/// about `method target`, asked with `extra` header lines.
async fn ask_both(e: &Env, method: &str, target: &str, extra: &str) -> [String; 2] {
    let port = e.gw.addr.port();
    let auth = format!(
        "GET /.portcullis/auth HTTP/1.1\r\nHost: auth.internal\r\n\
         X-Original-URL: http://127.0.0.1:{port}{target}\r\nX-Original-Method: {method}\r\n\
         {extra}Connection: close\r\n\r\n"
    );
    let forward = format!(
        "GET /.portcullis/forward-auth HTTP/1.1\r\nHost: auth.internal\r\nAccept: application/json\r\n\
         X-Forwarded-Method: {method}\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: 127.0.0.1:{port}\r\n\
         X-Forwarded-Uri: {target}\r\n{extra}Connection: close\r\n\r\n"
    );
    [
        raw(e.gw.addr, auth.as_bytes(), T).await,
        raw(e.gw.addr, forward.as_bytes(), T).await,
    ]
}

/// The status of `method target` through the proxy, `/auth` and
/// `/forward-auth`, which must agree (2xx on forward-auth is 200 for
/// anything the proxy passes).
async fn decide(e: &Env, method: &str, target: &str, extra: &str) -> u16 {
    let through = status_of(&proxy(e, method, target, extra).await);
    let [auth, forward] = ask_both(e, method, target, extra).await;
    let asked = [status_of(&auth), status_of(&forward)];
    let expected = if through == 200 { 200 } else { through };
    assert_eq!(
        asked, [expected; 2],
        "{method} {target}: proxy {through}\n{auth}\n{forward}"
    );
    through
}

#[tokio::test]
async fn allow_groups_decide_alike_through_the_proxy_and_forward_auth() {
    let e = gateway(ROUTES).await;
    let alice = cookie_line(&e, "alice@example.com").await;
    let bob = cookie_line(&e, "bob@example.com").await;
    let boss = cookie_line(&e, "boss@example.com").await;
    let carol = cookie_line(&e, "carol@ops.example.com").await;
    // ops by address, by domain, and boss by allow_emails; dev is not ops.
    assert_eq!(decide(&e, "GET", "/ops/x", &alice).await, 200);
    assert_eq!(decide(&e, "GET", "/ops/x", &carol).await, 200);
    assert_eq!(decide(&e, "GET", "/ops/x", &boss).await, 200);
    assert_eq!(decide(&e, "GET", "/ops/x", &bob).await, 403);
    assert_eq!(decide(&e, "GET", "/ops/x", "").await, 401);
    // The literal reading is `/` (public); the view is `/ops`: still ops.
    assert_eq!(decide(&e, "GET", "/ops;x/y", &bob).await, 403);
    assert_eq!(decide(&e, "GET", "/app/x", &bob).await, 200);
}

#[tokio::test]
async fn the_upstream_and_forward_auth_get_the_groups_exactly() {
    let e = gateway(ROUTES).await;
    let alice = cookie_line(&e, "alice@example.com").await;
    let boss = cookie_line(&e, "boss@example.com").await;
    // Every spelling a client may send, signed in or not.
    let spoof = "X-Forwarded-Groups: admins\r\nX_Forwarded_Groups: admins\r\n\
                 x-forwarded-GROUPS: admins\r\nRemote-Groups: admins\r\n";
    let a = proxy(&e, "GET", "/app/a", &format!("{alice}{spoof}")).await;
    assert_eq!(status_of(&a), 200, "{a}");
    let got = e.up.last().unwrap();
    assert_eq!(got.target, "/app/a");
    assert_eq!(got.all("x-forwarded-groups"), ["dev,ops"], "{got:?}");
    assert_eq!(got.all("x_forwarded_groups"), Vec::<String>::new());
    assert_eq!(got.all("remote-groups"), Vec::<String>::new());
    // In no group: no header at all, and not the client's.
    let a = proxy(&e, "GET", "/app/b", &format!("{boss}{spoof}")).await;
    assert_eq!(status_of(&a), 200, "{a}");
    let got = e.up.last().unwrap();
    assert_eq!(got.target, "/app/b");
    assert_eq!(got.all("x-forwarded-email"), ["boss@example.com"]);
    assert!(!got.headers.iter().any(|(_, v)| v == "admins"), "{got:?}");
    // Public: no identity, not the client's.
    let a = proxy(&e, "GET", "/pub", spoof).await;
    assert_eq!(status_of(&a), 200, "{a}");
    let got = e.up.last().unwrap();
    assert_eq!(got.target, "/pub");
    assert!(!got.headers.iter().any(|(_, v)| v == "admins"), "{got:?}");

    // Forward-auth: both group headers on every 2xx, empty when in none.
    for (cookie, target, want) in [
        (alice.as_str(), "/app/a", "dev,ops"),
        (boss.as_str(), "/app/a", ""),
        ("", "/pub", ""),
    ] {
        for answer in ask_both(&e, "GET", target, cookie).await {
            assert_eq!(status_of(&answer), 200, "{answer}");
            for name in ["x-forwarded-groups", "x-auth-request-groups"] {
                assert_eq!(header(&answer, name).as_deref(), Some(want), "{answer}");
            }
        }
    }
}

const RULES: &str = "[[route]]\npath = \"/\"\nupstream = \"{up}\"\n\n\
     [[route]]\npath = \"/feed\"\nupstream = \"{up}\"\naccess = \"public\"\nmethods = [\"GET\", \"HEAD\"]\n\n\
     [[route]]\npath = \"/feed\"\nupstream = \"{up}\"\nallow_groups = [\"ops\"]\n\n\
     [[route]]\npath = \"/hook\"\nupstream = \"{up}\"\naccess = \"public\"\nmethods = [\"POST\"]\n\n\
     [[route]]\npath = \"/app\"\nupstream = \"{up}\"\n\n\
     [[route]]\npath = \"/app/internal\"\nupstream = \"{up}\"\ndeny = true\n\n\
     [[route]]\npath = \"/health\"\nupstream = \"{up}\"\nbypass_networks = [\"10.0.0.0/8\"]\n\n\
     [groups]\nops = [\"alice@example.com\"]\n";

#[tokio::test]
async fn methods_choose_among_the_routes_of_one_path() {
    let e = gateway(RULES).await;
    let alice = cookie_line(&e, "alice@example.com").await;
    let bob = cookie_line(&e, "bob@example.com").await;
    // GET and HEAD are public: no session needed, no identity sent.
    assert_eq!(decide(&e, "GET", "/feed/1", "").await, 200);
    assert_eq!(
        e.up.last().unwrap().all("x-forwarded-email"),
        Vec::<String>::new()
    );
    assert_eq!(decide(&e, "HEAD", "/feed/1", "").await, 200);
    // Any other method: the route without `methods`, for ops only.
    assert_eq!(decide(&e, "POST", "/feed/1", "").await, 401);
    assert_eq!(decide(&e, "DELETE", "/feed/1", &bob).await, 403);
    assert_eq!(decide(&e, "POST", "/feed/1", &alice).await, 200);
    let got = e.up.last().unwrap();
    assert_eq!(
        (got.method.as_str(), got.target.as_str()),
        ("POST", "/feed/1")
    );
    assert_eq!(got.all("x-forwarded-groups"), ["ops"]);
    // Only POST on /hook: another method is 405 (not `/`'s route), for
    // everyone, through the proxy and forward-auth alike.
    assert_eq!(decide(&e, "POST", "/hook", "").await, 200);
    let before = e.up.count();
    assert_eq!(decide(&e, "GET", "/hook/x", &alice).await, 405);
    assert_eq!(decide(&e, "GET", "/hook/x", "").await, 405);
    assert_eq!(e.up.count(), before, "a 405 reached the upstream");
}

#[tokio::test]
async fn deny_closes_a_sub_path_to_everyone() {
    let e = gateway(RULES).await;
    let alice = cookie_line(&e, "alice@example.com").await;
    let before = e.up.count();
    for cookie in ["", alice.as_str()] {
        for target in [
            "/app/internal",
            "/app/internal/x?y=1",
            "/APP/Internal/x",
            "/app/internal;x/y",
        ] {
            assert_eq!(decide(&e, "GET", target, cookie).await, 403, "{target}");
        }
        assert_eq!(decide(&e, "POST", "/app/internal/x", cookie).await, 403);
    }
    assert_eq!(
        e.up.count(),
        before,
        "a denied request reached the upstream"
    );
    // Beside it, the parent route as usual.
    assert_eq!(decide(&e, "GET", "/app/internals", &alice).await, 200);
    assert_eq!(decide(&e, "GET", "/app/internals", "").await, 401);
}

#[tokio::test]
async fn bypass_networks_pass_without_a_session_and_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let routes = format!("{RULES}\n[log]\naudit_file = {audit:?}\n");
    let e = gateway(&routes).await;
    let alice = cookie_line(&e, "alice@example.com").await;
    // From 10.1.2.3 (the client behind the trusted 127.0.0.1): passes, no
    // identity sent even with a session, and not the client's.
    let probe = "X-Forwarded-For: 10.1.2.3\r\n";
    assert_eq!(decide(&e, "GET", "/health/live", probe).await, 200);
    let got = e.up.last().unwrap();
    assert_eq!(got.target, "/health/live");
    assert_eq!(got.all("x-forwarded-for"), ["10.1.2.3, 127.0.0.1"]);
    let spoof = format!("{probe}{alice}X-Forwarded-Email: mallory@evil.test\r\n");
    assert_eq!(decide(&e, "GET", "/health/x", &spoof).await, 200);
    let got = e.up.last().unwrap();
    assert_eq!(got.target, "/health/x");
    assert_eq!(got.all("x-forwarded-email"), Vec::<String>::new());
    assert_eq!(got.all("x-forwarded-groups"), Vec::<String>::new());
    for answer in ask_both(&e, "GET", "/health", probe).await {
        assert_eq!(status_of(&answer), 200, "{answer}");
        assert_eq!(header(&answer, "x-forwarded-email").as_deref(), Some(""));
        assert_eq!(header(&answer, "x-forwarded-groups").as_deref(), Some(""));
    }
    // From elsewhere: a session as usual.
    for elsewhere in [
        "X-Forwarded-For: 192.0.2.9\r\n",
        "X-Forwarded-For: 11.0.0.1\r\n",
        "",
    ] {
        assert_eq!(decide(&e, "GET", "/health/live", elsewhere).await, 401);
    }
    assert_eq!(decide(&e, "GET", "/health/live", &alice).await, 200);
    // Only the route's own path: `/` is not bypassed.
    assert_eq!(decide(&e, "GET", "/app", probe).await, 401);
    // One audit line per bypass: each `decide` is 3 (proxy, /auth,
    // /forward-auth), and `ask_both` 2.
    let text = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"event\":\"access.bypassed\""))
        .collect();
    assert_eq!(lines.len(), 3 + 3 + 2, "{text}");
    assert!(lines[0].contains("\"ip\":\"10.1.2.3\""), "{}", lines[0]);
    assert!(
        lines[0].contains("\"path\":\"/health/live\""),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("\"reason\":\"/health\""), "{}", lines[0]);
    assert!(lines[0].contains("\"outcome\":\"success\""), "{}", lines[0]);
}

#[test]
fn check_prints_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("g.toml");
    std::fs::write(&file, RULES.replace("{up}", "http://127.0.0.1:9")).unwrap();
    let out = std::process::Command::new(support::gateway::binary())
        .args(["check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let row = |path: &str, methods: &str| {
        rows.iter()
            .find(|r| r.get(2) == Some(&path) && r.get(3) == Some(&methods))
            .map(|r| r[5..].join(" "))
            .unwrap_or_else(|| panic!("{path} {methods}: {stdout}"))
    };
    assert_eq!(row("/feed", "GET,HEAD"), "anyone (public)");
    assert_eq!(row("/feed", "any"), "group ops");
    assert_eq!(row("/hook", "POST"), "anyone (public)");
    assert_eq!(row("/app/internal", "any"), "nobody (deny: 403)");
    assert_eq!(
        row("/health", "any"),
        "any signed-in user; without a session from 10.0.0.0/8"
    );
    assert!(stdout.ends_with("groups: ops\n"), "{stdout}");
}

/// `[login] groups_file` is read with the configuration: a reload (what
/// SIGHUP does: `Config::load`, then `App::reload`) takes a changed file.
#[tokio::test]
async fn the_groups_file_is_read_again_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("groups.toml");
    std::fs::write(&file, "ops = [\"alice@example.com\"]\n").unwrap();
    let login = format!("allow_domains = [\"example.com\"]\ngroups_file = {file:?}");
    let routes = "[[route]]\npath = \"/\"\nupstream = \"{up}\"\nallow_groups = [\"ops\"]\n";
    let opts = || Opts {
        server: "trusted_proxies = [\"127.0.0.1/32\"]",
        login: &login,
        only_routes: Some(routes),
        ..Opts::default()
    };
    let e = env(opts()).await;
    let alice = cookie_line(&e, "alice@example.com").await;
    let bob = cookie_line(&e, "bob@example.com").await;
    assert_eq!(decide(&e, "GET", "/x", &alice).await, 200);
    assert_eq!(e.up.last().unwrap().all("x-forwarded-groups"), ["ops"]);
    assert_eq!(decide(&e, "GET", "/x", &bob).await, 403);

    std::fs::write(
        &file,
        "ops = [\"bob@example.com\"]\ndev = [\"@example.com\"]\n",
    )
    .unwrap();
    let text = support::flow::config_text(&opts(), &e.up.url(), e.smtp.port(), &e.prefix);
    let notes =
        e.gw.app
            .reload(support::gateway::config(&text, e.gw.addr.port()));
    assert_eq!(notes, Vec::<String>::new());
    assert_eq!(decide(&e, "GET", "/x", &alice).await, 403);
    assert_eq!(decide(&e, "GET", "/y", &bob).await, 200);
    let got = e.up.last().unwrap();
    assert_eq!(
        (got.target.as_str(), got.all("x-forwarded-groups")),
        ("/y", vec!["dev,ops".to_string()])
    );
}

/// `portcullis policy` (the real binary, reading the same configuration)
/// says what the gateway then does: same route, same status, for signed-out
/// and signed-in requests, a method rule and a denied path; exit 0 only
/// when the request would pass.
#[tokio::test]
async fn policy_says_what_the_gateway_does() {
    let routes = "[[route]]\npath = \"/\"\nupstream = \"{up}\"\naccess = \"public\"\nmethods = [\"GET\"]\n\n\
         [[route]]\npath = \"/\"\nupstream = \"{up}\"\n\n\
         [[route]]\npath = \"/ops\"\nupstream = \"{up}\"\nallow_groups = [\"ops\"]\n\n\
         [[route]]\npath = \"/ops/secret\"\nupstream = \"{up}\"\ndeny = true\n\n\
         [groups]\nops = [\"alice@example.com\"]\n";
    let e = gateway(routes).await;
    let text = support::flow::config_text(
        &Opts {
            server: "trusted_proxies = [\"127.0.0.1/32\"]",
            login: "allow_domains = [\"example.com\", \"ops.example.com\"]",
            only_routes: Some(routes),
            ..Opts::default()
        },
        &e.up.url(),
        e.smtp.port(),
        "",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(&file, text.replace("$PORT", "1")).unwrap();
    let bob = cookie_line(&e, "bob@example.com").await;
    let alice = cookie_line(&e, "alice@example.com").await;
    for (method, path, who, cookie, status, decision) in [
        ("GET", "/x", None, "", 200, "public"),
        ("POST", "/x", None, "", 401, "unauthenticated"),
        (
            "POST",
            "/x",
            Some("bob@example.com"),
            bob.as_str(),
            200,
            "allow",
        ),
        (
            "GET",
            "/ops/a",
            Some("bob@example.com"),
            bob.as_str(),
            403,
            "forbidden",
        ),
        (
            "GET",
            "/ops/a",
            Some("alice@example.com"),
            alice.as_str(),
            200,
            "allow",
        ),
        (
            "GET",
            "/ops/secret",
            Some("alice@example.com"),
            alice.as_str(),
            403,
            "denied",
        ),
    ] {
        let mut cmd = std::process::Command::new(support::gateway::binary());
        cmd.arg("--config")
            .arg(&file)
            .env("PORTCULLIS_SECRET", support::gateway::SECRET)
            .args([
                "policy",
                "--url",
                &format!("https://gw.test{path}"),
                "--method",
                method,
            ]);
        if let Some(who) = who {
            cmd.args(["--email", who]);
        }
        let out = cmd.output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        let expected_status = if decision == "unauthenticated" {
            303
        } else {
            status
        };
        assert!(
            said.contains(&format!("decision: {decision} ({expected_status})")),
            "{method} {path}: {said}"
        );
        let passes = matches!(decision, "allow" | "public");
        assert_eq!(
            out.status.code(),
            Some(if passes { 0 } else { 1 }),
            "{said}"
        );
        let answer = raw(
            e.gw.addr,
            format!(
                "{method} {path} HTTP/1.1\r\nHost: gw.test\r\n{cookie}Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
            T,
        )
        .await;
        assert_eq!(status_of(&answer), status, "{method} {path} as {who:?}");
    }
}

/// The same through the real binary and a real SIGHUP: the operator edits
/// `groups_file` and sends SIGHUP; a signed-in session's access follows
/// the new file without signing in again.
#[tokio::test(flavor = "multi_thread")]
async fn sighup_rereads_the_groups_file_in_the_running_binary() {
    use support::browser::Browser;
    use support::gateway::GatewayProcess;
    use support::smtp::{Script, SmtpServer};
    use support::upstream::Upstream;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("groups.toml");
    std::fs::write(&file, "ops = [\"alice@example.com\"]\n").unwrap();
    let up = Upstream::start().await;
    let smtp = SmtpServer::start(Script::Accept);
    let login = format!("allow_domains = [\"example.com\"]\ngroups_file = {file:?}");
    let routes = "[[route]]\npath = \"/\"\nupstream = \"{up}\"\nallow_groups = [\"ops\"]\n";
    let text = support::flow::config_text(
        &Opts {
            login: &login,
            only_routes: Some(routes),
            ..Opts::default()
        },
        &up.url(),
        smtp.port(),
        "",
    );
    let gw = GatewayProcess::start(dir.path(), &text);
    let origin = gw.origin();
    let mut alice = Browser::new();
    support::flow::ask_link(&mut alice, &origin, "alice@example.com", "/").await;
    let (token, _) = support::flow::mail_for(&smtp, "alice@example.com", 1).await;
    let done = support::flow::confirm(&mut alice, &origin, &token).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(alice.get(&gw.url("/x")).await.status, 200);
    assert_eq!(up.last().unwrap().all("x-forwarded-groups"), ["ops"]);

    std::fs::write(&file, "ops = [\"bob@example.com\"]\n").unwrap();
    gw.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !gw.log_text().contains("configuration reloaded") {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload logged:\n{}",
            gw.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let page = alice.get(&gw.url("/x")).await;
    assert_eq!(page.status, 403, "{}", page.body);
}
