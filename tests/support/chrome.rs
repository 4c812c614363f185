//! A real Chromium, driven through WebDriver (chromedriver) as plain JSON
//! over HTTP with reqwest: no WebDriver crate.
//!
//! Owns: one `chromedriver` per test binary (started on first use, on a
//! port it picks itself, `--port=0`), browser sessions with a fresh empty
//! profile each and JavaScript off for pages, and the handful of WebDriver commands the browser tests
//! need (navigate, find, type, click, keys, execute, cookies, logs,
//! screenshots).
//!
//! Cleanup: every [`Chrome`] ends its session (which quits its Chromium)
//! when closed or dropped, even on a failed assertion. chromedriver runs
//! under a small `sh` in its own process group whose stdin is a pipe from
//! this process: when the test binary exits, however it exits, the pipe
//! closes and the shell ends its own group (chromedriver and any Chromium
//! left behind), by the group's id.
//!
//! Missing chromium or chromedriver is a test failure with a clear message;
//! `PORTCULLIS_SKIP_BROWSER=1` skips the browser tests with a notice.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

/// WebDriver's key for element references.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The Chromium switches every session gets.
pub const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--lang=en-US",
    "--hide-scrollbars",
];

/// True (with a notice) when the browser tests should not run.
pub fn skipped() -> bool {
    if std::env::var("PORTCULLIS_SKIP_BROWSER").as_deref() == Ok("1") {
        // Straight to stderr: the test harness would swallow `eprintln!`.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "NOTICE: PORTCULLIS_SKIP_BROWSER=1: browser test skipped"
        );
        return true;
    }
    false
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// The running chromedriver of this test binary.
pub struct Driver {
    pub url: String,
    /// Chromium's binary, when set through `CHROME_BIN`.
    binary: Option<String>,
    _watchdog: Child,
    _dir: tempfile::TempDir,
}

static DRIVER: OnceCell<Driver> = OnceCell::const_new();

/// Starts chromedriver on first use; later calls get the same one.
pub async fn driver() -> &'static Driver {
    DRIVER.get_or_init(start_driver).await
}

async fn start_driver() -> Driver {
    let help = "install them (Debian: apt-get install chromium chromium-driver), \
                or set PORTCULLIS_SKIP_BROWSER=1 to skip the browser tests";
    let chromedriver = find_program(&["chromedriver"])
        .unwrap_or_else(|| panic!("chromedriver is not on PATH: {help}"));
    let binary = std::env::var("CHROME_BIN").ok();
    if binary.is_none() {
        find_program(&["chromium", "chromium-browser", "google-chrome"])
            .unwrap_or_else(|| panic!("chromium is not on PATH: {help}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("chromedriver.log");
    // `read` returns when this process's end of the pipe closes; then the
    // shell signals its own process group (kill 0).
    let mut watchdog = Command::new("sh")
        .arg("-c")
        .arg("\"$1\" --port=0 --log-level=WARNING >\"$2\" 2>&1 & read _ ; kill -TERM 0")
        .arg("sh")
        .arg(&chromedriver)
        .arg(&log)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start chromedriver");
    let deadline = Instant::now() + Duration::from_secs(30);
    let port = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(port) = text
            .split("started successfully on port ")
            .nth(1)
            .and_then(|rest| rest.split('.').next())
            .and_then(|p| p.trim().parse::<u16>().ok())
        {
            break port;
        }
        if let Ok(Some(status)) = watchdog.try_wait() {
            panic!("chromedriver exited ({status}): {text}");
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not start: {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let url = format!("http://127.0.0.1:{port}");
    let http = super::client::http();
    loop {
        let ready = match http.get(format!("{url}/status")).send().await {
            Ok(r) => r
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| v["value"]["ready"].as_bool())
                .unwrap_or(false),
            Err(_) => false,
        };
        if ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver is not ready at {url}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Driver {
        url,
        binary,
        _watchdog: watchdog,
        _dir: dir,
    }
}

/// One entry of the browser's log (console messages, CSP reports,
/// failed loads).
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub level: String,
    pub source: String,
    pub message: String,
}

/// One browser: a WebDriver session with its own empty profile, with
/// JavaScript turned off for pages.
pub struct Chrome {
    http: reqwest::Client,
    base: String,
    closed: bool,
    _profile: tempfile::TempDir,
}

impl Chrome {
    /// A new browser window of `width`×`height` CSS pixels.
    pub async fn open(width: u32, height: u32) -> Chrome {
        let driver = driver().await;
        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push(format!("--window-size={width},{height}"));
        // JavaScript off for pages (WebDriver's own scripts still run):
        // the pages must work without it.
        let mut options = json!({
            "args": args,
            "prefs": { "profile.managed_default_content_settings.javascript": 2 }
        });
        if let Some(binary) = &driver.binary {
            options["binary"] = json!(binary);
        }
        let http = super::client::http();
        let answer: Value = http
            .post(format!("{}/session", driver.url))
            .json(&json!({
                "capabilities": { "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": options,
                    "goog:loggingPrefs": { "browser": "ALL" },
                    "pageLoadStrategy": "normal",
                    "timeouts": { "pageLoad": 20000, "script": 10000 }
                }}
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {answer}"))
            .to_string();
        let chrome = Chrome {
            http,
            base: format!("{}/session/{id}", driver.url),
            closed: false,
            _profile: profile,
        };
        chrome.resize(width, height).await;
        chrome
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "WebDriver {method} {path}: {status}: {v}"
        );
        v["value"].clone()
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Navigates and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The page as the browser has it now (after parsing).
    pub async fn source(&self) -> String {
        self.get("/source")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn title(&self) -> String {
        self.get("/title")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The element for a CSS selector, if the page has one.
    pub async fn try_find(&self, css: &str) -> Option<String> {
        let resp = self
            .http
            .post(format!("{}/element", self.base))
            .json(&json!({ "using": "css selector", "value": css }))
            .send()
            .await
            .unwrap();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        v["value"][ELEMENT].as_str().map(String::from)
    }

    pub async fn find(&self, css: &str) -> String {
        match self.try_find(css).await {
            Some(e) => e,
            None => panic!(
                "no element {css:?} on {}:\n{}",
                self.url().await,
                self.source().await
            ),
        }
    }

    /// The rendered text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.get(&format!("/element/{e}/text"))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Types `text` into the element, as keystrokes.
    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.post(&format!("/element/{e}/clear"), json!({})).await;
        self.post(&format!("/element/{e}/value"), json!({ "text": text }))
            .await;
    }

    /// Clicks the element (a link or a submit button) and waits until the
    /// next document has replaced this one and loaded.
    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.execute("document.__portcullisOld = true", json!([]))
            .await;
        self.post(&format!("/element/{e}/click"), json!({})).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // Mid-navigation the page may not answer; that is "not yet".
            let done = self
                .try_execute(
                    "return !document.__portcullisOld && document.readyState === 'complete'",
                    json!([]),
                )
                .await;
            if done == Some(json!(true)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "clicking {css} did not lead to a new page"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Presses the Tab key once (real keyboard input).
    pub async fn tab(&self) {
        let tab = "\u{E004}";
        self.post(
            "/actions",
            json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": [
                { "type": "keyDown", "value": tab }, { "type": "keyUp", "value": tab }
            ]}]}),
        )
        .await;
        self.post("/actions", json!({ "actions": [] })).await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// Like [`Chrome::execute`], but `None` when the browser refuses.
    pub async fn try_execute(&self, script: &str, args: Value) -> Option<Value> {
        let resp = self
            .http
            .post(format!("{}/execute/sync", self.base))
            .json(&json!({ "script": script, "args": args }))
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let v: Value = resp.json().await.ok()?;
        Some(v["value"].clone())
    }

    /// Polls until `document.readyState` is `complete`.
    pub async fn wait_loaded(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let state = self.execute("return document.readyState", json!([])).await;
            if state == "complete" {
                return;
            }
            assert!(Instant::now() < deadline, "page did not finish loading");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The cookies the browser holds for the current page: (name, value).
    pub async fn cookies(&self) -> Vec<(String, String)> {
        let v = self.get("/cookie").await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        (
                            c["name"].as_str().unwrap_or_default().to_string(),
                            c["value"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The browser's log since the last call (chromedriver clears it).
    pub async fn logs(&self) -> Vec<LogEntry> {
        let v = self.post("/se/log", json!({ "type": "browser" })).await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|e| LogEntry {
                        level: e["level"].as_str().unwrap_or_default().to_string(),
                        source: e["source"].as_str().unwrap_or_default().to_string(),
                        message: e["message"].as_str().unwrap_or_default().to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sets the viewport to `width`×`height` CSS pixels (the window is
    /// grown by whatever the browser itself takes).
    pub async fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({ "width": width, "height": height }))
            .await;
        let inner = self
            .execute("return [window.innerWidth, window.innerHeight]", json!([]))
            .await;
        let (w, h) = (
            inner[0].as_u64().unwrap_or(0) as u32,
            inner[1].as_u64().unwrap_or(0) as u32,
        );
        if (w, h) != (width, height) && w > 0 && h > 0 {
            self.post(
                "/window/rect",
                json!({ "width": 2 * width - w, "height": 2 * height - h }),
            )
            .await;
        }
    }

    /// A PNG of the viewport, written to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let b64 = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// Ends the session (Chromium quits).
    pub async fn close(mut self) {
        self.closed = true;
        let _ = self.http.delete(&self.base).send().await;
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        // A failed assertion: end the session from a thread of its own,
        // since this may run inside (or outside) a runtime.
        let base = self.base.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let _ = super::client::http().delete(&base).send().await;
            });
        })
        .join();
    }
}
