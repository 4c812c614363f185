//! No spelling dodges a route (issue 16 items 3, 4 and the `X-Original-URL`
//! part of 7), checked through a running gateway with a real upstream and
//! real sign-ins:
//!
//! - every spelling of a protected path that Tomcat, Jetty, Spring
//!   (`;parameters`, raw or `%3B`) or IIS (trailing dots and spaces, raw or
//!   escaped) serve as that path, in any case, on any segment of the prefix
//!   and at the end or in the middle of the path, is 401 anonymously, 403
//!   for a signed-in user outside the route's allow list and forwarded
//!   unchanged for one inside it; segments such an upstream reads as `.`,
//!   `..` or nothing are 400;
//! - a public route never serves a spelling that an upstream reading the
//!   path literally sees under a protected route;
//! - a Host, `:authority`, absolute-form authority or trusted
//!   `X-Forwarded-Host` with an empty or bad port or a bad name is 400;
//! - `X-Original-URL`, `X-Rewrite-URL` and the names of `[server]
//!   strip_headers` never reach the upstream, in any spelling.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::client::{body_of, raw, status_of};
use support::flow::{cookie_line, env, Env, Opts};
use support::gateway::SECRET;
use support::h2raw;
use support::upstream::Seen;
use tokio::io::AsyncReadExt;

const T: Duration = Duration::from_secs(5);

/// What one raw request got: the status and, if it was forwarded, what
/// the upstream saw.
async fn send(e: &Env, target: &str, host: &str, extra: &str) -> (u16, Option<Seen>) {
    let before = e.up.count();
    let req = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n");
    let r = raw(e.gw.addr, req.as_bytes(), T).await;
    let seen = (e.up.count() > before).then(|| e.up.last().unwrap());
    (status_of(&r), seen)
}

// ===== Item 3: path spellings =====

/// The decorations an upstream strips from a segment: parameters (raw
/// `;`, `%3B`, `%3b`), trailing dots (raw, `%2E`, `%2e`) and trailing
/// spaces (raw, `%20`), alone and combined.
const DECORATIONS: &[&str] = &[
    ";",
    ";x",
    ";x=1",
    ";jsessionid=A1",
    "%3B",
    "%3b",
    "%3Bx",
    ".",
    "..",
    "%2E",
    "%2e",
    " ",
    "%20",
    ". ",
    ".%20",
    "%20.",
    ";x.",
    ".;x",
    "%20;x",
    "..;x",
    "%2e%3b",
];

/// Every generated spelling of the two protected prefixes, with what the
/// upstream must get (the request's path, escapes in canonical form).
fn spellings() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for prefix in ["/admin", "/a/b/secret"] {
        let segments: Vec<&str> = prefix.split('/').skip(1).collect();
        for at in 0..segments.len() {
            for decoration in DECORATIONS {
                for case in 0..3 {
                    let mut spelled: Vec<String> = segments.iter().map(|s| s.to_string()).collect();
                    spelled[at].push_str(decoration);
                    let base = format!("/{}", spelled.join("/"));
                    let base = match case {
                        0 => base,
                        1 => base.to_uppercase(),
                        _ => base
                            .chars()
                            .enumerate()
                            .map(|(i, c)| {
                                if i % 2 == 0 {
                                    c.to_ascii_uppercase()
                                } else {
                                    c
                                }
                            })
                            .collect(),
                    };
                    for tail in ["", "/", "/panel", "/panel/x;y"] {
                        let path = format!("{base}{tail}");
                        let canonical = path
                            .replace(' ', "%20")
                            .replace("%3b", "%3B")
                            .replace("%2e", ".")
                            .replace("%2E", ".");
                        out.push((path.replace(' ', "%20"), canonical));
                    }
                }
            }
        }
    }
    out
}

/// Routes: a public catch-all, `/admin` and `/a/b/secret` protected with
/// an allow list; boss@ is on it, outsider@ is not (both may sign in).
const ROUTES: &str = "[[route]]\npath = \"/\"\nupstream = \"{up}\"\naccess = \"public\"\n\n\
     [[route]]\npath = \"/admin\"\nupstream = \"{up}\"\nallow_emails = [\"boss@example.com\"]\n\n\
     [[route]]\npath = \"/a/b/secret\"\nupstream = \"{up}\"\nallow_emails = [\"boss@example.com\"]\n";

async fn spelling_env() -> Env {
    env(Opts {
        only_routes: Some(ROUTES),
        ..Opts::default()
    })
    .await
}

#[tokio::test]
async fn every_spelling_of_a_protected_path_is_401_anonymous_403_outside_the_allow_list() {
    let e = spelling_env().await;
    let boss = cookie_line(&e, "boss@example.com").await;
    let outsider = cookie_line(&e, "outsider@example.com").await;
    let cases = spellings();
    assert_eq!(cases.len(), 4 * DECORATIONS.len() * 3 * 4);
    let mut failures = Vec::new();
    for (target, canonical) in &cases {
        let anonymous = send(&e, target, "x.test", "").await;
        let outside = send(&e, target, "x.test", &outsider).await;
        let inside = send(&e, target, "x.test", &boss).await;
        let got = (
            (anonymous.0, anonymous.1.is_some()),
            (outside.0, outside.1.is_some()),
            (inside.0, inside.1.map(|s| s.target)),
        );
        let want = ((401, false), (403, false), (200, Some(canonical.clone())));
        if got != want {
            failures.push(format!("{target}: {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {}:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // The plain path, for comparison: the same three answers.
    assert_eq!(send(&e, "/admin/panel", "x.test", "").await.0, 401);
    assert_eq!(send(&e, "/admin/panel", "x.test", &outsider).await.0, 403);
}

/// What `/.portcullis/auth` answers about `target` on `host` (the way
/// nginx's `auth_request` asks), with the client's cookie.
async fn forward_auth(e: &Env, target: &str, host: &str, cookie: &str) -> u16 {
    let host = if host == "gateway" {
        format!("127.0.0.1:{}", e.gw.addr.port())
    } else {
        host.to_string()
    };
    let req = format!(
        "GET /.portcullis/auth HTTP/1.1\r\nHost: gw.test\r\nX-Original-URL: http://{host}{target}\r\n{cookie}Connection: close\r\n\r\n"
    );
    status_of(&raw(e.gw.addr, req.as_bytes(), T).await)
}

/// The one decision (architecture issue): forward-auth answers exactly as
/// the proxy path for every spelling, every user and the edge cases
/// (public paths, dot segments, bad hosts), so another proxy in front
/// can never let through what the gateway itself would refuse.
#[tokio::test]
async fn forward_auth_decides_as_the_proxy_path_for_every_spelling() {
    // The same routes; the forward-auth questions come from a trusted proxy.
    let e = env(Opts {
        server: "trusted_proxies = [\"127.0.0.1/32\"]",
        only_routes: Some(ROUTES),
        ..Opts::default()
    })
    .await;
    let boss = cookie_line(&e, "boss@example.com").await;
    let outsider = cookie_line(&e, "outsider@example.com").await;
    let mut targets: Vec<String> = spellings().into_iter().map(|(t, _)| t).collect();
    targets.extend(
        [
            "/",
            "/public/page",
            "/admin",
            "/admin/panel?x=1",
            "/x/../admin/panel",
            "/x/..;/admin",
            "/admin/...",
            "/%2e%2e/admin",
            "/a/b/secret/x",
            "/a/b/secretx",
        ]
        .map(String::from),
    );
    let mut failures = Vec::new();
    let mut seen = std::collections::BTreeMap::new();
    for target in &targets {
        for (who, cookie) in [
            ("anonymous", ""),
            ("outsider", &*outsider),
            ("boss", &*boss),
        ] {
            let proxy = send(&e, target, "x.test", cookie).await.0;
            let auth = forward_auth(&e, target, "gateway", cookie).await;
            *seen.entry(proxy).or_insert(0) += 1;
            if proxy != auth {
                failures.push(format!(
                    "{target} as {who}: proxy {proxy}, forward-auth {auth}"
                ));
            }
        }
    }
    for host in ["x.test:", "x.test:abc", "x.test:65536", "bad host"] {
        let proxy = send(&e, "/admin", host, &boss).await.0;
        let auth = forward_auth(&e, "/admin", host, &boss).await;
        assert_eq!((proxy, auth), (400, 400), "host {host:?}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every kind of answer was compared.
    for status in [200, 400, 401, 403] {
        assert!(seen.contains_key(&status), "{status}: {seen:?}");
    }
    // A host the gateway does not serve is 400 even when the path would
    // pass: the sign-in link would point there.
    assert_eq!(forward_auth(&e, "/", "x.test", &boss).await, 400);
    // Without the original URL there is nothing to decide: 400.
    let req = format!(
        "GET /.portcullis/auth HTTP/1.1\r\nHost: gw.test\r\n{boss}Connection: close\r\n\r\n"
    );
    assert_eq!(status_of(&raw(e.gw.addr, req.as_bytes(), T).await), 400);
}

#[tokio::test]
async fn segments_an_upstream_reads_as_dot_segments_are_400() {
    let e = spelling_env().await;
    let boss = cookie_line(&e, "boss@example.com").await;
    for target in [
        "/x/..;/admin",
        "/x/..;x=1/admin",
        "/x/.;/admin",
        "/x/...;/admin",
        "/x/.../admin",
        "/x/..%20/admin",
        "/x/..%2e/admin",
        "/x/.%20/admin",
        "/x/%20../admin",
        "/x/%20/admin",
        "/x/.%3B/admin",
        "/x/..%3b/admin",
        "/admin/...",
        "/admin/.%20",
        "/...",
    ] {
        for cookie in ["", boss.as_str()] {
            let (status, seen) = send(&e, target, "x.test", cookie).await;
            assert_eq!((status, seen.is_none()), (400, true), "{target}");
        }
    }
}

#[tokio::test]
async fn a_public_route_never_serves_what_an_upstream_reads_as_protected() {
    let e = env(Opts {
        only_routes: Some(
            "[[route]]\npath = \"/\"\nupstream = \"{up}\"\n\n\
             [[route]]\npath = \"/static\"\nupstream = \"{up}\"\naccess = \"public\"\n",
        ),
        ..Opts::default()
    })
    .await;
    // Read literally, these are under `/` (protected); read leniently,
    // under `/static`: the stricter reading decides.
    for target in [
        "/static;x/a",
        "/static%3B/a",
        "/static./a",
        "/static%20/a",
        "/;x/static/a",
    ] {
        let (status, seen) = send(&e, target, "x.test", "").await;
        assert_eq!((status, seen.is_none()), (401, true), "{target}");
    }
    // Both readings under `/static`: public, forwarded as it came.
    for target in [
        "/static/a",
        "/static/a;jsessionid=1",
        "/static/a./b",
        "/static/a%20",
    ] {
        let (status, seen) = send(&e, target, "x.test", "").await;
        assert_eq!(
            (status, seen.map(|s| s.target)),
            (200, Some(target.to_string())),
            "{target}"
        );
    }
}

#[test]
fn a_route_path_that_is_not_its_own_matching_view_is_a_config_error() {
    for path in ["/admin;x", "/admin.", "/admin%20", "/a;b/c", "/a./b"] {
        let text = format!(
            "[session]\nsecret_env = \"S\"\n[[route]]\npath = \"{path}\"\nupstream = \"demo\"\n"
        );
        let err =
            portcullis::Config::from_toml_str(&text, "t.toml", &[("S", SECRET)]).expect_err(path);
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["route[0].path"], "{path}");
    }
}

// ===== Item 4: hosts =====

/// Hosts with an empty or bad port, or a name that is not one host.
const BAD_HOSTS: &[&str] = &[
    "app.test:",
    "app.test:abc",
    "app.test:65536",
    "app.test:0",
    "app.test:99999999",
    "app.test:+80",
    "app.test:8080:80",
    "APP.test:",
    "app.test.:",
    "app..test",
    "app.test..",
    ".app.test",
    "app.test%2e",
    "app.test,other.test",
    "app_test!",
    "[::1",
    "[::1]:",
    "[::1]x",
    "[::1]:65536",
    "1.2.3.256",
    "0x7f.0.0.1",
    "app.123",
];

/// A protected host route and a public host-less catch-all: a host that
/// escaped the host route would get 200.
async fn host_env(server: &str) -> Env {
    env(Opts {
        server,
        only_routes: Some(
            "[[route]]\nhost = \"app.test\"\nupstream = \"{up}\"\n\n\
             [[route]]\npath = \"/\"\nupstream = \"{up}\"\naccess = \"public\"\n",
        ),
        ..Opts::default()
    })
    .await
}

#[tokio::test]
async fn h1_host_with_a_bad_port_or_name_is_400() {
    let e = host_env("").await;
    for host in BAD_HOSTS {
        let (status, seen) = send(&e, "/p", host, "").await;
        assert_eq!((status, seen.is_none()), (400, true), "Host: {host}");
    }
    // The same in the request target's authority (absolute form).
    for host in ["app.test:", "app.test:abc", "app.test:65536"] {
        let (status, seen) = send(&e, &format!("http://{host}/p"), host, "").await;
        assert_eq!((status, seen.is_none()), (400, true), "absolute {host}");
    }
    // Valid spellings still reach the host route (401) or the catch-all.
    for host in [
        "app.test",
        "APP.test",
        "app.test.",
        "app.test:8080",
        "App.Test.:443",
    ] {
        let (status, seen) = send(&e, "/p", host, "").await;
        assert_eq!((status, seen.is_none()), (401, true), "Host: {host}");
    }
    let (status, _) = send(&e, "http://app.test:8080/p", "APP.test:8080", "").await;
    assert_eq!(status, 401);
    for host in [
        "other.test",
        "other.test:8080",
        "127.0.0.1:1",
        "[::1]:8080",
        "my_app",
    ] {
        let (status, seen) = send(&e, "/p", host, "").await;
        assert_eq!((status, seen.is_some()), (200, true), "Host: {host}");
    }
}

#[tokio::test]
async fn trusted_x_forwarded_host_with_a_bad_port_or_name_is_400() {
    let e = host_env("trusted_proxies = [\"127.0.0.0/8\"]").await;
    for host in BAD_HOSTS {
        let (status, seen) = send(
            &e,
            "/p",
            "other.test",
            &format!("X-Forwarded-Host: {host}\r\n"),
        )
        .await;
        assert_eq!(
            (status, seen.is_none()),
            (400, true),
            "X-Forwarded-Host: {host}"
        );
    }
    let (status, seen) = send(
        &e,
        "/p",
        "other.test",
        "X-Forwarded-Host: app.test:8443\r\n",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        seen.unwrap().one("x-forwarded-host").as_deref(),
        Some("app.test:8443")
    );
}

/// The `:status` of the answer to stream 1 over HTTP/2, read from the
/// first field of its HEADERS frame (static-table index or literal with
/// the `:status` name); `Err` says how it ended otherwise.
async fn h2_status(e: &Env, authority: &str) -> Result<u16, String> {
    let block = h2raw::block(&[
        (":method", "GET"),
        (":scheme", support::mode::scheme()),
        (":path", "/p"),
        (":authority", authority),
    ]);
    let headers = h2raw::frame(
        h2raw::HEADERS,
        h2raw::END_HEADERS | h2raw::END_STREAM,
        1,
        &block,
    );
    let mut s = h2raw::send(e.gw.addr, &[headers]).await;
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + T;
    loop {
        while buf.len() >= 9 {
            let len =
                (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
            if buf.len() < 9 + len {
                break;
            }
            let (kind, id) = (buf[3], u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]));
            let payload = buf[9..9 + len].to_vec();
            buf.drain(..9 + len);
            if kind == h2raw::HEADERS && id == 1 {
                let status = match payload.as_slice() {
                    // Indexed: static entries 8 to 14 are the :status values.
                    [b @ 0x88..=0x8e, ..] => {
                        Some([200, 204, 206, 304, 400, 404, 500][usize::from(b - 0x88)])
                    }
                    // Literal with the name of entry 8 (`:status`): 3 digits,
                    // plain or Huffman-coded (RFC 7541 §5.2).
                    [0x48 | 0x08 | 0x18, 3, d @ ..] => d
                        .get(..3)
                        .and_then(|d| std::str::from_utf8(d).ok())
                        .and_then(|d| d.parse().ok()),
                    [0x48 | 0x08 | 0x18, len @ 0x81..=0x82, d @ ..] => {
                        huffman_digits(d.get(..usize::from(len - 0x80)).unwrap_or(&[]))
                    }
                    _ => None,
                };
                return status.ok_or_else(|| format!("HEADERS {payload:02x?}"));
            }
            if kind == h2raw::RST_STREAM && id == 1 {
                return Err(format!("RST_STREAM {payload:?}"));
            }
            if kind == h2raw::GOAWAY {
                return Err(format!("GOAWAY {payload:?}"));
            }
        }
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            other => return Err(format!("ended: {other:?}")),
        }
    }
}

/// Three decimal digits in HPACK's Huffman code: `0`-`2` are the 5-bit
/// codes `00000`-`00010`, `3`-`9` the 6-bit codes `011001`-`011111`.
fn huffman_digits(bytes: &[u8]) -> Option<u16> {
    let bits: Vec<u8> = bytes
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
        .collect();
    let read = |at: usize, n: usize| -> Option<u8> {
        bits.get(at..at + n)
            .map(|b| b.iter().fold(0, |v, bit| (v << 1) | bit))
    };
    let (mut at, mut value) = (0, 0u16);
    for _ in 0..3 {
        let digit = match read(at, 5)? {
            v @ 0..=2 => {
                at += 5;
                v
            }
            _ => match read(at, 6)? {
                v @ 0b011001..=0b011111 => {
                    at += 6;
                    v - 0b011001 + 3
                }
                _ => return None,
            },
        };
        value = value * 10 + u16::from(digit);
    }
    Some(value)
}

#[tokio::test]
async fn h2_authority_with_a_bad_port_or_name_is_400() {
    let e = host_env("").await;
    for host in BAD_HOSTS {
        let before = e.up.count();
        // The h2 layer already refuses three as malformed (PROTOCOL_ERROR
        // on the stream); every other one reaches the gateway: 400.
        let want = match *host {
            "app.test:8080:80" | "app.test%2e" | "[::1" => Err("RST_STREAM [0, 0, 0, 1]".into()),
            _ => Ok(400),
        };
        assert_eq!(h2_status(&e, host).await, want, ":authority {host}");
        assert_eq!(e.up.count(), before, ":authority {host}");
    }
    for host in ["app.test", "APP.test", "app.test.", "app.test:8080"] {
        assert_eq!(h2_status(&e, host).await, Ok(401), ":authority {host}");
    }
    assert_eq!(h2_status(&e, "other.test:8080").await, Ok(200));
}

// ===== Item 7: rewrite and configured identity headers =====

/// Header names that must never reach the upstream, each in several
/// spellings: the built-in rewrite headers and two configured names.
const NEVER_UPSTREAM: &[&str] = &[
    "X-Original-URL",
    "x-original-url",
    "X_Original_URL",
    "x-ORIGINAL_url",
    "X-Rewrite-URL",
    "x_rewrite_url",
    "X-WebAuth-User",
    "x_webauth_user",
    "X-WEBAUTH-USER",
    "X-Remote-User",
    "x_remote_user",
];

fn folded(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

#[tokio::test]
async fn rewrite_and_configured_identity_headers_never_reach_the_upstream() {
    let e = env(Opts {
        server: "strip_headers = [\"X-Webauth-User\", \"x_remote_user\"]",
        ..Opts::default()
    })
    .await;
    let cookie = cookie_line(&e, "someone@example.com").await;
    let forbidden = [
        "x-original-url",
        "x-rewrite-url",
        "x-webauth-user",
        "x-remote-user",
    ];
    let extra: String = NEVER_UPSTREAM
        .iter()
        .map(|n| format!("{n}: /admin\r\n"))
        .collect::<String>()
        + "X-Kept: yes\r\n";
    let mut checked = 0;
    for (target, who) in [("/public/x", ""), ("/app/x", cookie.as_str())] {
        for method in ["GET", "POST"] {
            // GET goes over the gateway's own HTTP/1.1 client, POST with a
            // body over hyper's: both must drop the same names.
            let body = if method == "POST" {
                "Content-Length: 2\r\n\r\nhi"
            } else {
                "\r\n"
            };
            let req = format!(
                "{method} {target} HTTP/1.1\r\nHost: x.test\r\n{who}{extra}Connection: close\r\n{body}"
            );
            let before = e.up.count();
            let r = raw(e.gw.addr, req.as_bytes(), T).await;
            assert_eq!(status_of(&r), 200, "{method} {target}: {}", body_of(&r));
            assert_eq!(e.up.count(), before + 1);
            let seen = e.up.last().unwrap();
            assert_eq!(seen.target, target);
            for (name, _) in &seen.headers {
                assert!(
                    !forbidden.contains(&folded(name).as_str()),
                    "{method} {target}: {name}"
                );
            }
            assert_eq!(seen.one("x-kept").as_deref(), Some("yes"));
            checked += 1;
        }
    }
    assert_eq!(checked, 4);
}

#[test]
fn a_bad_strip_headers_name_is_a_config_error_naming_the_key() {
    for (list, key) in [
        ("[\"bad header\"]", "server.strip_headers[0]"),
        ("[\"X-Ok\", \"x:y\"]", "server.strip_headers[1]"),
        ("[\"\"]", "server.strip_headers[0]"),
        ("[\"Host\"]", "server.strip_headers[0]"),
        ("[\"content_length\"]", "server.strip_headers[0]"),
    ] {
        let text = format!(
            "[server]\nstrip_headers = {list}\n[session]\nsecret_env = \"S\"\n[[route]]\npath = \"/\"\nupstream = \"demo\"\n"
        );
        let err =
            portcullis::Config::from_toml_str(&text, "t.toml", &[("S", SECRET)]).expect_err(list);
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, [key], "{list}");
    }
    let text =
        "[server]\nstrip_headers = [\"X-Webauth-User\", \"x_webauth_user\", \"X_Remote_User\"]\n\
                [session]\nsecret_env = \"S\"\n[[route]]\npath = \"/\"\nupstream = \"demo\"\n";
    let config = portcullis::Config::from_toml_str(text, "t.toml", &[("S", SECRET)]).unwrap();
    assert_eq!(
        config.server.strip_headers,
        ["x-webauth-user", "x-remote-user"]
    );
}
