//! A gateway in this process, on a port from the OS, or the real binary
//! as a child process (for RSS, signals and the CLI). Both follow the test
//! mode ([`super::mode`]): `fast_path = false` in every configuration made
//! here when the fast paths are off, and a TLS listener (with the URLs
//! saying `https`) on the TLS listener.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::config::Config;
use portcullis::transport::{self as server, Listeners};
use portcullis::App;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Parses a test config; `$PORT` in the text becomes the gateway's port.
/// Follows the test mode ([`super::mode::config_text`]).
pub fn config(text: &str, port: u16) -> Config {
    let text = super::mode::config_text(&text.replace("$PORT", &port.to_string()));
    let config = Config::from_toml_str(&text, "test.toml", &[("PORTCULLIS_SECRET", SECRET)])
        .unwrap_or_else(|e| panic!("test config invalid:\n{e}\n{text}"));
    if !super::mode::sets_fast_path(&text) {
        assert_eq!(
            config.server.limits.fast_path,
            super::mode::fast_path(),
            "the mode's fast_path is not in:\n{text}"
        );
    }
    config
}

pub struct TestGateway {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestGateway {
    /// Starts a gateway for `text` on 127.0.0.1:0: plain HTTP, or in the
    /// TLS mode a TLS listener (`addr`, `$PORT`) besides a plain one that
    /// the tests do not use.
    pub async fn start(text: &str) -> TestGateway {
        install_crypto();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        if super::mode::tls() {
            let tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let config = config(text, tls.local_addr().unwrap().port());
            return Self::start_on(listener, Some((tls, super::mode::server_tls())), config).await;
        }
        let addr = listener.local_addr().unwrap();
        let config = config(text, addr.port());
        Self::start_on(listener, None, config).await
    }

    pub async fn start_on(
        plain: TcpListener,
        tls: Option<(TcpListener, Arc<rustls::ServerConfig>)>,
        config: Config,
    ) -> TestGateway {
        install_crypto();
        let addr = match &tls {
            Some((l, _)) => l.local_addr().unwrap(),
            None => plain.local_addr().unwrap(),
        };
        let app = App::new(config).await.expect("gateway starts");
        let (tx, rx) = oneshot::channel::<()>();
        let served = app.clone();
        let task = tokio::spawn(async move {
            server::serve(
                Listeners {
                    plain: Some(plain),
                    tls,
                },
                served,
                async {
                    let _ = rx.await;
                },
            )
            .await;
        });
        TestGateway {
            addr,
            app,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:<port><path>` (`https` on the TLS listener).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    pub fn origin(&self) -> String {
        format!("{}://127.0.0.1:{}", super::mode::scheme(), self.addr.port())
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The real `portcullis` binary serving `config_path`.
pub struct GatewayProcess {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_portcullis")
}

impl GatewayProcess {
    /// Writes `text` (with `$PORT` replaced by a free port) to `dir` and
    /// starts the binary on it; returns once it logs that it listens there.
    /// Follows the test mode: on the TLS listener `listen` becomes
    /// `tls_listen` (the port then speaks TLS), with a certificate in `dir`.
    pub fn start(dir: &Path, text: &str) -> GatewayProcess {
        // A port free a moment ago can be taken by another test before the
        // child binds it: the child then exits naming the key, and the
        // start is tried again on another port.
        for _ in 0..5 {
            if let Some(gw) = Self::try_start(dir, text) {
                return gw;
            }
        }
        panic!("five free ports were taken before the gateway could bind them");
    }

    /// One start on a fresh port: `None` when the port was taken. Ready is
    /// the gateway's own start-up line naming its port (a connection alone
    /// could reach whoever took the port instead).
    fn try_start(dir: &Path, text: &str) -> Option<GatewayProcess> {
        let port = free_port();
        let text = super::mode::process_config_text(&text.replace("$PORT", &port.to_string()), dir);
        let config_path = dir.join("gateway.toml");
        std::fs::write(&config_path, text).unwrap();
        let log = dir.join("gateway.log");
        let child = Command::new(binary())
            .arg("--config")
            .arg(&config_path)
            .current_dir(dir)
            .env("PORTCULLIS_SECRET", SECRET)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut gw = GatewayProcess { child, port, log };
        let address = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = gw.log_text();
            if text
                .lines()
                .any(|l| l.contains("listening (http") && l.contains(&address))
            {
                return Some(gw);
            }
            if gw.child.try_wait().unwrap().is_some() {
                let text = gw.log_text();
                assert!(
                    text.contains(&format!("cannot listen on {address}")),
                    "gateway exited at start:\n{text}"
                );
                return None;
            }
            assert!(Instant::now() < deadline, "gateway did not start:\n{text}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `http://127.0.0.1:<port><path>` (`https` on the TLS listener).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    pub fn origin(&self) -> String {
        format!("{}://127.0.0.1:{}", super::mode::scheme(), self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Peak resident set size (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        proc_status_kib(self.child.id(), "VmHWM:")
    }

    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.child.id(), "VmRSS:")
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

pub use super::ports::free_port;

/// `portcullis ARGS` on the configuration `text` (written to a temporary
/// file, with the test secret in the environment): exit code, stdout and
/// stderr.
pub fn run_cli(text: &str, args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(binary())
        .arg("--config")
        .arg(&file)
        .args(args)
        .env("PORTCULLIS_SECRET", SECRET)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}
