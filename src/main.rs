//! The `portcullis` command: serve, check a configuration, or revoke an
//! address's sessions. The only place that prints to the terminal and
//! the only user of `anyhow`.

mod keys_cli;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use portcullis::app::App;
use portcullis::audit;
use portcullis::config::{self, Config};
use portcullis::store::Store;
use portcullis::transport::{self as server, StdListeners};

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "An authenticating reverse proxy with email sign-in"
)]
struct Cli {
    /// The configuration file. Default: ./gateway.toml if it exists, else
    /// the embedded demo configuration.
    #[arg(long, global = true, env = "PORTCULLIS_CONFIG")]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a configuration and print its route table (exit 0 if valid,
    /// 1 with every error otherwise).
    Check {
        /// Also connect to the store (Redis PING) and the SMTP server
        /// (greeting and NOOP, no message), and say whether each answers.
        #[arg(long)]
        connect: bool,
    },
    /// End every session of an address (needs the redis store; the same
    /// as `sessions revoke --email`).
    Revoke {
        /// The email address.
        email: String,
    },
    /// List or end the sessions of an address (needs the redis store).
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Serve the embedded demo configuration (the demo app behind email
    /// sign-in, mail printed here, everything in memory), whatever the
    /// configuration file. `portcullis` with no configuration file does
    /// the same.
    Demo {
        /// Where to listen (default 127.0.0.1:8080); the links in the
        /// mail point at it. Port 0 takes a free port.
        #[arg(long, env = "PORTCULLIS_LISTEN", value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Print the embedded demo configuration, to start a gateway.toml from.
    DemoConfig,
    /// Which route a URL falls on and what the gateway decides for it
    /// (exit 0 if it would pass, 1 if not or on an error).
    Policy {
        /// The URL as the browser asks for it (https://app.example.com/x).
        #[arg(long)]
        url: String,
        /// Signed in as this address (absent: signed out).
        #[arg(long)]
        email: Option<String>,
        /// The request's method.
        #[arg(long, default_value = "GET")]
        method: String,
        /// The client's address (for bypass_networks).
        #[arg(long, default_value = "192.0.2.1")]
        ip: std::net::IpAddr,
    },
    /// Signing keys for [assertion]: make one, or print the published JWKS.
    #[command(subcommand)]
    Keys(keys_cli::KeysCommand),
    /// Machine tokens: `token new NAME` prints a fresh secret and the
    /// [[token]] lines to paste.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Make a share link (--path), or list or revoke them.
    Share(portcullis::cli::share::ShareArgs),
    /// A sign-in link for an address, for support staff to hand over
    /// (works once; needs the redis store; audited, without the link).
    Link {
        #[arg(long)]
        email: String,
        /// Where to land after signing in (a path, or an https URL on a
        /// route's host).
        #[arg(long)]
        rd: Option<String>,
    },
    /// Probe a running gateway (for a container HEALTHCHECK): exit 0 if the
    /// URL answers 200 within the timeout, 1 otherwise.
    Health {
        /// What to GET (plain HTTP).
        #[arg(long, default_value = portcullis::health_probe::DEFAULT_URL)]
        url: String,
        /// How long to wait, in seconds.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// Each live session of the address: when it started, when it ends,
    /// and the first 12 hex digits of its id hash (as in the audit log).
    List {
        #[arg(long)]
        email: String,
    },
    /// End every session of the address (or of everyone, with --all), on
    /// every instance.
    Revoke {
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        email: Option<String>,
        /// Every session of every address.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// A fresh secret (32 random bytes, base64url) and the lines to paste.
    New {
        name: String,
        /// A group the token is a member of (repeatable; default: NAME).
        #[arg(long = "group")]
        groups: Vec<String>,
    },
}

/// What `serve` serves.
enum Source {
    /// A configuration file.
    File(PathBuf),
    /// The embedded demo configuration, perhaps on another address.
    Demo { listen: Option<SocketAddr> },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Some(Command::Check { connect }) => check(cli.config.as_deref(), connect),
        Some(Command::Revoke { email })
        | Some(Command::Sessions(SessionsCommand::Revoke {
            email: Some(email), ..
        })) => run_async(revoke(cli.config, email)),
        Some(Command::Sessions(SessionsCommand::Revoke { email: None, .. })) => {
            run_async(revoke_everyone(cli.config))
        }
        Some(Command::Sessions(SessionsCommand::List { email })) => {
            run_async(list_sessions(cli.config, email))
        }
        Some(Command::Demo { listen }) => serve(Source::Demo { listen }),
        Some(Command::DemoConfig) => demo_config(),
        Some(Command::Policy {
            url,
            email,
            method,
            ip,
        }) => policy(cli.config.as_deref(), &url, &method, email.as_deref(), ip),
        Some(Command::Health { url, timeout }) => health(&url, timeout),
        Some(Command::Keys(command)) => keys_cli::run(command, cli.config.as_deref()),
        Some(Command::Token(TokenCommand::New { name, groups })) => {
            printed(portcullis::cli::token::new(&name, &groups))
        }
        Some(Command::Share(args)) => printed(portcullis::cli::block_on(
            portcullis::cli::share::run(cli.config.as_deref(), args),
        )),
        Some(Command::Link { email, rd }) => printed(portcullis::cli::block_on(
            portcullis::cli::link::run(cli.config.as_deref(), &email, rd.as_deref()),
        )),
        None => match resolve(cli.config.as_deref()) {
            Some(path) => serve(Source::File(path)),
            None => match demo_listen_from_env() {
                Ok(listen) => serve(Source::Demo { listen }),
                Err(e) => {
                    eprintln!("portcullis: {e}");
                    ExitCode::FAILURE
                }
            },
        },
    }
}

/// `PORTCULLIS_LISTEN` for the demo served when there is no configuration
/// file (`portcullis demo` reads it through clap).
fn demo_listen_from_env() -> Result<Option<SocketAddr>, String> {
    match std::env::var("PORTCULLIS_LISTEN") {
        Ok(v) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("PORTCULLIS_LISTEN: {v:?} is not an address like 127.0.0.1:9000")),
        Err(_) => Ok(None),
    }
}

/// `portcullis demo-config`: the embedded configuration as it is compiled in.
fn demo_config() -> ExitCode {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(config::EMBEDDED_DEFAULT.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: cannot write the configuration: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // The audit trail carries full addresses: it stays out of the ordinary
    // log (which masks them) unless RUST_LOG names its target.
    let named = std::env::var("RUST_LOG").is_ok_and(|v| v.contains("portcullis::audit"));
    let filter = if named {
        filter
    } else {
        match "portcullis::audit=off".parse() {
            Ok(directive) => filter.add_directive(directive),
            Err(_) => filter,
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn run_async(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("portcullis: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a command's text (exit 0) or its error (exit 1).
fn printed(result: Result<String, portcullis::cli::CliError>) -> ExitCode {
    use std::io::Write as _;
    match result {
        Ok(text) => {
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("portcullis: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where the configuration comes from.
fn resolve(path: Option<&Path>) -> Option<PathBuf> {
    match path {
        Some(p) => Some(p.to_path_buf()),
        None => {
            let local = PathBuf::from("gateway.toml");
            local.exists().then_some(local)
        }
    }
}

fn load(path: Option<&Path>) -> Result<Config, config::ConfigError> {
    match resolve(path) {
        Some(p) => Config::load(&p),
        None => Config::embedded(),
    }
}

fn check(path: Option<&Path>, connect: bool) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("{}: {} error(s)", e.file, e.problems.len());
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = tls_config(&config) {
        eprintln!("{e}");
        eprintln!("{}: {} error(s)", e.file, e.problems.len());
        return ExitCode::FAILURE;
    }
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    // Written with writeln! so a closed pipe (`check | head`) is not a panic.
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}: valid", config.source);
    let _ = writeln!(
        out,
        "{:<28} {:<24} {:<14} {:<12} {:<26} who",
        "route", "host", "path", "methods", "upstream"
    );
    for r in &config.routes {
        let methods = match &r.methods {
            None => "any".to_string(),
            Some(m) => m.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(","),
        };
        let _ = writeln!(
            out,
            "{:<28} {:<24} {:<14} {:<12} {:<26} {}",
            r.name,
            r.host.as_deref().unwrap_or("(any)"),
            r.path,
            methods,
            r.upstream.to_string(),
            who(r, &config.groups)
        );
        if let Some(settings) = r.upstream_settings() {
            let _ = writeln!(out, "    {}: {settings}", r.name);
        }
    }
    if !config.groups.is_empty() {
        let _ = writeln!(out, "groups: {}", config.groups.names().join(", "));
    }
    drop(out);
    if connect {
        return check_connections(&config);
    }
    ExitCode::SUCCESS
}

/// `check --connect`: the store and the mail server, each answering or
/// not; exit 1 if either does not.
fn check_connections(config: &Config) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("portcullis: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (store, mail) = runtime.block_on(async {
        let settings = portcullis::store::StoreSettings::from(&config.store);
        let store = match &config.store {
            config::StoreConfig::Memory => Ok("store: memory, nothing to reach".to_string()),
            _ => {
                let url = settings.redacted_url().unwrap_or_default();
                match Store::connect(&settings).await {
                    Ok(s) => match s.ping().await {
                        Ok(()) => Ok(format!("store.url ({url}): answers PING")),
                        Err(e) => Err(format!("store.url ({url}): {e}")),
                    },
                    Err(e) => Err(format!("store.url ({url}): {e}")),
                }
            }
        };
        let mail =
            portcullis::mail::check_reachable(&portcullis::mail::MailSettings::from(config)).await;
        (store, mail)
    });
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let mut ok = true;
    for result in [store, mail] {
        let _ = match result {
            Ok(line) => writeln!(out, "ok: {line}"),
            Err(line) => {
                ok = false;
                writeln!(out, "FAILED: {line}")
            }
        };
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `portcullis policy`: the decision for one request, in words.
fn policy(
    path: Option<&Path>,
    url: &str,
    method: &str,
    email: Option<&str>,
    ip: std::net::IpAddr,
) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let e = match portcullis::policy::explain(&config, url, method, email, ip) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("portcullis policy: {e}");
            return ExitCode::FAILURE;
        }
    };
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "route:    {}", e.route.as_deref().unwrap_or("(none)"));
    let _ = writeln!(out, "decision: {} ({})", e.decision, e.status);
    let _ = writeln!(out, "why:      {}", e.reason);
    if !e.groups.is_empty() {
        let _ = writeln!(out, "groups:   {}", e.groups);
    }
    if e.passes() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn health(url: &str, timeout: u64) -> ExitCode {
    let timeout = std::time::Duration::from_secs(timeout.max(1));
    match portcullis::health_probe::probe(url, timeout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis health: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Who passes a route, in the order the rules apply (`deny`, public,
/// `bypass_networks`, then the allow lists).
fn who(r: &config::RouteConfig, groups: &portcullis::groups::Groups) -> String {
    if r.deny {
        return "nobody (deny: 403)".to_string();
    }
    let mut who = match r.access {
        config::Access::Public => "anyone (public)".to_string(),
        config::Access::Authenticated if r.allow.is_empty() => "any signed-in user".to_string(),
        config::Access::Authenticated => {
            let mut v: Vec<String> = r.allow.emails.iter().cloned().collect();
            v.extend(r.allow.domains.iter().map(|d| format!("@{d}")));
            v.extend(
                r.allow
                    .groups
                    .iter()
                    .map(|&g| format!("group {}", groups.name(g))),
            );
            v.join(", ")
        }
    };
    if !r.bypass_networks.is_empty() {
        let nets: Vec<String> = r.bypass_networks.iter().map(|n| n.to_string()).collect();
        who = format!("{who}; without a session from {}", nets.join(", "));
    }
    who
}

/// The shared Redis store and the key naming an address's index, for the
/// commands that work on sessions from outside the gateway; `what` names
/// the command in the errors.
async fn session_store(
    path: Option<&Path>,
    email: &str,
    what: &str,
) -> anyhow::Result<(String, String, Store, String)> {
    let email = portcullis::address::parse(email)
        .map_err(|e| anyhow::anyhow!("{email:?} is not one email address ({e})"))?;
    let (key, store, url) = redis_store(path, what).await?;
    let index = key.hash_hex("email", email.as_bytes());
    Ok((email, index, store, url))
}

/// The shared Redis store, the key and the store's URL (password
/// hidden), for the session commands.
async fn redis_store(
    path: Option<&Path>,
    what: &str,
) -> anyhow::Result<(portcullis::crypto::Key, Store, String)> {
    let config = load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    if matches!(config.store, config::StoreConfig::Memory) {
        anyhow::bail!("the memory store lives inside the running gateway; {what} needs [store] backend = \"redis\"");
    }
    let Some(secret) = &config.session.secret else {
        anyhow::bail!("{what} needs session.secret_env or session.secret_file (the key names the address's index)");
    };
    let key = portcullis::crypto::Key::new(secret.expose());
    let settings = portcullis::store::StoreSettings::from(&config.store);
    let url = settings.redacted_url().unwrap_or_default();
    let store = Store::connect(&settings)
        .await
        .map_err(|e| anyhow::anyhow!("store.url ({url}): {e}"))?;
    Ok((key, store, url))
}

/// `portcullis sessions revoke --all`: every index, each revoked (and
/// published) as `revoke` does.
async fn revoke_everyone(path: Option<PathBuf>) -> anyhow::Result<()> {
    let (_, store, url) = redis_store(path.as_deref(), "sessions revoke --all").await?;
    let failed = |e| anyhow::anyhow!("store.url ({url}): {e}");
    let (mut sessions, mut addresses) = (0, 0);
    for index in store.indexes().await.map_err(failed)? {
        let n = store.revoke_all(&index).await.map_err(failed)?;
        sessions += n;
        addresses += usize::from(n > 0);
    }
    println!("ended {sessions} session(s) of {addresses} address(es)");
    Ok(())
}

async fn revoke(path: Option<PathBuf>, email: String) -> anyhow::Result<()> {
    let (email, index, store, url) = session_store(path.as_deref(), &email, "revoke").await?;
    let n = store
        .revoke_all(&index)
        .await
        .map_err(|e| anyhow::anyhow!("store.url ({url}): {e}"))?;
    println!("ended {n} session(s) of {email}");
    Ok(())
}

/// `portcullis sessions list --email E`.
async fn list_sessions(path: Option<PathBuf>, email: String) -> anyhow::Result<()> {
    let (email, index, store, url) =
        session_store(path.as_deref(), &email, "sessions list").await?;
    let list = store
        .list_sessions(&index)
        .await
        .map_err(|e| anyhow::anyhow!("store.url ({url}): {e}"))?;
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{} session(s) of {email}", list.len());
    for (id, record) in &list {
        let _ = writeln!(
            out,
            "{}  started {}  ends {}",
            id.get(..12).unwrap_or(id),
            portcullis::pages::when::utc(record.created_at),
            portcullis::pages::when::utc(record.expires_at),
        );
    }
    Ok(())
}

/// Serving: SIGHUP is caught first (its default action ends the process,
/// and a reload asked for during start-up or of the embedded configuration
/// must not); then the configuration is loaded and the sockets bound
/// (errors name the file and the key); then worker 0 runs on this thread
/// in a current-thread runtime and starts the others.
fn serve(source: Source) -> ExitCode {
    let started = std::time::Instant::now();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("portcullis: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let hangups = {
        let _entered = runtime.enter();
        catch_hangups()
    };
    let loaded = match &source {
        Source::File(path) => Config::load(path),
        Source::Demo { listen } => Config::demo(*listen),
    };
    let mut config = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let listeners = match bind(&config) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // The demo's links point at the address it got (port 0 included).
    if let (Source::Demo { listen: Some(_) }, Some(l)) = (&source, &listeners.plain) {
        match l.local_addr() {
            Ok(addr) => config.server.public_url = config::PublicUrl::for_listener(addr),
            Err(e) => {
                eprintln!("portcullis: server.listen: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let source = match source {
        Source::File(path) => Some(path),
        Source::Demo { .. } => None,
    };
    let admin = match config.admin.listen {
        Some(addr) => match std::net::TcpListener::bind(addr) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!(
                    "{}",
                    config::ConfigError::single(
                        &config.source,
                        "admin.listen",
                        format!("cannot listen on {addr}: {e}"),
                    )
                );
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    match runtime.block_on(run(config, source, listeners, admin, started, hangups)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The TLS files read into a rustls configuration (when TLS is on); a
/// problem names the file, the key and the path. `check` and `serve` both
/// use it, so `check` refuses what serving would.
fn tls_config(config: &Config) -> Result<Option<Arc<rustls::ServerConfig>>, config::ConfigError> {
    let Some(t) = &config.server.tls else {
        return Ok(None);
    };
    portcullis::transport::tls::server_config(&t.cert, &t.key)
        .map(Some)
        .map_err(|e| config::ConfigError::single(&config.source, e.key(), e.detail()))
}

fn bind(config: &Config) -> Result<StdListeners, config::ConfigError> {
    let listen = |key: &str, addr: std::net::SocketAddr| {
        std::net::TcpListener::bind(addr).map_err(|e| {
            config::ConfigError::single(
                &config.source,
                key,
                format!("cannot listen on {addr}: {e}"),
            )
        })
    };
    let tls = match (&config.server.tls, tls_config(config)?) {
        (Some(t), Some(server_config)) => {
            Some((listen("server.tls_listen", t.listen)?, server_config))
        }
        _ => None,
    };
    let plain = match config.server.listen {
        Some(addr) => Some(listen("server.listen", addr)?),
        None => None,
    };
    Ok(StdListeners { plain, tls })
}

async fn run(
    config: Config,
    source: Option<PathBuf>,
    listeners: StdListeners,
    admin: Option<std::net::TcpListener>,
    started: std::time::Instant,
    hangups: Hangups,
) -> anyhow::Result<()> {
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let embedded = source.is_none();
    let public = config.server.public_url.origin();
    let threads = config.server.threads;
    let app = App::new(config).await?;
    if let Some(l) = &listeners.plain {
        tracing::info!(address = %l.local_addr()?, threads, "listening (http)");
    }
    if let Some((l, _)) = &listeners.tls {
        tracing::info!(address = %l.local_addr()?, threads, "listening (https)");
    }
    if let Some(l) = admin {
        l.set_nonblocking(true)?;
        let l = tokio::net::TcpListener::from_std(l)?;
        tracing::info!(address = %l.local_addr()?, "listening (admin)");
        let app = app.clone();
        tokio::spawn(portcullis::transport::admin::serve(
            l,
            move |method, path| {
                let app = app.clone();
                async move { app.admin(method, &path).await }
            },
        ));
    }
    tracing::info!(
        ms = started.elapsed().as_millis() as u64,
        "ready: open {public}/"
    );
    if embedded {
        eprintln!(
            "\n  Portcullis is running its demo (the embedded configuration).\n  Open {public}/ , sign in with any email address,\n  and follow the link printed here (mail is also written to ./mail).\n  Another address: portcullis demo --listen 127.0.0.1:9000\n  A configuration to start from: portcullis demo-config > gateway.toml\n"
        );
    }
    spawn_reloader(app.clone(), source, hangups);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    server::run_workers(threads, listeners, app, stopped).await?;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// SIGHUP, caught from the start of [`serve`]: signals that arrive before
/// the reloader runs are kept for it.
#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = ();

/// Must run inside the runtime.
fn catch_hangups() -> Hangups {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("portcullis: cannot catch SIGHUP (reload): {e}");
                None
            }
        }
    }
}

/// SIGHUP: read the file again; keep the old configuration if the new one
/// is invalid. On the embedded configuration there is no file: say so.
fn spawn_reloader(app: Arc<App>, source: Option<PathBuf>, hangups: Hangups) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Some(mut hup) = hangups else {
            return;
        };
        while hup.recv().await.is_some() {
            let Some(path) = &source else {
                tracing::warn!(
                    "SIGHUP: no configuration file to reload (the embedded demo configuration is in use)"
                );
                continue;
            };
            match Config::load(path) {
                Ok(config) => {
                    for w in &config.warnings {
                        tracing::warn!("{w}");
                    }
                    for note in app.reload(config) {
                        tracing::warn!("{note}");
                    }
                    tracing::info!(file = %path.display(), "configuration reloaded");
                    app.reloaded(true);
                    let file = path.display().to_string();
                    app.audit(
                        &audit::Entry::new(audit::Event::ConfigReloaded, audit::Outcome::Success)
                            .reason(&file),
                    );
                }
                Err(e) => {
                    tracing::error!("configuration not reloaded, keeping the old one:\n{e}");
                    app.reloaded(false);
                    let reason = e.to_string();
                    app.audit(
                        &audit::Entry::new(audit::Event::ConfigReloadFailed, audit::Outcome::Error)
                            .reason(&reason),
                    );
                }
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (app, source, hangups);
}

/// mimalloc: each worker thread allocates and frees a few dozen blocks per
/// request, some of them kilobytes (read and write buffers); glibc sends
/// those through its slow path, mimalloc's per-thread free lists do not
/// (measured: 7,000 fewer instructions per proxied request). The one
/// static of the program; Rust needs the allocator to be one.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
