//! The bodies of `portcullis token`, `share` and `link`: each returns the
//! text to print (or an error to print), and `main` prints it. Commands
//! that work on the store need the Redis store (the memory store lives
//! inside the running gateway) and say so.

pub mod link;
pub mod share;
pub mod token;

use std::path::Path;

use crate::config::{Config, StoreConfig};
use crate::crypto::Key;
use crate::store::{Store, StoreSettings};

/// Why a command failed: one sentence, printed as `portcullis: …`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

/// The configuration at `path`; without one, `./gateway.toml` if it
/// exists, else the embedded demo configuration (as `portcullis` itself).
fn load(path: Option<&Path>) -> Result<Config, CliError> {
    let local = Path::new("gateway.toml");
    let loaded = match path {
        Some(p) => Config::load(p),
        None if local.exists() => Config::load(local),
        None => Config::embedded(),
    };
    loaded.map_err(|e| CliError(e.to_string()))
}

/// The audit trail of `config` (`[log] audit_file`), for a command's own
/// line.
fn audit(config: &Config) -> Result<crate::audit::Audit, CliError> {
    let path = config.log.audit_file.as_deref();
    crate::audit::Audit::open(path).map_err(|e| {
        CliError(format!(
            "log.audit_file ({}): {e}",
            path.map(|p| p.display().to_string()).unwrap_or_default()
        ))
    })
}

/// The server key (from `[session] secret_env` or `secret_file`): what
/// the running gateway MACs and hashes with.
fn key(config: &Config, what: &str) -> Result<Key, CliError> {
    match &config.session.secret {
        Some(secret) => Ok(Key::new(secret.expose())),
        None => Err(CliError(format!(
            "{what} needs session.secret_env or session.secret_file (the gateway's key), set here as for the gateway"
        ))),
    }
}

/// The shared Redis store, or why not.
async fn redis(config: &Config, what: &str) -> Result<Store, CliError> {
    if matches!(config.store, StoreConfig::Memory) {
        return Err(CliError(format!(
            "{what} needs [store] backend = \"redis\": the memory store lives inside the running gateway, out of reach of this command"
        )));
    }
    let settings = StoreSettings::from(&config.store);
    let url = settings.redacted_url().unwrap_or_default();
    Store::connect(&settings)
        .await
        .map_err(|e| CliError(format!("store.url ({url}): {e}")))
}

/// Runs a command's future on a runtime of its own.
pub fn block_on<T>(
    fut: impl std::future::Future<Output = Result<T, CliError>>,
) -> Result<T, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError(format!("cannot start the runtime: {e}")))?
        .block_on(fut)
}
