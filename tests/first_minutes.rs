//! The first five minutes of a newcomer, with the real binary (issue 19):
//! the demo moved with `--listen` or `PORTCULLIS_LISTEN` (its links
//! follow), `demo-config`, the start-up line naming the URL to open, the
//! console mail's decoded summary (and the raw message only on debug),
//! `check` refusing what serving refuses (`rediss://…#insecure`, naming the key),
//! and JSON log lines with numbers as numbers.
//!
//! Each process gets its address from the test (a port that was free a
//! moment ago, as `support::gateway` does for child processes) or port 0;
//! readiness is the start-up line, read from the process's stderr as it
//! comes, never a sleep.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use portcullis::config::{redis_url, Config, ProcessEnv, EMBEDDED_DEFAULT, EMBEDDED_NAME};
use support::browser::Browser;
use support::gateway::{binary, free_port};

/// How long a test waits for the process to say something.
const WAIT: Duration = Duration::from_secs(20);

/// The lines of one output of the process, as they come.
struct Lines {
    rx: Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    fn read(from: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// The next line (waits for it).
    fn next(&mut self) -> String {
        let line = self
            .rx
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("no next line ({e}) after:\n{}", self.seen.join("\n")));
        self.seen.push(line.clone());
        line
    }

    /// Reads until a line contains `needle`; returns that line.
    fn until(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(e) => panic!("no line with {needle:?} ({e}):\n{}", self.seen.join("\n")),
            }
        }
    }
}

/// The binary running in a temporary directory (its `./mail` goes there),
/// its stdout and stderr read line by line.
struct Run {
    child: Child,
    out: Lines,
    err: Lines,
    _dir: tempfile::TempDir,
}

impl Run {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(binary())
            .args(args)
            .current_dir(dir.path())
            .env_remove("PORTCULLIS_CONFIG")
            .env_remove("PORTCULLIS_LISTEN")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Lines::read(child.stdout.take().unwrap());
        let err = Lines::read(child.stderr.take().unwrap());
        Run {
            child,
            out,
            err,
            _dir: dir,
        }
    }

    /// Waits for the start-up line; returns the URL it says to open.
    fn ready(&mut self) -> String {
        let line = self.err.until("ready: open ");
        let at = line.find("ready: open ").unwrap() + "ready: open ".len();
        line[at..]
            .split(|c: char| c.is_whitespace() || c == '"')
            .next()
            .unwrap()
            .to_string()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /`, the sign-in page, and the POST asking a link for `email`.
async fn ask_for_link(b: &mut Browser, origin: &str, email: &str) {
    let first = b.get(&format!("{origin}/")).await;
    assert_eq!(first.status, 303);
    let login = b.get(&format!("{origin}{}", first.location())).await;
    let csrf = login.field("csrf").unwrap();
    let rd = login.field("rd").unwrap();
    let asked = b
        .post(
            origin,
            "/.portcullis/login",
            &[("email", email), ("rd", &rd), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(asked.status, 200);
    assert!(
        asked
            .body_without_address(email)
            .contains("Check your email"),
        "{}",
        asked.body
    );
}

/// The five lines after the printout's first line: to, subject, link, code
/// and the closing line.
fn console_summary(run: &mut Run) -> [String; 5] {
    run.out.until("----- sign-in email (console mail transport");
    std::array::from_fn(|_| run.out.next())
}

#[tokio::test]
async fn demo_listens_where_it_is_told_and_its_links_point_there() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut run = Run::start(&["demo", "--listen", &listen], &[]);
    let origin = format!("http://localhost:{port}");
    assert_eq!(run.ready(), format!("{origin}/"), "the start-up line");
    let ready_line = run.err.seen.last().unwrap().clone();
    assert!(ready_line.contains("INFO"), "{ready_line}");

    let mut b = Browser::new();
    ask_for_link(&mut b, &origin, "me@example.org").await;
    let [to, subject, link, code, end] = console_summary(&mut run);
    assert_eq!(to, "To:      me@example.org");
    assert_eq!(
        subject,
        format!(
            "Subject: Your sign-in link for {}",
            Config::embedded().unwrap().ui.title
        )
    );
    let prefix = format!("Link:    {origin}/.portcullis/verify?token=");
    let token = link
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{link:?} does not start with {prefix:?}"));
    assert_eq!(token.len(), 43, "{link}");
    assert!(token
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    let code = code.strip_prefix("Code:    ").unwrap();
    assert!(
        code.len() == 9 && code.as_bytes()[4] == b'-',
        "code as XXXX-XXXX: {code:?}"
    );
    assert_eq!(
        end,
        "----- end of email (RUST_LOG=debug also prints the raw message) -----"
    );

    // The link works as printed, and ends on the demo page, identity first.
    let confirm = b
        .get(&format!("{origin}/.portcullis/verify?token={token}"))
        .await;
    let csrf = confirm.field("csrf").unwrap();
    let done = b
        .post(
            &origin,
            "/.portcullis/verify",
            &[("token", token), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(done.status, 303);
    let demo = b.get(&format!("{origin}{}", done.location())).await;
    assert_eq!(demo.status, 200);
    let at = |s: &str| {
        demo.body
            .find(s)
            .unwrap_or_else(|| panic!("{s} not in {}", demo.body))
    };
    assert!(at("<strong id=\"email\">me@example.org</strong>") < at("<dt>x-forwarded-email</dt>"));
    assert!(at("<dt>x-forwarded-email</dt><dd>me@example.org</dd>") < at("<dt>accept</dt>"));

    // The link and the code went to stdout, never into the log.
    run.err.until("GET");
    let log = run.err.seen.join("\n");
    assert!(!log.contains(token), "{log}");
    assert!(!log.contains(code), "{log}");
}

/// `PORTCULLIS_LISTEN` moves `portcullis demo` and the demo served when
/// there is no configuration file; port 0 takes a free port, and the
/// start-up line and the links say which.
#[tokio::test]
async fn portcullis_listen_moves_the_demo_to_a_port_of_its_own() {
    for args in [&["demo"][..], &[]] {
        let mut run = Run::start(args, &[("PORTCULLIS_LISTEN", "127.0.0.1:0")]);
        let url = run.ready();
        let port: u16 = url
            .strip_prefix("http://localhost:")
            .and_then(|rest| rest.strip_suffix('/'))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{args:?}: {url}"));
        assert!(port != 0 && port != 8080, "{args:?}: {url}");
        let mut b = Browser::new();
        ask_for_link(
            &mut b,
            &format!("http://localhost:{port}"),
            "me@example.org",
        )
        .await;
        let [_, _, link, _, _] = console_summary(&mut run);
        assert!(
            link.starts_with(&format!("Link:    {url}.portcullis/verify?token=")),
            "{args:?}: {link}"
        );
    }
    let bad = Command::new(binary())
        .env_remove("PORTCULLIS_CONFIG")
        .env("PORTCULLIS_LISTEN", "localhost")
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr),
        "portcullis: PORTCULLIS_LISTEN: \"localhost\" is not an address like 127.0.0.1:9000\n"
    );
}

#[tokio::test]
async fn rust_log_debug_adds_the_raw_message_after_the_summary() {
    let mut run = Run::start(
        &["demo", "--listen", "127.0.0.1:0"],
        &[("RUST_LOG", "debug")],
    );
    let url = run.ready();
    let mut b = Browser::new();
    ask_for_link(&mut b, url.trim_end_matches('/'), "me@example.org").await;
    let [to, _, _, _, raw] = console_summary(&mut run);
    assert_eq!(to, "To:      me@example.org");
    assert_eq!(raw, "----- the raw message -----");
    run.out.until("----- end of email -----");
    let printed = run.out.seen.join("\n");
    let raw = &printed[printed.find("----- the raw message -----").unwrap()..];
    assert!(raw.contains("MIME-Version: 1.0"), "{raw}");
    assert!(raw.contains("To: me@example.org"), "{raw}");
}

#[test]
fn demo_config_prints_the_embedded_configuration_to_start_from() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(binary())
        .arg("demo-config")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text, EMBEDDED_DEFAULT);
    let parsed = Config::from_toml_str(&text, EMBEDDED_NAME, &ProcessEnv).unwrap();
    assert_eq!(
        format!("{parsed:?}"),
        format!("{:?}", Config::embedded().unwrap())
    );
    // Saved as ./gateway.toml, it is the configuration `portcullis` uses.
    std::fs::write(dir.path().join("gateway.toml"), &text).unwrap();
    let check = Command::new(binary())
        .arg("check")
        .env_remove("PORTCULLIS_CONFIG")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    assert!(String::from_utf8_lossy(&check.stdout).starts_with("gateway.toml: valid\n"));
}

/// A configuration with a Redis store at `url`.
fn redis_config(dir: &Path, url: &str) -> String {
    let path = dir.join("gateway.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://localhost:8080\"\n\
             [mail]\ntransport = \"console\"\n\
             [store]\nbackend = \"redis\"\nurl = \"{url}\"\n\
             [[route]]\npath = \"/\"\nupstream = \"demo\"\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn check_refuses_insecure_rediss_naming_the_key_as_serving_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = redis_config(
        dir.path(),
        "rediss://:hunter2@redis.example.com:6380/0#insecure",
    );
    let run = |args: &[&str]| {
        Command::new(binary())
            .args(args)
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "off")
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let refused = format!("{path}: store.url: {}", redis_url::NO_INSECURE);
    let check = run(&["check"]);
    assert_eq!(check.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&check.stderr),
        format!("{refused}\n{path}: 1 error(s)\n")
    );
    let serve = run(&[]);
    assert_eq!(serve.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&serve.stderr),
        format!("{refused}\n")
    );
    // The same store over plain redis:// passes check.
    let plain = redis_config(dir.path(), "redis://:hunter2@redis.example.com:6379/0");
    let check = Command::new(binary())
        .args(["check", "--config", &plain])
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
}

#[tokio::test]
async fn json_log_lines_carry_numbers_as_numbers() {
    let mut run = Run::start(
        &["--log-format", "json", "demo", "--listen", "127.0.0.1:0"],
        &[],
    );
    let url = run.ready();
    let ready: serde_json::Value = serde_json::from_str(run.err.seen.last().unwrap()).unwrap();
    assert_eq!(ready["message"], format!("ready: open {url}"));
    assert!(ready["ms"].is_u64(), "{ready}");
    let page = Browser::new().get(&format!("{url}missing?q=1")).await;
    assert_eq!(page.status, 303);
    let line = run.err.until("\"message\":\"request\"");
    let request: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(request["ms"].is_f64(), "ms is a JSON number: {line}");
    assert!(request["ms"].as_f64().unwrap() >= 0.0, "{line}");
    assert_eq!(request["status"], 303, "{line}");
    assert_eq!(request["path"], "/missing", "{line}");
}
