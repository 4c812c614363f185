//! `portcullis share --path P [--ttl 7d] [--email E] [--host H] [--prefix]
//! [--method M]…` (a share link's URL), `share list` and `share revoke ID`.
//!
//! The link is stateless (its scope is inside its MAC), so it can be made
//! with either store; with Redis its record (the scope, never the token)
//! is kept for `list` until it ends, and `revoke` marks its id revoked in
//! the store, which every gateway reads on each shared request. With the
//! memory store `list` and `revoke` cannot reach the running gateway's
//! state and say so (exit 1); the only way to end such links early is a
//! new session secret.

use std::path::Path;

use clap::{Args, Subcommand};

use super::CliError;
use crate::audit::{Entry, Event, Outcome};
use crate::config::Config;
use crate::session::now_unix;
use crate::share::{self, Grant};

/// `portcullis share`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ShareArgs {
    #[command(subcommand)]
    pub command: Option<ShareCommand>,
    /// The path to share (a canonical path: /reports/66).
    #[arg(long)]
    pub path: Option<String>,
    /// How long the link works (default [share] default_ttl, at most
    /// max_ttl): 90m, 12h, 7d.
    #[arg(long)]
    pub ttl: Option<String>,
    /// The address the link is for: sent upstream as X-Forwarded-Email.
    #[arg(long)]
    pub email: Option<String>,
    /// The host it works on (default public_url's).
    #[arg(long)]
    pub host: Option<String>,
    /// Also every path under --path (/reports/66/…, never /reports/66x).
    #[arg(long)]
    pub prefix: bool,
    /// A method it opens (repeatable; GET also opens HEAD; default
    /// [share] methods).
    #[arg(long = "method")]
    pub methods: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ShareCommand {
    /// Every live share link: id, host, path, methods, end, address and
    /// whether it was revoked (Redis store).
    List,
    /// Stop a share link now, on every gateway sharing the store (Redis
    /// store).
    Revoke {
        /// The link's id (from `share` or `share list`).
        id: String,
    },
}

/// Runs `portcullis share …`; the text to print.
pub async fn run(config: Option<&Path>, args: ShareArgs) -> Result<String, CliError> {
    let config = super::load(config)?;
    match args.command {
        Some(ShareCommand::List) => list(&config).await,
        Some(ShareCommand::Revoke { id }) => revoke(&config, &id).await,
        None => create(&config, args).await,
    }
}

/// The grant `args` describe, checked against `config`.
fn grant(config: &Config, args: &ShareArgs, now: u64) -> Result<(Grant, String), CliError> {
    let Some(path) = args.path.clone() else {
        return Err(CliError(
            "say what to share: --path /reports/66 (or use share list, share revoke ID)".into(),
        ));
    };
    if !share::valid_path(&path) {
        return Err(CliError(format!(
            "--path {path:?} is not a canonical path (it must start with /, without //, dot segments, ; or bad escapes)"
        )));
    }
    let s = &config.share;
    let ttl = match &args.ttl {
        None => s.default_ttl,
        Some(t) => {
            crate::config::values::duration(t).map_err(|e| CliError(format!("--ttl: {e}")))?
        }
    };
    if ttl.is_zero() || ttl > s.max_ttl {
        return Err(CliError(format!(
            "--ttl must be longer than zero and at most share.max_ttl ({}s)",
            s.max_ttl.as_secs()
        )));
    }
    let public = &config.server.public_url;
    let host = match &args.host {
        Some(h) => {
            let h = h.trim().to_ascii_lowercase();
            if !crate::routes::valid_host(&h) {
                return Err(CliError(format!("--host {h:?} is not a host name")));
            }
            h
        }
        None => public.host.clone(),
    };
    let name = crate::config::strip_port(&host);
    let name = name.strip_suffix('.').unwrap_or(name).to_string();
    let mut methods: Vec<String> = if args.methods.is_empty() {
        s.methods.iter().map(|m| m.as_str().to_string()).collect()
    } else {
        let mut out = Vec::new();
        for m in &args.methods {
            let upper = m.trim().to_ascii_uppercase();
            if http::Method::from_bytes(upper.as_bytes()).is_err() || upper.is_empty() {
                return Err(CliError(format!("--method {m:?} is not an HTTP method")));
            }
            out.push(upper);
        }
        out
    };
    if methods.iter().any(|m| m == "GET") {
        methods.push("HEAD".into());
    }
    methods.sort();
    methods.dedup();
    let email = match &args.email {
        Some(e) => Some(
            crate::address::parse(e)
                .map_err(|why| CliError(format!("--email {e:?} is not one address ({why})")))?,
        ),
        None => None,
    };
    let grant = Grant {
        id: share::new_id(),
        host: name,
        path,
        prefix: args.prefix,
        methods,
        iat: now,
        exp: now.saturating_add(ttl.as_secs()),
        email,
    };
    Ok((grant, public.origin_for(&host)))
}

async fn create(config: &Config, args: ShareArgs) -> Result<String, CliError> {
    if !config.share.enabled {
        return Err(CliError(
            "share links are off: set [share] enabled = true (and reload the gateway) first".into(),
        ));
    }
    let key = super::key(config, "share")?;
    let now = now_unix();
    let (grant, origin) = grant(config, &args, now)?;
    let token = grant.mint(&key);
    let mut note = String::new();
    if matches!(config.store, crate::config::StoreConfig::Memory) {
        note = "note: with the memory store this link cannot be listed or revoked; it works until it ends (or the session secret changes)\n".into();
    } else {
        let store = super::redis(config, "share").await?;
        let record = serde_json::to_string(&grant).unwrap_or_default();
        store
            .put_share(
                &grant.id,
                &record,
                std::time::Duration::from_secs(grant.left(now)),
            )
            .await
            .map_err(|e| CliError(format!("store: {e}")))?;
    }
    let reason = format!("share {} {}{}", grant.id, grant.path, star(&grant));
    super::audit(config)?.record(
        &Entry::new(Event::ShareCreated, Outcome::Success)
            .email(grant.email.as_deref().unwrap_or(""))
            .reason(&reason),
    );
    Ok(format!(
        "{origin}{}{token}\nid {}  {}{}  {}  until {}\n{note}",
        share::ENDPOINT,
        grant.id,
        grant.path,
        star(&grant),
        grant.methods.join(","),
        crate::pages::when::utc(grant.exp),
    ))
}

fn star(g: &Grant) -> &'static str {
    if g.prefix {
        "/*"
    } else {
        ""
    }
}

async fn list(config: &Config) -> Result<String, CliError> {
    let store = super::redis(config, "share list").await?;
    let failed = |e| CliError(format!("store: {e}"));
    let mut grants: Vec<Grant> = store
        .shares()
        .await
        .map_err(failed)?
        .iter()
        .filter_map(|r| serde_json::from_str(r).ok())
        .collect();
    grants.sort_by(|a, b| (a.iat, &a.id).cmp(&(b.iat, &b.id)));
    let mut out = format!("{} share link(s)\n", grants.len());
    for g in &grants {
        let revoked = store
            .count(&share::revoked_key(&g.id))
            .await
            .map_err(failed)?
            > 0;
        out.push_str(&format!(
            "{}  {}{}{}  {}  until {}  {}{}\n",
            g.id,
            g.host,
            g.path,
            star(g),
            g.methods.join(","),
            crate::pages::when::utc(g.exp),
            g.email.as_deref().unwrap_or("-"),
            if revoked { "  REVOKED" } else { "" },
        ));
    }
    Ok(out)
}

async fn revoke(config: &Config, id: &str) -> Result<String, CliError> {
    let store = super::redis(config, "share revoke").await?;
    let failed = |e| CliError(format!("store: {e}"));
    let grant = store
        .shares()
        .await
        .map_err(failed)?
        .iter()
        .filter_map(|r| serde_json::from_str::<Grant>(r).ok())
        .find(|g| g.id == id);
    let Some(grant) = grant else {
        return Err(CliError(format!("no live share link has the id {id:?}")));
    };
    let left = std::time::Duration::from_secs(grant.left(now_unix()).max(1));
    store
        .hit(&share::revoked_key(&grant.id), left)
        .await
        .map_err(failed)?;
    let reason = format!("share {} {}{}", grant.id, grant.path, star(&grant));
    super::audit(config)?.record(
        &Entry::new(Event::ShareRevoked, Outcome::Success)
            .email(grant.email.as_deref().unwrap_or(""))
            .reason(&reason),
    );
    Ok(format!(
        "revoked {id} ({}{}): refused from the next request on\n",
        grant.path,
        star(&grant)
    ))
}
