//! The signed identity for upstreams (`[assertion]`) through a real
//! gateway: the token the upstream gets (and forward-auth answers with)
//! verified by two independent implementations run as subprocesses,
//! PyJWT (Debian's `python3-jwt` with `python3-cryptography`) and the npm
//! package `jose` (in `target/assertion-tools`), each fetching the keys
//! from `/.portcullis/jwks.json` and checking the signature, `iss`, `aud`,
//! `exp` and `nbf`; the claims read back exactly. Also: a key rotation
//! across reloads, a client's assertion header never reaching the
//! upstream, no token without an identity, one signature per session and
//! host, the JWKS caching headers, config errors naming
//! `assertion.signing_key_file`, and `portcullis keys generate|jwks`.
//!
//! `.ci/run` installs both verifiers. A missing one skips its part with a
//! notice, except under CI (`CI` set), where it fails (as `tests/deploy.rs`
//! treats its tools).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use portcullis::assertion::{keys, Algorithm};
use serde_json::Value;
use support::client::{raw, status_of};
use support::flow::{config_text, cookie_line, env, Env, Opts};

const T: Duration = Duration::from_secs(5);
const HEADER: &str = "x-portcullis-jwt-assertion";

const ROUTES: &str = "[[route]]\npath = \"/\"\nupstream = \"{up}\"\naccess = \"public\"\n\n\
     [[route]]\npath = \"/app\"\nupstream = \"{up}\"\n\n\
     [groups]\nops = [\"alice@example.com\"]\ndev = [\"@example.com\"]\n";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A new key file in `dir`.
fn key_file(dir: &Path, name: &str, alg: Algorithm) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, keys::generate(alg).unwrap()).unwrap();
    path
}

fn kid_of(path: &Path) -> String {
    keys::parse_pem(&std::fs::read_to_string(path).unwrap())
        .unwrap()
        .kid()
        .to_string()
}

/// The `[assertion]` table for `files` (the first signs).
fn assertion_table(files: &[&Path], extra: &str) -> String {
    let list: Vec<String> = files
        .iter()
        .map(|f| format!("{:?}", f.display().to_string()))
        .collect();
    format!(
        "\n[assertion]\nsigning_key_file = [{}]\n{extra}\n",
        list.join(", ")
    )
}

async fn gateway(table: &str) -> Env {
    let routes = format!("{ROUTES}{table}");
    env(Opts {
        server: "trusted_proxies = [\"127.0.0.1/32\"]",
        only_routes: Some(Box::leak(routes.into_boxed_str())),
        ..Opts::default()
    })
    .await
}

/// `GET target` through the proxy with `extra` header lines.
async fn proxy(e: &Env, target: &str, extra: &str) -> String {
    let port = e.gw.addr.port();
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n{extra}Connection: close\r\n\r\n"
    );
    raw(e.gw.addr, req.as_bytes(), T).await
}

/// The assertion the upstream got for `GET target` (asserting exactly one).
async fn token_through_proxy(e: &Env, target: &str, cookie: &str) -> String {
    let a = proxy(e, target, cookie).await;
    assert_eq!(status_of(&a), 200, "{a}");
    let seen = e.up.last().unwrap();
    assert_eq!(seen.target, target);
    seen.one(HEADER).expect("the upstream got an assertion")
}

/// One header of a raw answer.
fn header(answer: &str, name: &str) -> Option<String> {
    let head = answer.split("\r\n\r\n").next().unwrap_or("");
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// `/.portcullis/auth` (nginx's question) about `target`.
async fn auth(e: &Env, path: &str, target: &str, cookie: &str) -> String {
    let port = e.gw.addr.port();
    let req = if path == "/.portcullis/auth" {
        format!(
            "GET /.portcullis/auth HTTP/1.1\r\nHost: auth.internal\r\n\
             X-Original-URL: http://127.0.0.1:{port}{target}\r\n{cookie}Connection: close\r\n\r\n"
        )
    } else {
        format!(
            "GET /.portcullis/forward-auth HTTP/1.1\r\nHost: auth.internal\r\nAccept: application/json\r\n\
             X-Forwarded-Method: GET\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: 127.0.0.1:{port}\r\n\
             X-Forwarded-Uri: {target}\r\n{cookie}Connection: close\r\n\r\n"
        )
    };
    raw(e.gw.addr, req.as_bytes(), T).await
}

/// The decoded (unverified) payload of a token.
fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&portcullis::crypto::unb64(part).unwrap()).unwrap()
}

// ---- the independent verifiers ----

fn missing(what: &str) -> Option<Vec<Value>> {
    let reason = format!("{what} is not installed (.ci/run installs it)");
    assert!(std::env::var_os("CI").is_none(), "{reason}");
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
    None
}

/// A Python 3 that has PyJWT and cryptography.
fn python() -> Option<PathBuf> {
    ["/usr/bin/python3", "python3"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| {
            Command::new(p)
                .args(["-c", "import jwt, cryptography"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

fn jose() -> Option<PathBuf> {
    let p = repo().join("target/assertion-tools/node_modules/jose/dist/webapi/index.js");
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    (node && p.is_file()).then_some(p)
}

/// Which verifier.
#[derive(Debug, Clone, Copy)]
enum Verifier {
    PyJwt,
    Jose,
}

const VERIFIERS: [Verifier; 2] = [Verifier::PyJwt, Verifier::Jose];

/// What `v` says of `tokens` with `aud` and the gateway's JWKS and
/// issuer: `Ok(one JSON line per token)` or `Err(its message)`; `None`
/// when it is not installed (outside CI).
async fn verify(
    v: Verifier,
    e: &Env,
    aud: &str,
    tokens: &[&str],
) -> Option<Result<Vec<Value>, String>> {
    let mut cmd = match v {
        Verifier::PyJwt => {
            let Some(py) = python() else {
                return missing("python3-jwt (PyJWT) with python3-cryptography").map(Ok);
            };
            let mut c = Command::new(py);
            c.arg(repo().join("tests/verifiers/pyjwt_verify.py"));
            c
        }
        Verifier::Jose => {
            let Some(lib) = jose() else {
                return missing("node with the npm package jose in target/assertion-tools").map(Ok);
            };
            let mut c = Command::new("node");
            c.env("JOSE", lib)
                .arg(repo().join("tests/verifiers/jose_verify.mjs"));
            c
        }
    };
    cmd.arg(e.gw.url("/.portcullis/jwks.json"))
        .arg(&e.origin)
        .arg(aud)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let input = tokens.join("\n");
    // The verifier fetches the JWKS from the gateway in this process: wait
    // for it off the runtime's thread.
    let out = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    if !out.status.success() {
        return Some(Err(String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    Some(Ok(String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()))
}

/// Both verifiers accept every token; their readings (one per token, the
/// same from both).
async fn accepted(e: &Env, aud: &str, tokens: &[&str]) -> Vec<Value> {
    let mut readings = Vec::new();
    for v in VERIFIERS {
        match verify(v, e, aud, tokens).await {
            None => {}
            Some(Err(m)) => panic!("{v:?} rejected a token: {m}"),
            Some(Ok(r)) => {
                assert_eq!(r.len(), tokens.len(), "{v:?}: {r:?}");
                if readings.is_empty() {
                    readings = r;
                } else {
                    assert_eq!(r, readings, "{v:?} read the tokens otherwise");
                }
            }
        }
    }
    readings
}

/// Both verifiers reject `token`; their messages.
async fn rejected(e: &Env, aud: &str, token: &str) -> Vec<String> {
    let mut out = Vec::new();
    for v in VERIFIERS {
        match verify(v, e, aud, &[token]).await {
            None => {}
            Some(Ok(r)) => panic!("{v:?} accepted {r:?}"),
            Some(Err(m)) => out.push(m),
        }
    }
    out
}

// ---- the tests ----

#[tokio::test]
async fn the_upstream_gets_a_token_both_verifiers_accept() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "es256.pem", Algorithm::Es256);
    let e = gateway(&assertion_table(&[&key], "")).await;
    let alice = cookie_line(&e, "alice@example.com").await;
    let bob = cookie_line(&e, "bob@example.com").await;
    let t_alice = token_through_proxy(&e, "/app/a", &alice).await;
    let t_bob = token_through_proxy(&e, "/app/b", &bob).await;

    let read = accepted(&e, "127.0.0.1", &[&t_alice, &t_bob]).await;
    let decoded = [payload(&t_alice), payload(&t_bob)];
    for (i, (email, groups)) in [
        ("alice@example.com", vec!["dev", "ops"]),
        ("bob@example.com", vec!["dev"]),
    ]
    .into_iter()
    .enumerate()
    {
        let c = &decoded[i];
        if let Some(r) = read.get(i) {
            assert_eq!(&r["claims"], c, "the verifiers read what was signed");
            assert_eq!(r["alg"], "ES256");
            assert_eq!(r["kid"], kid_of(&key));
        }
        assert_eq!(c["iss"], e.origin);
        assert_eq!(c["aud"], "127.0.0.1");
        assert_eq!(c["sub"], email);
        assert_eq!(c["email"], email);
        assert_eq!(c["groups"], serde_json::json!(groups));
        assert_eq!(c["amr"], serde_json::json!(["email"]));
        let iat = c["iat"].as_u64().unwrap();
        assert_eq!(c["nbf"].as_u64(), Some(iat));
        assert_eq!(c["exp"].as_u64(), Some(iat + 300));
        assert_eq!(c["jti"].as_str().unwrap().len(), 22, "128 bits");
        assert_eq!(c["sid"].as_str().unwrap().len(), 43);
        let keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys.len(),
            11,
            "iss aud sub email groups iat nbf exp jti sid amr: {keys:?}"
        );
    }
    assert_ne!(decoded[0]["sid"], decoded[1]["sid"]);
    // The session id is nowhere in the token: not the cookie's id, not
    // its tag, in any encoding the cookie uses.
    let cookie = alice
        .trim_end()
        .trim_start_matches("Cookie: ")
        .split("; ")
        .find_map(|c| {
            c.strip_prefix("portcullis=")
                .or_else(|| c.strip_prefix("__Host-portcullis="))
        })
        .unwrap();
    let parts: Vec<&str> = cookie.split('.').skip(1).collect();
    assert_eq!(parts.len(), 2, "{cookie}");
    for part in parts {
        assert!(
            !t_alice.contains(part) && decoded[0]["sid"] != part,
            "{part}"
        );
    }
    // A token for one host does not pass for another.
    let wrong = rejected(&e, "app.example.com", &t_alice).await;
    assert_eq!(wrong.len(), installed());
    for m in &wrong {
        assert!(m.to_lowercase().contains("aud"), "{m}");
    }
    // A token changed on the way (one claim, or the signature) does not.
    let (head, rest) = t_alice.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let mut claims = decoded[0].clone();
    claims["email"] = "boss@example.com".into();
    let forged = format!(
        "{head}.{}.{sig}",
        portcullis::crypto::b64(claims.to_string().as_bytes())
    );
    let flipped = format!(
        "{}{}",
        &t_alice[..t_alice.len() - 2],
        if t_alice.ends_with("AA") { "BA" } else { "AA" }
    );
    for bad in [forged, flipped] {
        let said = rejected(&e, "127.0.0.1", &bad).await;
        assert_eq!(said.len(), installed(), "{said:?}");
        for m in said {
            assert!(m.to_lowercase().contains("signature"), "{m}");
        }
    }
}

#[tokio::test]
async fn eddsa_tokens_verify_too() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "ed.pem", Algorithm::EdDsa);
    let e = gateway(&assertion_table(
        &[&key],
        "algorithm = \"EdDSA\"\nissuer = \"https://sso.example.com\"",
    ))
    .await;
    let alice = cookie_line(&e, "alice@example.com").await;
    let t = token_through_proxy(&e, "/app/x", &alice).await;
    let c = payload(&t);
    assert_eq!(c["iss"], "https://sso.example.com");
    // The verifiers are given the gateway's origin as the issuer: reject.
    assert_eq!(rejected(&e, "127.0.0.1", &t).await.len(), installed());
    // With the configured issuer, both accept.
    let mut e = e;
    e.origin = "https://sso.example.com".into();
    let read = accepted(&e, "127.0.0.1", &[&t]).await;
    for r in read {
        assert_eq!(r["alg"], "EdDSA");
        assert_eq!(r["kid"], kid_of(&key));
    }
}

/// How many verifiers are installed (each must say no to a bad token).
fn installed() -> usize {
    usize::from(python().is_some()) + usize::from(jose().is_some())
}

#[tokio::test]
async fn forward_auth_answers_with_the_same_token() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "k.pem", Algorithm::Es256);
    let e = gateway(&assertion_table(&[&key], "")).await;
    let alice = cookie_line(&e, "alice@example.com").await;
    let through = token_through_proxy(&e, "/app/a", &alice).await;
    for path in ["/.portcullis/auth", "/.portcullis/forward-auth"] {
        let a = auth(&e, path, "/app/other", &alice).await;
        assert_eq!(status_of(&a), 200, "{a}");
        // One session, one host: the token the upstream got.
        assert_eq!(
            header(&a, HEADER).as_deref(),
            Some(through.as_str()),
            "{path}"
        );
        // Public: the header is there, empty (a proxy copying it always
        // overwrites the client's); signed out: 401 without it.
        let a = auth(&e, path, "/pub", &alice).await;
        assert_eq!(status_of(&a), 200, "{a}");
        assert_eq!(header(&a, HEADER).as_deref(), Some(""), "{path}");
        let a = auth(&e, path, "/app/a", "").await;
        assert_eq!(status_of(&a), 401, "{a}");
        assert_eq!(header(&a, HEADER), None, "{path}");
    }
    let a = auth(&e, "/.portcullis/auth", "/app/a", &alice).await;
    let token = header(&a, HEADER).unwrap();
    let read = accepted(&e, "127.0.0.1", &[&token]).await;
    for r in read {
        assert_eq!(r["claims"]["email"], "alice@example.com");
    }
    // Without [assertion]: no header on forward-auth either.
    let plain = gateway("").await;
    let alice = cookie_line(&plain, "alice@example.com").await;
    let a = auth(&plain, "/.portcullis/auth", "/app/a", &alice).await;
    assert_eq!(status_of(&a), 200, "{a}");
    assert_eq!(header(&a, HEADER), None);
}

#[tokio::test]
async fn a_client_sent_assertion_never_reaches_the_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "k.pem", Algorithm::Es256);
    let e = gateway(&assertion_table(&[&key], "")).await;
    let alice = cookie_line(&e, "alice@example.com").await;
    let spoof = "X-Portcullis-Jwt-Assertion: forged.by.client\r\n\
                 x_portcullis_jwt_assertion: forged.by.client\r\n\
                 X-PORTCULLIS-JWT-ASSERTION: forged.by.client\r\n";
    // Signed out on a public route: nothing at all.
    let a = proxy(&e, "/pub", spoof).await;
    assert_eq!(status_of(&a), 200, "{a}");
    let seen = e.up.last().unwrap();
    assert_eq!(seen.target, "/pub");
    assert!(
        !seen
            .headers
            .iter()
            .any(|(n, v)| v.contains("forged") || n.to_lowercase().contains("portcullis")),
        "{seen:?}"
    );
    // Signed in: exactly the gateway's own.
    let a = proxy(&e, "/app/s", &format!("{alice}{spoof}")).await;
    assert_eq!(status_of(&a), 200, "{a}");
    let seen = e.up.last().unwrap();
    assert_eq!(seen.target, "/app/s");
    let got = seen.one(HEADER).unwrap();
    assert_ne!(got, "forged.by.client");
    assert!(
        !seen.headers.iter().any(|(_, v)| v.contains("forged")),
        "{seen:?}"
    );
    // Without [assertion] the client's is dropped all the same.
    let plain = gateway("").await;
    let a = proxy(&plain, "/pub", spoof).await;
    assert_eq!(status_of(&a), 200, "{a}");
    let seen = plain.up.last().unwrap();
    assert!(
        !seen.headers.iter().any(|(_, v)| v.contains("forged")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn no_identity_no_assertion() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "k.pem", Algorithm::Es256);
    let e = gateway(&assertion_table(&[&key], "")).await;
    let alice = cookie_line(&e, "alice@example.com").await;
    // A public route, signed in or not: no identity, so no token.
    for cookie in ["", alice.as_str()] {
        let a = proxy(&e, "/pub", cookie).await;
        assert_eq!(status_of(&a), 200, "{a}");
        let seen = e.up.last().unwrap();
        assert_eq!(seen.target, "/pub");
        assert_eq!(seen.one(HEADER), None);
        assert_eq!(seen.one("x-forwarded-email"), None);
    }
    // Signed out on a protected route: 401, nothing upstream.
    let before = e.up.count();
    let a = proxy(&e, "/app/x", "").await;
    assert_eq!(status_of(&a), 401, "{a}");
    assert_eq!(e.up.count(), before);
    let signed = e.gw.app.config().assertion.as_ref().unwrap().signed();
    assert_eq!(signed, 0, "nothing was signed");
}

#[tokio::test]
async fn one_signature_per_session_and_host() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "k.pem", Algorithm::Es256);
    let e = gateway(&assertion_table(&[&key], "")).await;
    let alice = cookie_line(&e, "alice@example.com").await;
    let first = token_through_proxy(&e, "/app/1", &alice).await;
    // The same token (its jti is random: only a cache gives it again).
    for i in 2..=5 {
        assert_eq!(
            token_through_proxy(&e, &format!("/app/{i}"), &alice).await,
            first
        );
    }
    let live = e.gw.app.config();
    let a = live.assertion.as_ref().unwrap();
    assert_eq!(a.signed(), 1);
    // Another host name of the same gateway: its own token.
    let port = e.gw.addr.port();
    let req = format!(
        "GET /app/6 HTTP/1.1\r\nHost: localhost:{port}\r\nAccept: application/json\r\n{alice}Connection: close\r\n\r\n"
    );
    let answer = raw(e.gw.addr, req.as_bytes(), T).await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    let other = e.up.last().unwrap().one(HEADER).unwrap();
    assert_ne!(other, first);
    assert_eq!(payload(&other)["aud"], "localhost");
    assert_eq!(payload(&other)["sid"], payload(&first)["sid"]);
    assert_eq!(a.signed(), 2);
    // Another session of the same address: its own token and sid.
    let mut b = support::browser::Browser::new();
    let done = support::flow::sign_in(&e, &mut b, "alice@example.com", "/", 2).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let again = format!("Cookie: {}\r\n", support::flow::cookie_header(&b));
    let second = token_through_proxy(&e, "/app/7", &again).await;
    assert_ne!(payload(&second)["sid"], payload(&first)["sid"]);
    assert_eq!(a.signed(), 3);
}

#[tokio::test]
async fn the_jwks_is_served_with_caching_headers() {
    let dir = tempfile::tempdir().unwrap();
    let k1 = key_file(dir.path(), "a.pem", Algorithm::Es256);
    let k2 = key_file(dir.path(), "b.pem", Algorithm::EdDsa);
    let e = gateway(&assertion_table(&[&k1, &k2], "")).await;
    let get = |extra: &'static str| {
        let port = e.gw.addr.port();
        let addr = e.gw.addr;
        async move {
            let req = format!(
                "GET /.portcullis/jwks.json HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Connection: close\r\n\r\n"
            );
            raw(addr, req.as_bytes(), T).await
        }
    };
    let a = get("").await;
    assert_eq!(status_of(&a), 200, "{a}");
    assert_eq!(
        header(&a, "content-type").as_deref(),
        Some("application/jwk-set+json")
    );
    assert_eq!(
        header(&a, "cache-control").as_deref(),
        Some("public, max-age=300")
    );
    assert_eq!(
        header(&a, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    let etag = header(&a, "etag").unwrap();
    let body: Value = serde_json::from_str(support::client::body_of(&a)).unwrap();
    let kids: Vec<&str> = body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [kid_of(&k1), kid_of(&k2)]);
    assert_eq!(body["keys"][0]["kty"], "EC");
    assert_eq!(body["keys"][0]["crv"], "P-256");
    assert_eq!(body["keys"][1]["kty"], "OKP");
    assert_eq!(body["keys"][1]["crv"], "Ed25519");
    for k in body["keys"].as_array().unwrap() {
        assert!(k.get("d").is_none(), "no private part: {k}");
    }
    // Unchanged: 304 with no body.
    let line: &'static str = Box::leak(format!("If-None-Match: {etag}\r\n").into_boxed_str());
    let a = get(line).await;
    assert_eq!(status_of(&a), 304, "{a}");
    assert_eq!(support::client::body_of(&a), "");
    // Without [assertion]: 404.
    let plain = gateway("").await;
    let a = raw(
        plain.gw.addr,
        format!("GET /.portcullis/jwks.json HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", plain.gw.addr.port()).as_bytes(),
        T,
    )
    .await;
    assert_eq!(status_of(&a), 404, "{a}");
}

#[tokio::test]
async fn a_key_rotation_across_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let old = key_file(dir.path(), "old.pem", Algorithm::Es256);
    let new = key_file(dir.path(), "new.pem", Algorithm::Es256);
    let e = gateway(&assertion_table(&[&old, &new], "")).await;
    let alice = cookie_line(&e, "alice@example.com").await;
    let reload = |files: &[&Path]| {
        let routes = format!("{ROUTES}{}", assertion_table(files, ""));
        let o = Opts {
            server: "trusted_proxies = [\"127.0.0.1/32\"]",
            only_routes: Some(&routes),
            ..Opts::default()
        };
        let text = config_text(&o, &e.up.url(), e.smtp.port(), &e.prefix);
        let notes =
            e.gw.app
                .reload(support::gateway::config(&text, e.gw.addr.port()));
        assert_eq!(notes, Vec::<String>::new());
    };
    // 1. The new key announced: the old one signs.
    let t_old = token_through_proxy(&e, "/app/1", &alice).await;
    assert_eq!(header_kid(&t_old), kid_of(&old));
    // 2. The new key first (a reload reads the files again): it signs,
    // and tokens of both verify against the published keys.
    reload(&[&new, &old]);
    let t_new = token_through_proxy(&e, "/app/2", &alice).await;
    assert_eq!(header_kid(&t_new), kid_of(&new));
    let read = accepted(&e, "127.0.0.1", &[&t_old, &t_new]).await;
    for (r, kid) in read.iter().zip([kid_of(&old), kid_of(&new)]) {
        assert_eq!(r["kid"], kid);
    }
    // 3. The old key dropped: its tokens no longer verify.
    reload(&[&new]);
    let said = rejected(&e, "127.0.0.1", &t_old).await;
    assert_eq!(said.len(), installed());
    for m in said {
        assert!(
            m.contains("no key") || m.contains("ERR_JWKS_NO_MATCHING_KEY"),
            "{m}"
        );
    }
    accepted(&e, "127.0.0.1", &[&t_new]).await;
    // 4. The file itself replaced under the same name: read on reload.
    std::fs::write(&new, keys::generate(Algorithm::Es256).unwrap()).unwrap();
    let replaced = kid_of(&new);
    reload(&[&new]);
    let t = token_through_proxy(&e, "/app/3", &alice).await;
    assert_eq!(header_kid(&t), replaced);
}

fn header_kid(token: &str) -> String {
    let part = token.split('.').next().unwrap();
    let h: Value = serde_json::from_slice(&portcullis::crypto::unb64(part).unwrap()).unwrap();
    h["kid"].as_str().unwrap().to_string()
}

// ---- configuration errors and the CLI ----

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The configuration error for `[assertion]` with `table`.
fn config_error(table: &str) -> portcullis::config::ConfigError {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1\"\n\
         [session]\nsecret_env = \"S\"\n{table}\n"
    );
    portcullis::Config::from_toml_str(&text, "t.toml", &[("S", support::gateway::SECRET)])
        .unwrap_err()
}

#[test]
fn bad_key_files_are_config_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |n: &str| d.join(n).display().to_string();
    std::fs::write(
        d.join("rsa.pem"),
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ]),
    )
    .unwrap();
    std::fs::write(
        d.join("rsa1.pem"),
        openssl(&["genrsa", "-traditional", "2048"]),
    )
    .unwrap();
    std::fs::write(
        d.join("sec1.pem"),
        openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout"]),
    )
    .unwrap();
    std::fs::write(
        d.join("p384.pem"),
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
        ]),
    )
    .unwrap();
    std::fs::write(
        d.join("cert.pem"),
        "-----BEGIN CERTIFICATE-----\nMAo=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(d.join("text.pem"), "not a key\n").unwrap();
    // openssl's own P-256 and Ed25519 PKCS#8 keys are read.
    std::fs::write(
        d.join("ok-ec.pem"),
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ]),
    )
    .unwrap();
    std::fs::write(
        d.join("ok-ed.pem"),
        openssl(&["genpkey", "-algorithm", "ed25519"]),
    )
    .unwrap();
    for (file, message) in [
        ("missing.pem", "cannot read it"),
        (
            "rsa.pem",
            "an RSA key; only EC P-256 (ES256) and Ed25519 (EdDSA) keys sign assertions",
        ),
        ("rsa1.pem", "an RSA key"),
        (
            "sec1.pem",
            "a SEC1 EC key, not PKCS#8: convert it with `openssl pkcs8 -topk8 -nocrypt -in KEY`",
        ),
        ("p384.pem", "an EC key on another curve; ES256 needs P-256"),
        ("cert.pem", "holds a \"CERTIFICATE\", not a private key"),
        ("text.pem", "not a PEM file"),
    ] {
        let e = config_error(&format!("[assertion]\nsigning_key_file = {:?}", p(file)));
        assert_eq!(e.problems.len(), 1, "{e}");
        assert_eq!(e.problems[0].key, "assertion.signing_key_file", "{e}");
        let want = format!("{:?}: {message}", p(file));
        assert!(e.problems[0].message.starts_with(&want), "{file}: {e}");
    }
    // In a list, each bad file is named; the good ones are not.
    let e = config_error(&format!(
        "[assertion]\nsigning_key_file = [{:?}, {:?}, {:?}]",
        p("ok-ec.pem"),
        p("rsa.pem"),
        p("missing.pem")
    ));
    assert_eq!(e.problems.len(), 2, "{e}");
    assert!(e
        .problems
        .iter()
        .all(|x| x.key == "assertion.signing_key_file"));
    // The first key must match the algorithm; no file at all; a bad name.
    let e = config_error(&format!(
        "[assertion]\nsigning_key_file = {:?}\nalgorithm = \"EdDSA\"",
        p("ok-ec.pem")
    ));
    assert_eq!(e.problems[0].key, "assertion.signing_key_file");
    assert!(
        e.problems[0]
            .message
            .ends_with("is a ES256 key, but assertion.algorithm is EdDSA: the first key signs"),
        "{e}"
    );
    let e = config_error("[assertion]\n");
    assert_eq!(e.problems[0].key, "assertion.signing_key_file");
    assert!(e.problems[0].message.starts_with("is missing"), "{e}");
    let e = config_error(&format!(
        "[assertion]\nsigning_key_file = {:?}\nalgorithm = \"RS256\"",
        p("ok-ec.pem")
    ));
    assert_eq!(e.problems[0].key, "assertion.algorithm", "{e}");
    // Good ones, and `enabled = false` reads nothing.
    let text = |table: &str| {
        format!("[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://sso.example.com\"\n[session]\nsecret_env = \"S\"\n{table}\n")
    };
    let c = portcullis::Config::from_toml_str(
        &text(&format!(
            "[assertion]\nsigning_key_file = [{:?}, {:?}]",
            p("ok-ec.pem"),
            p("ok-ed.pem")
        )),
        "t.toml",
        &[("S", support::gateway::SECRET)],
    )
    .unwrap();
    let s = c.assertion.unwrap();
    assert_eq!(s.issuer, "https://sso.example.com");
    assert_eq!(s.keys.len(), 2);
    assert_eq!(s.keys[1].algorithm(), Algorithm::EdDsa);
    let c = portcullis::Config::from_toml_str(
        &text("[assertion]\nenabled = false\nsigning_key_file = \"/nonexistent\""),
        "t.toml",
        &[("S", support::gateway::SECRET)],
    )
    .unwrap();
    assert!(c.assertion.is_none());
}

#[test]
fn keys_generate_and_jwks_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bin = support::gateway::binary();
    let mut made = Vec::new();
    for (alg, name) in [("es256", "a.pem"), ("eddsa", "b.pem")] {
        let out = Command::new(bin)
            .args(["keys", "generate", "--algorithm", alg, "--out"])
            .arg(d.join(name))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert_eq!(out.stdout, b"");
        let kid = kid_of(&d.join(name));
        let said = String::from_utf8(out.stderr).unwrap();
        let alg_name = if alg == "es256" { "ES256" } else { "EdDSA" };
        assert_eq!(
            said,
            format!(
                "{}: a new {alg_name} key, kid {kid}\n",
                d.join(name).display()
            )
        );
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(d.join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        made.push(kid);
    }
    // Never over an existing file.
    let before = std::fs::read(d.join("a.pem")).unwrap();
    let out = Command::new(bin)
        .args(["keys", "generate", "--out"])
        .arg(d.join("a.pem"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot create it"),
        "{out:?}"
    );
    assert_eq!(std::fs::read(d.join("a.pem")).unwrap(), before);
    // To stdout without --out: a key that reads back.
    let out = Command::new(bin)
        .args(["keys", "generate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let k = keys::parse_pem(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(k.algorithm(), Algorithm::Es256);

    // `keys jwks`: the configured keys in order, as the gateway serves them.
    let config = d.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1\"\n\
             [assertion]\nalgorithm = \"EdDSA\"\nsigning_key_file = [{:?}, {:?}]\n",
            d.join("b.pem").display().to_string(),
            d.join("a.pem").display().to_string()
        ),
    )
    .unwrap();
    let out = Command::new(bin)
        .arg("--config")
        .arg(&config)
        .args(["keys", "jwks"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let jwks: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [made[1].as_str(), made[0].as_str()]);
    // No [assertion]: exit 1, saying so; a bad key: the config error.
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1\"\n",
    )
    .unwrap();
    let out = Command::new(bin)
        .arg("--config")
        .arg(&config)
        .args(["keys", "jwks"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "portcullis keys: {}: no [assertion] (or enabled = false)\n",
            config.display()
        )
    );
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1\"\n[assertion]\nsigning_key_file = \"/nonexistent/k.pem\"\n",
    )
    .unwrap();
    for args in [&["keys", "jwks"][..], &["check"][..]] {
        let out = Command::new(bin)
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.contains(&format!(
                "{}: assertion.signing_key_file: \"/nonexistent/k.pem\": cannot read it",
                config.display()
            )),
            "{args:?}: {err}"
        );
    }
}

/// The lines of `gw`'s log containing `needle`, once there are `count`.
fn wait_for_lines(gw: &support::gateway::GatewayProcess, needle: &str, count: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = gw.log_text();
        if text.lines().filter(|l| l.contains(needle)).count() >= count {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {count} lines with {needle:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The `kid`s `/.portcullis/jwks.json` of the real binary lists.
fn served_kids(port: u16) -> Vec<String> {
    use std::io::Read as _;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    write!(
        s,
        "GET /.portcullis/jwks.json HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert_eq!(status_of(&text), 200, "{text}");
    let body: Value = serde_json::from_str(support::client::body_of(&text)).unwrap();
    body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// SIGHUP on the real binary reads the key files again: a key added is
/// published; a bad key file keeps the old keys (and says why).
#[test]
fn sighup_reads_the_key_files_again() {
    plain_only!("reads the JWKS over plain HTTP");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = key_file(d, "a.pem", Algorithm::Es256);
    let b = key_file(d, "b.pem", Algorithm::Es256);
    let text = |files: &[&Path]| {
        format!(
            "[server]\nlisten = \"127.0.0.1:$PORT\"\npublic_url = \"http://127.0.0.1:$PORT\"\n\
             [session]\nsecret_env = \"PORTCULLIS_SECRET\"\n\
             [mail]\nfrom = \"t@example.com\"\ntransport = \"console\"\n\
             [[route]]\npath = \"/\"\nupstream = \"demo\"\n{}",
            assertion_table(files, "")
        )
    };
    let gw = support::gateway::GatewayProcess::start(d, &text(&[&a]));
    assert_eq!(served_kids(gw.port), [kid_of(&a)]);
    let rewrite = |files: &[&Path]| {
        let t = text(files).replace("$PORT", &gw.port.to_string());
        let t = support::mode::process_config_text(&t, d);
        std::fs::write(d.join("gateway.toml"), t).unwrap();
    };
    rewrite(&[&b, &a]);
    gw.signal("HUP");
    wait_for_lines(&gw, "configuration reloaded", 1);
    let kid_b = kid_of(&b);
    assert_eq!(served_kids(gw.port), [kid_b.clone(), kid_of(&a)]);
    // A key file gone bad: not reloaded, the keys stay as they were.
    std::fs::write(&b, "not a key\n").unwrap();
    gw.signal("HUP");
    wait_for_lines(&gw, "configuration not reloaded", 1);
    let log = gw.log_text();
    assert!(
        log.contains(&format!(
            "assertion.signing_key_file: {:?}: not a PEM file",
            b.display().to_string()
        )),
        "{log}"
    );
    assert_eq!(served_kids(gw.port), [kid_b, kid_of(&a)]);
}
