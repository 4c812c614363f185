//! The mailer: sends the sign-in email off the request path.
//!
//! Owns: the mail settings, the bounded queue in front of a background worker
//! ([`Mailer::enqueue`] never blocks and never fails visibly), the counters
//! ([`MailStats`]) and the public message builder ([`render`]).
//! Submodules: `message` (the email's text and HTML), `transport` (SMTP, file,
//! console), `console` (what the console transport prints), `worker`
//! (attempts, retries, deadlines, logs).
//!
//! Does not own: making the link, the token or the code, validating the
//! recipient (the `address` module does; we get a normalised address), rate
//! limits on who may ask for mail, or config parsing (the caller builds
//! [`MailSettings`]).
//!
//! # Threat model
//!
//! - Availability: a slow or dead mail server must not slow sign-in requests.
//!   `enqueue` only takes a queue place (non-blocking) or drops the message;
//!   at most `queue_capacity` messages are accepted and not yet finished, and
//!   at most `concurrency` delivery attempts run at once, each with a time
//!   limit. A full queue drops mail with one warn line and a counter.
//! - Secrets in logs: the link, the token in it and the code never appear in
//!   log lines or error values; recipients are logged masked
//!   (`a***@example.com`), with a short random message id. [`LoginMail`] and
//!   [`SmtpSettings`] have hand-written `Debug` impls that redact them.
//! - Header injection and HTML injection: see `message`.
//! - Transport security: see `transport`.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};

mod console;
mod message;
mod settings;
mod transport;
mod worker;

pub use message::render;

use worker::{Counters, Job, Worker};

/// Limit on `concurrency` (simultaneous delivery attempts).
pub const MAX_CONCURRENCY: usize = 256;
/// Limit on `queue_capacity`.
pub const MAX_QUEUE_CAPACITY: usize = 1_000_000;
/// Time limit for one attempt of the file and console transports.
const LOCAL_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to talk TLS to the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text. Only for a relay on the same host or a trusted network.
    None,
    /// Connect in plain text, then STARTTLS, which is *required*
    /// (usually port 587). The certificate is verified.
    StartTls,
    /// TLS from the first byte (usually port 465). The certificate is verified.
    Tls,
}

/// Where and how to reach the SMTP server.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Set both or neither.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Limit for one whole delivery attempt (connect, dialogue, data).
    pub timeout: Duration,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Which transport delivers the mail.
#[derive(Debug, Clone)]
pub enum TransportSettings {
    /// Print the message to stdout (developer mode): a decoded summary, and
    /// the raw message with `RUST_LOG=debug`; if dir is Some, also write it
    /// there like File.
    Console {
        dir: Option<PathBuf>,
    },
    /// One RFC 5322 file per message in `dir` (created if missing), named so they sort by time;
    /// with `fsync`, each is flushed to disk before it counts as sent.
    File {
        dir: PathBuf,
        fsync: bool,
    },
    Smtp(SmtpSettings),
}

/// Everything the mailer needs.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// The sender, e.g. `"Portcullis <login@example.com>"`.
    pub from: String,
    pub transport: TransportSettings,
    /// Most messages accepted and not yet finished (e.g. 1024), 1..=[`MAX_QUEUE_CAPACITY`].
    pub queue_capacity: usize,
    /// Most delivery attempts at once (e.g. 4), 1..=[`MAX_CONCURRENCY`].
    pub concurrency: usize,
}

/// Why the mailer could not start or a message could not be built.
/// No variant ever holds a link, a code, a password or a full recipient
/// address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// The configured sender is not a mailbox; holds the configured value.
    #[error("mail sender {0:?} is not a valid mailbox (expected e.g. \"Portcullis <login@example.com>\")")]
    BadFrom(String),
    /// The recipient is not a mailbox; holds the masked address.
    #[error("recipient {0} is not a valid mailbox")]
    BadRecipient(String),
    /// The sign-in link is not an absolute http(s) URL; says why, not what.
    #[error("sign-in link refused: {0}")]
    BadLink(&'static str),
    /// lettre refused to build the message.
    #[error("cannot build the email: {0}")]
    Build(String),
    /// A setting is out of range or inconsistent, or there is no runtime.
    #[error("mail settings: {0}")]
    Settings(String),
    /// The transport could not be set up (e.g. the mail directory).
    #[error("mail transport: {0}")]
    Transport(String),
}

/// One sign-in email. `to` is already a validated, normalised address.
#[derive(Clone)]
pub struct LoginMail {
    pub to: String,
    pub link: String,
    pub code: String,
    pub valid_for: Duration,
    /// After this the link is useless; the worker stops trying.
    pub deadline: tokio::time::Instant,
    pub site_name: String,
}

impl fmt::Debug for LoginMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginMail")
            .field("to", &mask_email(&self.to))
            .field("link", &"<redacted>")
            .field("code", &"<redacted>")
            .field("valid_for", &self.valid_for)
            .field("deadline", &self.deadline)
            .field("site_name", &self.site_name)
            .finish()
    }
}

/// Counters since start. `queued` counts accepted messages; each of them
/// ends up in `sent` or `failed`. `retried` counts retries scheduled,
/// `dropped` messages refused by [`Mailer::enqueue`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailStats {
    pub queued: u64,
    pub sent: u64,
    pub retried: u64,
    pub failed: u64,
    pub dropped: u64,
}

/// Handle to the mail queue. Cheap to clone; the worker stops taking new
/// messages when the last clone is dropped (messages already accepted are
/// still delivered, if the runtime lives on).
#[derive(Clone)]
pub struct Mailer {
    tx: mpsc::UnboundedSender<Job>,
    places: Arc<Semaphore>,
    counters: Arc<Counters>,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// `portcullis check --connect`: whether `settings` can send mail now
/// (see `Transport::reachable`), as a sentence for the operator.
pub async fn check_reachable(settings: &MailSettings) -> Result<String, String> {
    let transport = transport::Transport::build(&settings.transport).map_err(|e| e.to_string())?;
    match &settings.transport {
        TransportSettings::Smtp(s) => {
            let place = format!("mail.smtp ({}:{})", s.host, s.port);
            match transport.reachable().await {
                Ok(()) => Ok(format!("{place}: connected, greeted and answered NOOP")),
                Err(transport::SendError::Temporary(r)) => Err(format!("{place}: {r}")),
                Err(transport::SendError::Permanent(r)) => Err(format!("{place}: refused: {r}")),
            }
        }
        TransportSettings::Console { .. } => Ok("mail: console transport, nothing to reach".into()),
        TransportSettings::File { dir, .. } => Ok(format!(
            "mail: file transport, {} is writable",
            dir.display()
        )),
    }
}

impl Mailer {
    /// Validates settings (parses `from` as a lettre Mailbox → BadFrom naming the value), builds the
    /// transport once (lettre `AsyncSmtpTransport<Tokio1Executor>` with timeout and credentials,
    /// `starttls_relay`/`relay`/`builder_dangerous` per [`SmtpTls`], connection reuse off — see
    /// the `transport` module) and spawns the worker. Needs a runtime
    /// ([`MailError::Settings`] if called outside one).
    pub fn start(settings: MailSettings) -> Result<Mailer, MailError> {
        Mailer::start_audited(settings, None)
    }

    /// [`Mailer::start`], recording messages that could not be sent in
    /// `audit`.
    pub fn start_audited(
        settings: MailSettings,
        audit: Option<Arc<crate::audit::Audit>>,
    ) -> Result<Mailer, MailError> {
        let from = message::parse_from(&settings.from)?;
        if !(1..=MAX_QUEUE_CAPACITY).contains(&settings.queue_capacity) {
            return Err(MailError::Settings(format!(
                "queue_capacity must be 1..={MAX_QUEUE_CAPACITY}, not {}",
                settings.queue_capacity
            )));
        }
        if !(1..=MAX_CONCURRENCY).contains(&settings.concurrency) {
            return Err(MailError::Settings(format!(
                "concurrency must be 1..={MAX_CONCURRENCY}, not {}",
                settings.concurrency
            )));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| MailError::Settings("the mailer needs a tokio runtime".into()))?;
        let transport = {
            // lettre's pool spawns its janitor task on the current runtime.
            let _entered = runtime.enter();
            transport::Transport::build(&settings.transport)?
        };
        let attempt_timeout = match &settings.transport {
            TransportSettings::Smtp(smtp) => smtp.timeout,
            _ => LOCAL_ATTEMPT_TIMEOUT,
        };
        let counters = Arc::new(Counters::default());
        let worker = Arc::new(Worker {
            transport,
            from,
            attempt_timeout,
            slots: Semaphore::new(settings.concurrency),
            counters: Arc::clone(&counters),
            audit,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        runtime.spawn(worker::run(worker, rx));
        Ok(Mailer {
            tx,
            places: Arc::new(Semaphore::new(settings.queue_capacity)),
            counters,
        })
    }

    /// Never blocks. Returns false if the message was dropped (queue full or worker gone).
    pub fn enqueue(&self, mail: LoginMail) -> bool {
        let id = worker::new_id();
        let place = match Arc::clone(&self.places).try_acquire_owned() {
            Ok(place) => place,
            Err(_) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    mail_id = %id,
                    to = %mask_email(&mail.to),
                    "mail queue full; sign-in email dropped"
                );
                return false;
            }
        };
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        let to = mask_email(&mail.to);
        let job = Job {
            id: id.clone(),
            mail,
            _place: place,
        };
        if self.tx.send(job).is_err() {
            self.counters.queued.fetch_sub(1, Ordering::Relaxed);
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(mail_id = %id, to = %to, "mail worker gone; sign-in email dropped");
            return false;
        }
        tracing::debug!(mail_id = %id, to = %to, "sign-in email queued");
        true
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> MailStats {
        self.counters.snapshot()
    }
}

/// Masks an address for logs: `alice@example.com` → `a***@example.com`.
/// Something without an `@` becomes `***`.
pub(crate) fn mask_email(addr: &str) -> String {
    match addr.rsplit_once('@') {
        Some((local, domain)) => match local.chars().next() {
            Some(first) => format!("{first}***@{domain}"),
            None => format!("***@{domain}"),
        },
        None => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_addresses() {
        assert_eq!(mask_email("alice@example.com"), "a***@example.com");
        assert_eq!(mask_email("a@example.com"), "a***@example.com");
        assert_eq!(mask_email("@example.com"), "***@example.com");
        assert_eq!(mask_email("no-at-sign"), "***");
        assert_eq!(mask_email("éva@example.com"), "é***@example.com");
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let mail = LoginMail {
            to: "alice@example.com".into(),
            link: "https://auth.example.com/link?t=SECRETTOKEN".into(),
            code: "ABCD1234".into(),
            valid_for: Duration::from_secs(900),
            deadline: tokio::time::Instant::now(),
            site_name: "Acme".into(),
        };
        let shown = format!("{mail:?}");
        assert!(!shown.contains("SECRETTOKEN"), "{shown}");
        assert!(!shown.contains("ABCD1234"), "{shown}");
        assert!(!shown.contains("alice@"), "{shown}");

        let smtp = SmtpSettings {
            host: "smtp.example.com".into(),
            port: 587,
            tls: SmtpTls::StartTls,
            username: Some("user".into()),
            password: Some("hunter2".into()),
            timeout: Duration::from_secs(10),
        };
        let shown = format!("{smtp:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn start_refuses_bad_settings() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = std::env::temp_dir();
        let good = MailSettings {
            from: "Portcullis <login@example.com>".into(),
            transport: TransportSettings::File {
                dir: dir.clone(),
                fsync: false,
            },
            queue_capacity: 4,
            concurrency: 1,
        };
        let _guard = rt.enter();
        let bad_from = MailSettings {
            from: "not a mailbox".into(),
            ..good.clone()
        };
        assert_eq!(
            Mailer::start(bad_from).unwrap_err(),
            MailError::BadFrom("not a mailbox".into())
        );
        let zero_queue = MailSettings {
            queue_capacity: 0,
            ..good.clone()
        };
        assert_eq!(
            Mailer::start(zero_queue).unwrap_err(),
            MailError::Settings("queue_capacity must be 1..=1000000, not 0".into())
        );
        let zero_workers = MailSettings {
            concurrency: 0,
            ..good.clone()
        };
        assert_eq!(
            Mailer::start(zero_workers).unwrap_err(),
            MailError::Settings("concurrency must be 1..=256, not 0".into())
        );
        let smtp = |username: Option<&str>, password: Option<&str>, timeout| MailSettings {
            transport: TransportSettings::Smtp(SmtpSettings {
                host: "127.0.0.1".into(),
                port: 25,
                tls: SmtpTls::None,
                username: username.map(str::to_owned),
                password: password.map(str::to_owned),
                timeout,
            }),
            ..good.clone()
        };
        assert_eq!(
            Mailer::start(smtp(Some("u"), None, Duration::from_secs(1))).unwrap_err(),
            MailError::Settings("smtp username is set but password is not".into())
        );
        assert_eq!(
            Mailer::start(smtp(None, None, Duration::ZERO)).unwrap_err(),
            MailError::Settings("smtp timeout must be above zero".into())
        );
        assert!(Mailer::start(smtp(Some("u"), Some("p"), Duration::from_secs(1))).is_ok());
    }

    #[test]
    fn start_outside_a_runtime_is_an_error() {
        let settings = MailSettings {
            from: "login@example.com".into(),
            transport: TransportSettings::Console { dir: None },
            queue_capacity: 1,
            concurrency: 1,
        };
        assert_eq!(
            Mailer::start(settings).unwrap_err(),
            MailError::Settings("the mailer needs a tokio runtime".into())
        );
    }
}
