//! A real OpenID provider on `127.0.0.1:0`: the npm package
//! `oauth2-mock-server` run by `tests/oidc/provider.mjs` (a login page, the
//! client secret checked, codes usable once, ID tokens shaped per test,
//! key rotation, GitHub's `/user/emails`). The package lives in
//! `target/oidc-tools/node_modules`, where `.ci/run` installs it.
//!
//! [`Provider::start`] returns `None` (with a notice) when node or the
//! package is missing outside CI, like the other external tools.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The client secret the provider expects (the gateway reads it from
/// `PORTCULLIS_SECRET`, the one variable test configurations get).
pub const CLIENT_SECRET: &str = super::gateway::SECRET;
pub const CLIENT_ID: &str = "portcullis-test";

pub struct Provider {
    pub port: u16,
    child: Child,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn modules() -> Option<PathBuf> {
    let dir = repo().join("target/oidc-tools/node_modules");
    let ok = dir.join("oauth2-mock-server/package.json").is_file()
        && std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("node").is_file()));
    if ok {
        return Some(dir);
    }
    let reason = "node and npm oauth2-mock-server@8.1.0 in target/oidc-tools are needed \
                  (.ci/run installs them)";
    assert!(std::env::var_os("CI").is_none(), "{reason}");
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
    None
}

impl Provider {
    /// Starts the provider and waits for the line saying its port.
    pub async fn start() -> Option<Provider> {
        Provider::start_on(0).await
    }

    /// [`Provider::start`] on `port` (0: one the OS picks).
    pub async fn start_on(port: u16) -> Option<Provider> {
        let modules = modules()?;
        let mut child = Command::new("node")
            .arg(repo().join("tests/oidc/provider.mjs"))
            .arg(&modules)
            .env("PROVIDER_CLIENT_SECRET", CLIENT_SECRET)
            .env("PROVIDER_PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs");
        let stdout = tokio::process::ChildStdout::from_std(child.stdout.take().unwrap()).unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the provider says its port within 30 s")
            .unwrap()
            .expect("the provider printed a line");
        let v: Value = serde_json::from_str(&line).unwrap();
        let port = v["port"].as_u64().unwrap() as u16;
        Some(Provider { port, child })
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Shapes the next ID token (`aud`, `nonce`, `iss`, `exp_offset`,
    /// `email_verified`, `stray_key`).
    pub async fn next(&self, shape: Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/test/next", self.issuer()))
            .json(&shape)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }

    /// A new signing key, used from now on; returns its `kid`.
    pub async fn rotate(&self) -> String {
        let v: Value = reqwest::Client::new()
            .post(format!("{}/test/rotate", self.issuer()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["kid"].as_str().unwrap().to_string()
    }

    /// How often discovery, the JWKS and the token endpoint were asked.
    pub async fn stats(&self) -> Value {
        reqwest::get(format!("{}/test/stats", self.issuer()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `[[provider]]` tables for this provider: an OpenID one named `name`
    /// and, with `github`, a GitHub one named `gh` on the same server.
    pub fn config(&self, name: &str, label: &str, extra: &str) -> String {
        format!(
            "[[provider]]\nname = \"{name}\"\nlabel = \"{label}\"\nissuer = \"{}\"\n\
             client_id = \"{CLIENT_ID}\"\nclient_secret_env = \"PORTCULLIS_SECRET\"\n{extra}\n",
            self.issuer()
        )
    }

    pub fn github_config(&self, name: &str, label: &str) -> String {
        let base = self.issuer();
        format!(
            "[[provider]]\nname = \"{name}\"\nlabel = \"{label}\"\nkind = \"github\"\n\
             authorize_url = \"{base}/authorize\"\ntoken_url = \"{base}/token\"\n\
             api_url = \"{base}/github\"\n\
             client_id = \"{CLIENT_ID}\"\nclient_secret_env = \"PORTCULLIS_SECRET\"\n"
        )
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
