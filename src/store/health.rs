//! What the Redis backend knows about its own reachability, shared by the
//! command path and the revocation subscriber without locks.
//!
//! # What it owns
//!
//! - Whether the revocation subscriber is subscribed now.
//! - The subscription epoch: a number that changes on every (re)subscribe,
//!   i.e. every time revocations published earlier may have been missed.
//!   Callers that cache sessions tag each entry with the epoch it was
//!   confirmed in and stop trusting it once the epoch moves on.
//! - Whether the last command failed with `Unavailable`.
//!
//! # What it does not own
//!
//! Connecting, retrying or deciding what to answer while Redis is down.
//!
//! # Threat model
//!
//! A flag that lags reality by one command or one reconnect is acceptable;
//! an epoch that fails to move on a resubscribe is not (a sign-out made
//! while this instance was unsubscribed would be missed until
//! `revalidate`), so the subscriber bumps it before it forwards anything on
//! the new connection.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(super) struct Health {
    subscribed: AtomicBool,
    epoch: AtomicU64,
    failing: AtomicBool,
}

impl Health {
    /// A new subscription is live: anything published before it may have
    /// been missed, so the epoch moves on. Redis just answered, so commands
    /// are presumed to work again until one fails.
    pub(super) fn subscribed(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.failing.store(false, Ordering::Release);
        self.subscribed.store(true, Ordering::Release);
    }

    pub(super) fn unsubscribed(&self) {
        self.subscribed.store(false, Ordering::Release);
    }

    pub(super) fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    /// Records the outcome of one command (written only when it changes,
    /// so the hot path only reads the shared flag).
    pub(super) fn command(&self, reachable: bool) {
        let failing = !reachable;
        if self.failing.load(Ordering::Relaxed) != failing {
            self.failing.store(failing, Ordering::Release);
        }
    }

    pub(super) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Subscribed and the last command reached Redis.
    pub(super) fn is_up(&self) -> bool {
        self.is_subscribed() && !self.failing.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_moves_on_every_subscribe_and_up_needs_both() {
        let h = Health::default();
        assert!(!h.is_up());
        assert_eq!(h.epoch(), 0);
        h.subscribed();
        assert_eq!(h.epoch(), 1);
        assert!(h.is_up());
        h.command(false);
        assert!(!h.is_up());
        h.command(true);
        assert!(h.is_up());
        h.unsubscribed();
        assert!(!h.is_up());
        assert_eq!(h.epoch(), 1);
        h.command(false);
        h.subscribed();
        assert_eq!(h.epoch(), 2);
        assert!(h.is_up());
    }
}
