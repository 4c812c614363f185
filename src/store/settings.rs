//! Which backend the store uses and how to reach it: [`StoreSettings`],
//! made from the configuration's `[store]` (or by tests directly).
//!
//! The Redis settings are the configuration's own typed value
//! ([`crate::config::store::RedisSettings`]); this module only names the
//! choice between the backends and keeps its `Debug` free of secrets.

use std::fmt;

pub use crate::config::store::{RedisMode, RedisSettings, RedisTls};
use crate::config::StoreConfig;

/// Which backend to use, and how to reach it.
#[derive(Clone, PartialEq, Eq)]
// Made once per start; tests build it directly.
#[allow(clippy::large_enum_variant)]
pub enum StoreSettings {
    /// State in this process only (one instance, lost on restart).
    Memory,
    /// State in Redis, shared by every instance using the same deployment
    /// and prefix.
    Redis(RedisSettings),
}

impl From<&StoreConfig> for StoreSettings {
    fn from(config: &StoreConfig) -> StoreSettings {
        match config {
            StoreConfig::Memory => StoreSettings::Memory,
            StoreConfig::Redis(r) => StoreSettings::Redis(r.clone()),
        }
    }
}

impl fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSettings::Memory => f.write_str("Memory"),
            StoreSettings::Redis(r) => r.fmt(f),
        }
    }
}

impl StoreSettings {
    /// The Redis address(es) with any password replaced, for messages
    /// (`a, b` when there are several); `None` in memory.
    pub fn redacted_url(&self) -> Option<String> {
        match self {
            StoreSettings::Memory => None,
            StoreSettings::Redis(r) => Some(
                r.urls
                    .iter()
                    .map(|u| crate::config::redis_url::redacted_url(u))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_redis_password() {
        let s = StoreSettings::Redis(RedisSettings::standalone(
            "redis://user:hunter2@localhost:6379/0",
            "p:",
        ));
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("user:***@localhost"), "{shown}");
    }
}
