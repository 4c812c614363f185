//! The gateway's life as an operator sees it, with the real binary: SIGHUP
//! at any moment (during start-up, on the embedded configuration), what a
//! reload says it did not apply, how many log lines a failure costs, and
//! the exact texts of the errors that stop it from serving.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::gateway::{binary, free_port, GatewayProcess, SECRET};

/// How long a test waits for the gateway to do something.
const WAIT: Duration = Duration::from_secs(20);

/// Starts `program args… portcullis [--config dir/gateway.toml]` in `dir`
/// without waiting for anything: the test decides what to wait for.
fn spawn(dir: &Path, prefix: &[&str], config: Option<&str>) -> GatewayProcess {
    let log = dir.join("gateway.log");
    let mut cmd = match prefix.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(binary());
            c
        }
        None => Command::new(binary()),
    };
    let mut port = 0;
    if let Some(text) = config {
        port = free_port();
        let path = dir.join("gateway.toml");
        std::fs::write(&path, text.replace("$PORT", &port.to_string())).unwrap();
        cmd.arg("--config").arg(&path);
    }
    let child = cmd
        .current_dir(dir)
        .env_remove("PORTCULLIS_CONFIG")
        .env("PORTCULLIS_SECRET", SECRET)
        .env(
            "OTHER_SECRET",
            "another-secret-another-secret-another-secret-0",
        )
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    GatewayProcess { child, port, log }
}

/// Whether the process has a handler for SIGHUP (bit 0 of `SigCgt`).
fn catches_sighup(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|mask| mask & 1 == 1)
}

fn accepts(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Fails the test if the gateway has exited, with how and its log.
fn assert_alive(gw: &mut GatewayProcess) {
    if let Some(status) = gw.child.try_wait().unwrap() {
        panic!("the gateway exited ({status}):\n{}", gw.log_text());
    }
}

/// Waits until `count` lines of the log contain `needle`.
fn wait_for_lines(gw: &mut GatewayProcess, needle: &str, count: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = gw.log_text();
        if text.lines().filter(|l| l.contains(needle)).count() >= count {
            return;
        }
        assert_alive(gw);
        assert!(
            Instant::now() < deadline,
            "no {count} lines with {needle:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A plain HTTP/1.1 GET; the status code.
fn status_of(port: u16, path: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

fn base_config(extra_server: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:$PORT"
public_url = "http://127.0.0.1:$PORT"
threads = 1
{extra_server}

[session]
secret_env = "PORTCULLIS_SECRET"

[[route]]
path = "/"
upstream = "demo"
access = "public"
"#
    )
}

/// SIGHUP during start-up, while the gateway waits for its store (a
/// redis-server under `CLIENT PAUSE` for 1.5 s: it accepts the connection
/// and answers nothing until then), sent the moment the process can catch it or its port
/// accepts, whichever comes first: it keeps starting, serves once the
/// store answers, and the signal is a reload. (Before the fix the handler
/// came after start-up, and such a SIGHUP ended the process.)
#[test]
fn sighup_during_start_up_is_a_reload_not_an_exit() {
    let redis = support::redis::RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{}\n[store]\nbackend = \"redis\"\nurl = \"{}\"\nconnect_timeout = \"20s\"\nresponse_timeout = \"20s\"\n",
        base_config(""),
        redis.url()
    );
    // Start-up waits for the pause to end.
    redis.client_pause(Duration::from_millis(1500));
    let mut gw = spawn(dir.path(), &[], Some(&config));
    let pid = gw.child.id();
    let deadline = Instant::now() + WAIT;
    while !catches_sighup(pid) && !accepts(gw.port) {
        assert_alive(&mut gw);
        assert!(
            Instant::now() < deadline,
            "never started:\n{}",
            gw.log_text()
        );
    }
    gw.signal("HUP");
    // Long enough for a SIGHUP's default action to have ended it.
    std::thread::sleep(Duration::from_millis(200));
    assert_alive(&mut gw);
    wait_for_lines(&mut gw, "ready", 1);
    wait_for_lines(&mut gw, "configuration reloaded", 1);
    assert_eq!(status_of(gw.port, "/"), 200);
    // And once more when it is serving.
    gw.signal("HUP");
    wait_for_lines(&mut gw, "configuration reloaded", 2);
    assert_eq!(status_of(gw.port, "/"), 200);
    assert_alive(&mut gw);
}

/// The embedded demo configuration has no file to read again: SIGHUP,
/// during start-up and after it, is logged as such and the gateway goes
/// on. The embedded configuration listens on 127.0.0.1:8080, so the
/// binary runs in a network namespace of its own (`unshare -rn`), where
/// that port is free and touches nothing else on this machine.
#[test]
fn sighup_on_the_embedded_configuration_is_logged_not_fatal() {
    let usable = Command::new("unshare")
        .args(["-rn", "true"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        usable,
        "this test needs `unshare -rn` (util-linux, unprivileged user namespaces)"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut gw = spawn(dir.path(), &["unshare", "-rn"], None);
    let pid = gw.child.id();
    let deadline = Instant::now() + WAIT;
    // `unshare` execs the gateway in place (same pid).
    while !catches_sighup(pid) && !gw.log_text().contains("ready") {
        assert_alive(&mut gw);
        assert!(
            Instant::now() < deadline,
            "never started:\n{}",
            gw.log_text()
        );
    }
    gw.signal("HUP");
    wait_for_lines(&mut gw, "ready", 1);
    wait_for_lines(&mut gw, "SIGHUP: no configuration file to reload", 1);
    gw.signal("HUP");
    wait_for_lines(&mut gw, "SIGHUP: no configuration file to reload", 2);
    assert_alive(&mut gw);
    let log = gw.log_text();
    assert!(log.contains("embedded demo configuration"), "{log}");
    assert!(!log.contains("configuration reloaded"), "{log}");
}

/// The keys, as the file spells them, whose "restart to apply" lines the
/// log holds between the `n - 1`th and the `n`th "configuration reloaded".
fn restart_notes(log: &str, n: usize) -> Vec<String> {
    let mut seen = 0;
    let mut notes = Vec::new();
    for line in log.lines() {
        if line.contains("configuration reloaded") {
            seen += 1;
            if seen == n {
                return notes;
            }
            notes.clear();
        } else if let Some((before, _)) = line.split_once(": restart to apply") {
            notes.push(before.split_whitespace().last().unwrap_or("").to_string());
        }
    }
    panic!("no reload {n} in:\n{log}");
}

/// A configuration file as (table, key, value) lines, in order.
fn render(entries: &[(&str, &str, String)]) -> String {
    let mut text = String::new();
    let mut tables: Vec<&str> = Vec::new();
    for (t, _, _) in entries {
        if !tables.contains(t) {
            tables.push(t);
        }
    }
    for t in tables {
        text.push_str(&format!("[{t}]\n"));
        for (_, k, v) in entries.iter().filter(|(tt, _, _)| *tt == t) {
            text.push_str(&format!("{k} = {v}\n"));
        }
        text.push('\n');
    }
    text.push_str("[[route]]\npath = \"/\"\nupstream = \"demo\"\naccess = \"public\"\n");
    text
}

fn set(
    entries: &mut Vec<(&'static str, &'static str, String)>,
    t: &'static str,
    k: &'static str,
    v: &str,
) {
    match entries.iter_mut().find(|(tt, kk, _)| *tt == t && *kk == k) {
        Some(e) => e.2 = v.to_string(),
        None => entries.push((t, k, v.to_string())),
    }
}

/// Each key a reload cannot apply is changed in turn (and some it can):
/// after each SIGHUP the log says `<key>: restart to apply` for exactly
/// the keys that changed, and nothing when nothing it cannot apply did.
#[test]
fn reload_says_restart_to_apply_for_each_changed_start_only_key() {
    let dir = tempfile::tempdir().unwrap();
    let q = |s: &str| format!("{s:?}");
    let mut entries: Vec<(&'static str, &'static str, String)> = vec![
        ("server", "listen", q("127.0.0.1:$PORT")),
        ("server", "public_url", q("http://127.0.0.1:$PORT")),
        ("server", "threads", "1".into()),
        ("session", "secret_env", q("PORTCULLIS_SECRET")),
        ("mail", "transport", q("console")),
        ("store", "backend", q("memory")),
    ];
    let mut gw = spawn(dir.path(), &[], Some(&render(&entries)));
    let path = dir.path().join("gateway.toml");
    wait_for_lines(&mut gw, "listening (http)", 1);

    type Step = (
        &'static str,
        &'static str,
        &'static str,
        &'static [&'static str],
    );
    let steps: &[Step] = &[
        // Nothing changed; then keys a reload applies.
        ("server", "threads", "1", &[]),
        ("login", "link_ttl", "\"10m\"", &[]),
        ("server", "max_body_bytes", "100000", &[]),
        ("session", "lifetime", "\"2d\"", &[]),
        // Keys read only at start, one at a time.
        (
            "server",
            "header_read_timeout",
            "\"11s\"",
            &["server.header_read_timeout"],
        ),
        (
            "server",
            "tls_handshake_timeout",
            "\"12s\"",
            &["server.tls_handshake_timeout"],
        ),
        (
            "server",
            "shutdown_timeout",
            "\"13s\"",
            &["server.shutdown_timeout"],
        ),
        (
            "server",
            "max_header_count",
            "50",
            &["server.max_header_count"],
        ),
        (
            "server",
            "max_header_bytes",
            "20000",
            &["server.max_header_bytes"],
        ),
        ("server", "max_uri_bytes", "4000", &["server.max_uri_bytes"]),
        ("server", "threads", "3", &["server.threads"]),
        ("server", "listen", "\"127.0.0.1:1\"", &["server.listen"]),
        ("server", "tls_listen", "\"127.0.0.1:2\"", &[]),
        ("server", "tls_cert", "\"/nonexistent/a.pem\"", &[]),
        (
            "server",
            "tls_key",
            "\"/nonexistent/a.key\"",
            &["server.tls_listen", "server.tls_cert", "server.tls_key"],
        ),
        (
            "server",
            "tls_cert",
            "\"/nonexistent/b.pem\"",
            &["server.tls_cert"],
        ),
        (
            "session",
            "secret_env",
            "\"OTHER_SECRET\"",
            &["session.secret"],
        ),
        ("session", "revalidate", "\"3s\"", &["session.revalidate"]),
        (
            "session",
            "store_grace",
            "\"40s\"",
            &["session.store_grace"],
        ),
        ("mail", "from", "\"Other <o@example.com>\"", &["mail.from"]),
        ("mail", "queue_capacity", "10", &["mail.queue_capacity"]),
        ("mail", "transport", "\"file\"", &["mail.transport"]),
        ("store", "backend", "\"redis\"", &["store.backend"]),
        ("store", "url", "\"redis://127.0.0.1:1/0\"", &["store.url"]),
        ("store", "key_prefix", "\"other:\"", &["store.key_prefix"]),
        (
            "store",
            "connect_timeout",
            "\"2s\"",
            &["store.connect_timeout"],
        ),
        (
            "store",
            "response_timeout",
            "\"2s\"",
            &["store.response_timeout"],
        ),
    ];
    // The three TLS keys go together: the file is only valid again once
    // all three are in, and an invalid file is not reloaded (no
    // "configuration reloaded" line), so no SIGHUP is sent in between.
    let mut reloads = 0;
    for (table, key, value, expected) in steps {
        set(&mut entries, table, key, value);
        let text = render(&entries).replace("$PORT", &gw.port.to_string());
        let tls_keys = ["tls_listen", "tls_cert", "tls_key"]
            .iter()
            .filter(|k| entries.iter().any(|e| e.1 == **k))
            .count();
        if tls_keys != 0 && tls_keys != 3 {
            continue;
        }
        std::fs::write(&path, &text).unwrap();
        reloads += 1;
        gw.signal("HUP");
        wait_for_lines(&mut gw, "configuration reloaded", reloads);
        let notes = restart_notes(&gw.log_text(), reloads);
        assert_eq!(
            notes, *expected,
            "after setting {table}.{key} = {value}:\n{text}"
        );
    }
    assert_eq!(reloads, steps.len() - 2);
    assert_alive(&mut gw);
}

/// A 502 (the upstream refuses connections) costs one log line, at warn,
/// with the status and the error; before, a warn line and an info line.
#[test]
fn a_gateway_5xx_is_one_log_line_at_warn() {
    let dir = tempfile::tempdir().unwrap();
    let closed = free_port();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:$PORT"
public_url = "http://127.0.0.1:$PORT"
threads = 1

[session]
secret_env = "PORTCULLIS_SECRET"

[[route]]
path = "/"
upstream = "http://127.0.0.1:{closed}"
access = "public"
"#
    );
    let mut gw = GatewayProcess::start(dir.path(), &text);
    wait_for_lines(&mut gw, "ready", 1);
    assert_eq!(status_of(gw.port, "/only-this-request"), 502);
    assert_eq!(status_of(gw.port, "/.portcullis/login"), 200);
    // The second request's line is written after the first's.
    wait_for_lines(&mut gw, "/.portcullis/login", 1);
    let log = gw.log_text();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("/only-this-request"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains(" WARN "), "{}", lines[0]);
    assert!(lines[0].contains("status=502"), "{}", lines[0]);
    assert!(lines[0].contains("error="), "{}", lines[0]);
    let warnings = log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .count();
    assert_eq!(warnings, 1, "{log}");
}

/// Out of file descriptors (`prlimit --nofile`), every accept fails until
/// a connection closes, and the accept loop retries every 50 ms: at most
/// one line a second, each with the number of failures it stands for.
#[test]
fn accept_failures_are_logged_at_most_once_a_second_with_a_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = spawn(
        dir.path(),
        &["prlimit", "--nofile=40:40", "--"],
        Some(&base_config("")),
    );
    wait_for_lines(&mut gw, "ready", 1);
    // More connections than descriptors: the rest wait in the backlog.
    let mut held = Vec::new();
    for _ in 0..60 {
        held.push(std::net::TcpStream::connect(("127.0.0.1", gw.port)).unwrap());
    }
    wait_for_lines(&mut gw, "accept failed", 1);
    let first = Instant::now();
    // Long enough for about 50 retries.
    std::thread::sleep(Duration::from_millis(2500));
    let log = gw.log_text();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("accept failed"))
        .collect();
    let counts: Vec<u64> = lines
        .iter()
        .map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("count="))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no count in {l}"))
        })
        .collect();
    let waited = first.elapsed().as_secs_f64();
    // One at the first failure, then one per whole second.
    assert!(
        (2..=1 + waited as usize).contains(&lines.len()),
        "{} lines in {waited:.1} s:\n{log}",
        lines.len()
    );
    assert_eq!(counts[0], 1, "{log}");
    assert!(
        counts[1] >= 10,
        "the second line stands for 1 s of retries: {log}"
    );
    assert!(lines[0].contains("Too many open files"), "{}", lines[0]);
    drop(held);
}

/// Runs the binary to completion; (exit code, stderr).
fn run(dir: &Path, args: &[&str], config: &str) -> (i32, String) {
    let path = dir.join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(binary())
        .arg("--config")
        .arg(&path)
        .args(args)
        .current_dir(dir)
        .env("PORTCULLIS_SECRET", SECRET)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A port in use is a configuration error naming the file and the key.
#[test]
fn a_port_in_use_names_the_file_and_server_listen() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = base_config("").replace("127.0.0.1:$PORT", &addr.to_string());
    let (code, err) = run(dir.path(), &[], &config);
    let file = dir.path().join("gateway.toml");
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err.trim_end(),
        format!(
            "{}: server.listen: cannot listen on {addr}: Address already in use (os error 98)",
            file.display()
        )
    );
}

/// Missing or unusable TLS files: serving and `check` both refuse, with
/// the file, the key and the path.
#[test]
fn tls_files_that_cannot_be_read_name_the_file_key_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a pem file\n").unwrap();
    let cases = [
        (
            "/nonexistent/cert.pem".to_string(),
            "server.tls_cert: cannot read certificates from /nonexistent/cert.pem: ".to_string(),
        ),
        (
            empty.display().to_string(),
            format!(
                "server.tls_cert: cannot read certificates from {}: no CERTIFICATE block",
                empty.display()
            ),
        ),
    ];
    for (cert, expected) in cases {
        let config = base_config(&format!(
            "tls_listen = \"127.0.0.1:0\"\ntls_cert = \"{cert}\"\ntls_key = \"/nonexistent/key.pem\""
        ))
        .replace("$PORT", "0");
        let expected = format!("{}: {expected}", file.display());
        let (code, err) = run(dir.path(), &[], &config);
        assert_eq!(code, 1, "{err}");
        let first = err.lines().next().unwrap_or("");
        assert!(
            first.starts_with(&expected),
            "serve: {first:?}\nwanted {expected:?}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        let (code, err) = run(dir.path(), &["check"], &config);
        assert_eq!(code, 1, "{err}");
        let first = err.lines().next().unwrap_or("");
        assert!(
            first.starts_with(&expected),
            "check: {first:?}\nwanted {expected:?}"
        );
    }
}

/// An unknown key is named with its table; an invalid `[mail.smtp]` is an
/// error even when the transport is the console. `check` and serving
/// refuse both alike.
#[test]
fn check_and_serve_refuse_unknown_keys_and_a_bad_unused_smtp_table() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml").display().to_string();
    let unknown = format!(
        "{}\n[store]\nbackend = \"memory\"\nurll = \"redis://x\"\n",
        base_config("").replace("$PORT", "0")
    );
    let line = unknown.lines().position(|l| l.starts_with("urll")).unwrap() + 1;
    let smtp = format!(
        "{}\n[mail]\ntransport = \"console\"\n[mail.smtp]\nhost = \"smtp.example.com\"\nport = 70000\n",
        base_config("").replace("$PORT", "0")
    );
    for args in [&[][..], &["check"][..]] {
        let (code, err) = run(dir.path(), args, &unknown);
        assert_eq!(code, 1, "{err}");
        let first = err.lines().next().unwrap_or("");
        assert!(
            first.starts_with(&format!("{file}:{line}: store.urll: unknown field `urll`")),
            "{args:?}: {err}"
        );
        let (code, err) = run(dir.path(), args, &smtp);
        assert_eq!(code, 1, "{err}");
        assert_eq!(
            err.lines().next().unwrap_or(""),
            format!("{file}: mail.smtp.port: 70000 is out of range (1 to 65535)"),
            "{args:?}"
        );
    }
}

/// `portcullis revoke` with no Redis behind `store.url` says which URL it
/// could not reach (before, only "store unavailable: ..." without the key).
#[test]
fn revoke_without_redis_names_store_url() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("none.sock");
    let config = format!(
        "{}\n[store]\nbackend = \"redis\"\nurl = \"redis+unix://{}\"\nconnect_timeout = \"300ms\"\n",
        base_config("").replace("$PORT", "8080"),
        sock.display()
    );
    let (code, err) = run(dir.path(), &["revoke", "someone@example.com"], &config);
    assert_eq!(code, 1, "{err}");
    let want = format!("store.url (redis+unix://{}): ", sock.display());
    assert!(err.contains(&want), "{err}");
}
