//! The background worker: takes queued sign-in emails and delivers them,
//! retrying temporary failures until each email's deadline.
//!
//! Owns: the delivery loop of one message (render once, attempt with a time
//! limit, back off, give up at the deadline), the limit on simultaneous
//! attempts, the counters and the log lines about deliveries.
//!
//! Does not own: admission into the queue (see [`super::Mailer::enqueue`]),
//! the message text (`message`) or how bytes leave the process (`transport`).
//!
//! # Behaviour
//!
//! - At most `concurrency` attempts run at once. A message waiting for its next
//!   retry does not hold a slot, so a few slow recipients cannot stall fresh
//!   mail.
//! - One attempt is limited to the transport timeout *and* to the time left
//!   before the deadline, so a server that accepts the connection and then says
//!   nothing (a tarpit) costs one slot for a bounded time.
//! - Temporary failures back off exponentially from 500 ms to 30 s, each delay
//!   jittered by ±25 % so many messages do not retry in lock step. If the next
//!   attempt would start at or after the deadline the message is given up at
//!   once: a link that has expired is useless.
//! - Permanent failures (SMTP 5xx) are never retried.
//!
//! # Threat model (logs)
//!
//! Every log line carries a short random message id, the recipient masked as
//! `a***@example.com`, and the outcome. The link, the token in it and the code
//! are never logged; failure reasons come from [`SendError`], which holds only
//! reply codes and fixed words.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use rand::RngExt;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::console::Printout;
use super::message::{format_code, render_with};
use super::transport::{SendError, Transport};
use super::{mask_email, LoginMail, MailStats};

/// First retry delay (before jitter).
const BACKOFF_START: Duration = Duration::from_millis(500);
/// Largest retry delay (also after jitter).
const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// The counters behind [`MailStats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) queued: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) dropped: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> MailStats {
        MailStats {
            queued: self.queued.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// One accepted message. The permit is its place in the queue; it is given
/// back when the message is finished (sent or failed).
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) mail: LoginMail,
    pub(crate) _place: OwnedSemaphorePermit,
}

/// What every delivery task shares.
pub(crate) struct Worker {
    pub(crate) transport: Transport,
    pub(crate) from: Mailbox,
    /// Limit for one whole attempt (connect, dialogue, data).
    pub(crate) attempt_timeout: Duration,
    /// One permit per simultaneous attempt.
    pub(crate) slots: Semaphore,
    pub(crate) counters: Arc<Counters>,
    /// Where a failed message is recorded for the operator.
    pub(crate) audit: Option<Arc<crate::audit::Audit>>,
}

/// Receives jobs until every sender is gone, delivering each in its own task.
/// Tasks already started run to completion after that.
pub(crate) async fn run(worker: Arc<Worker>, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = rx.recv().await {
        tokio::spawn(deliver(Arc::clone(&worker), job));
    }
    tracing::debug!("mail queue closed; worker stops taking new messages");
}

/// A short random id for log lines and file names (8 hex digits).
pub(crate) fn new_id() -> String {
    format!("{:08x}", rand::rng().random::<u32>())
}

/// The delay before retry number `attempt` (1 for the first retry).
pub(crate) fn backoff(attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(16);
    let base = BACKOFF_START.saturating_mul(1u32 << exp).min(BACKOFF_CAP);
    let jitter: f64 = rand::rng().random_range(0.75..1.25);
    base.mul_f64(jitter).min(BACKOFF_CAP)
}

async fn deliver(worker: Arc<Worker>, job: Job) {
    let Job { id, mail, _place } = job;
    let to = mask_email(&mail.to);
    let counters = &worker.counters;
    let fail = |attempts: u32, reason: &str, what: &'static str| {
        counters.failed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(mail_id = %id, to = %to, attempts, reason, "{what}");
        if let Some(audit) = &worker.audit {
            audit.record(
                &crate::audit::Entry::new(
                    crate::audit::Event::MailFailed,
                    crate::audit::Outcome::Error,
                )
                .email(&mail.to)
                .reason(what),
            );
        }
    };

    let (message, rendered) = match render_with(&mail, &worker.from) {
        Ok(built) => built,
        Err(e) => {
            fail(0, &e.to_string(), "sign-in email not sent: cannot build it");
            return;
        }
    };

    let code = format_code(&mail.code);
    let mut attempt: u32 = 0;
    loop {
        if Instant::now() >= mail.deadline {
            fail(
                attempt,
                "deadline passed",
                "sign-in email not sent before the link expired",
            );
            return;
        }
        // Wait for a free slot, but never past the deadline.
        let slot = match tokio::time::timeout_at(mail.deadline, worker.slots.acquire()).await {
            Ok(Ok(slot)) => slot,
            Ok(Err(_)) => {
                fail(attempt, "worker closed", "sign-in email not sent");
                return;
            }
            Err(_) => {
                fail(
                    attempt,
                    "no free sending slot before the deadline",
                    "sign-in email not sent before the link expired",
                );
                return;
            }
        };
        attempt += 1;
        let limit = worker
            .attempt_timeout
            .min(mail.deadline.saturating_duration_since(Instant::now()));
        let printout = Printout {
            to: &mail.to,
            subject: &rendered.subject,
            link: &mail.link,
            code: &code,
        };
        let sending = worker.transport.send(&message, &printout, &id);
        let result = match tokio::time::timeout(limit, sending).await {
            Ok(result) => result,
            Err(_) => Err(SendError::Temporary("timeout".into())),
        };
        drop(slot);

        match result {
            Ok(()) => {
                counters.sent.fetch_add(1, Ordering::Relaxed);
                tracing::info!(mail_id = %id, to = %to, attempts = attempt, "sign-in email sent");
                return;
            }
            Err(SendError::Permanent(reason)) => {
                fail(attempt, &reason, "sign-in email refused; not retrying");
                return;
            }
            Err(SendError::Temporary(reason)) => {
                let delay = backoff(attempt);
                let next = Instant::now() + delay;
                if next >= mail.deadline {
                    fail(
                        attempt,
                        &reason,
                        "sign-in email not sent before the link expired; giving up",
                    );
                    return;
                }
                counters.retried.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    mail_id = %id,
                    to = %to,
                    attempts = attempt,
                    retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    reason = %reason,
                    "sign-in email: temporary failure; will retry"
                );
                tokio::time::sleep_until(next).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_stays_under_the_cap() {
        for _ in 0..200 {
            let first = backoff(1);
            assert!(first >= Duration::from_millis(375), "{first:?}");
            assert!(first < Duration::from_millis(625), "{first:?}");
            let third = backoff(3);
            assert!(third >= Duration::from_millis(1500), "{third:?}");
            assert!(third < Duration::from_millis(2500), "{third:?}");
            assert!(backoff(10) <= BACKOFF_CAP);
            assert!(backoff(u32::MAX) <= BACKOFF_CAP);
            assert!(backoff(10) >= BACKOFF_CAP.mul_f64(0.75));
        }
    }

    #[test]
    fn ids_are_eight_hex_digits() {
        let id = new_id();
        assert_eq!(id.len(), 8);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
