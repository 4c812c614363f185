//! How many times each store operation failed, for the metrics
//! (`portcullis_store_errors_total{op}`). Counted in the [`super::Store`]
//! facade, so both backends are counted alike; read at scrape time.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The store's operations, as the metric's `op` label names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Hit,
    AdmitSignIn,
    KeyCount,
    Count,
    Claim,
    PutAttempt,
    PeekAttempt,
    TakeAttempt,
    AttemptForBrowser,
    FailAttempt,
    PutSession,
    GetSession,
    DeleteSession,
    RevokeAll,
    CountSessions,
    ListSessions,
    Indexes,
    Ping,
    PutShare,
    Shares,
}

/// The label of each [`Op`], in declaration order.
const NAMES: [&str; 20] = [
    "hit",
    "admit_sign_in",
    "key_count",
    "count",
    "claim",
    "put_attempt",
    "peek_attempt",
    "take_attempt",
    "attempt_for_browser",
    "fail_attempt",
    "put_session",
    "get_session",
    "delete_session",
    "revoke_all",
    "count_sessions",
    "list_sessions",
    "indexes",
    "ping",
    "put_share",
    "shares",
];

/// One failure counter per [`Op`].
#[derive(Debug, Default)]
pub(super) struct OpErrors {
    counts: [AtomicU64; NAMES.len()],
}

impl OpErrors {
    pub(super) fn failed(&self, op: Op) {
        self.counts[op as usize].fetch_add(1, Relaxed);
    }

    /// `(op, failures)` for every operation, zeros included.
    pub(super) fn snapshot(&self) -> Vec<(&'static str, u64)> {
        NAMES
            .iter()
            .zip(&self.counts)
            .map(|(name, n)| (*name, n.load(Relaxed)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_op_has_its_own_label() {
        let e = OpErrors::default();
        e.failed(Op::Ping);
        e.failed(Op::Hit);
        e.failed(Op::Hit);
        let s = e.snapshot();
        assert_eq!(s[Op::Hit as usize], ("hit", 2));
        assert_eq!(s[Op::Ping as usize], ("ping", 1));
        assert_eq!(s[Op::GetSession as usize], ("get_session", 0));
    }
}
