//! Test helper: a private `redis-server` on a unix socket in a temp dir.
//!
//! Owns starting it (and waiting until it answers PING), stopping it with
//! SIGTERM and starting it again on the same socket, running commands
//! through `redis-cli` (e.g. `CLIENT PAUSE`), and killing it on drop so no
//! server outlives its test. By default nothing persists (`--save ''`,
//! `--appendonly no`); [`RedisServer::start_with`] adds `redis-server`
//! arguments (e.g. `--appendonly yes` for a restart that keeps the data,
//! `--user …` for ACL users that come back with every restart), and
//! [`RedisServer::stopped`] gives a socket path where no server runs yet.
//!
//! Use [`RedisServer::shared`] for tests that only need *a* Redis (one
//! server per test binary while any test holds it; give each test its own
//! key prefix), and [`RedisServer::start`] for tests that stop, restart or
//! pause the server.
//!
//! Plain module file (no `mod` declarations) so other test crates can
//! include it; everything is synchronous and may be called from async tests
//! (it blocks briefly while the server starts or stops).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

const REDIS_SERVER: &str = "/usr/bin/redis-server";
const REDIS_CLI: &str = "redis-cli";
/// How long starting or stopping may take before the helper gives up.
const READY_DEADLINE: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_millis(10);

static SHARED: Mutex<Weak<RedisServer>> = Mutex::new(Weak::new());

/// A running (or stopped) private redis-server. Killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    dir: tempfile::TempDir,
    child: Mutex<Option<Child>>,
    /// Arguments after the defaults (later ones win), on every start.
    extra: Mutex<Vec<String>>,
}

impl RedisServer {
    /// Starts a new private server and waits until it answers PING.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts a new private server with `extra` arguments after the
    /// defaults (kept for every later start).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let server = RedisServer::stopped();
        server.set_args(extra);
        server.start_again();
        server
    }

    /// A socket path in a new temp dir where no server runs yet; start
    /// one there with [`RedisServer::start_again`].
    pub fn stopped() -> RedisServer {
        let dir = tempfile::Builder::new()
            .prefix("redis")
            .tempdir()
            .expect("create temp dir for redis");
        RedisServer {
            dir,
            child: Mutex::new(None),
            extra: Mutex::new(Vec::new()),
        }
    }

    /// Replaces the extra arguments used by the next start.
    pub fn set_args(&self, extra: &[&str]) {
        *self.extra.lock().unwrap_or_else(|e| e.into_inner()) =
            extra.iter().map(|a| (*a).to_owned()).collect();
    }

    /// The server shared by the tests of this binary that are running now;
    /// started on first use and killed when the last holder drops it.
    pub fn shared() -> Arc<RedisServer> {
        let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(server) = slot.upgrade() {
            return server;
        }
        let server = Arc::new(RedisServer::start());
        *slot = Arc::downgrade(&server);
        server
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("r.sock")
    }

    /// `redis+unix:///…/r.sock`, for the redis crate.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Starts the server (again) on the same socket and waits until it
    /// answers PING. Panics if it is already running or does not come up.
    pub fn start_again(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        assert!(child.is_none(), "redis-server is already running");
        let dir = self.dir.path();
        let extra = self.extra.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let spawned = Command::new(REDIS_SERVER)
            .arg("--port")
            .arg("0")
            .arg("--unixsocket")
            .arg(self.socket())
            .arg("--unixsocketperm")
            .arg("700")
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg("no")
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .args(&extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        *child = Some(spawned);
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if self.answers_ping() {
                return;
            }
            if let Some(c) = child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    *child = None;
                    panic!("redis-server exited with {status}:\n{}", self.log_tail());
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING in time:\n{}",
                self.log_tail()
            );
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// True if a fresh connection gets `+PONG` to `PING`.
    pub fn answers_ping(&self) -> bool {
        let Ok(mut conn) = UnixStream::connect(self.socket()) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
        if conn.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 7];
        conn.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    pub fn is_running(&self) -> bool {
        self.child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Sends SIGTERM and waits until the server has exited (and so removed
    /// its socket). Panics if it was not running.
    pub fn stop(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let mut running = child.take().expect("redis-server is not running");
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(running.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed: {status}");
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Ok(Some(_)) = running.try_wait() {
                return;
            }
            if Instant::now() >= deadline {
                let _ = running.kill();
                let _ = running.wait();
                panic!("redis-server ignored SIGTERM:\n{}", self.log_tail());
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Runs `redis-cli -s SOCKET ARGS…` and returns its trimmed stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(REDIS_CLI)
            .arg("-s")
            .arg(self.socket())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli");
        assert!(
            out.status.success(),
            "redis-cli {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `CLIENT PAUSE` for `d`: the server keeps accepting connections but
    /// answers no client commands until it ends.
    pub fn client_pause(&self, d: Duration) {
        let ms = d.as_millis().to_string();
        let reply = self.cli(&["CLIENT", "PAUSE", &ms]);
        assert_eq!(reply, "OK", "CLIENT PAUSE");
    }

    /// `CLIENT UNPAUSE`: ends a pause early.
    pub fn client_unpause(&self) {
        let reply = self.cli(&["CLIENT", "UNPAUSE"]);
        assert_eq!(reply, "OK", "CLIENT UNPAUSE");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut running) = child.take() {
            let _ = running.kill();
            let _ = running.wait();
        }
    }
}
