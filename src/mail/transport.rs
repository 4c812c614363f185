//! The three ways a rendered message leaves the process: SMTP, a file, or
//! stdout.
//!
//! Owns: building the lettre SMTP transport once from [`SmtpSettings`]
//! (TLS mode, port, credentials, pool, timeout), writing `.eml` files, printing
//! to the console, and sorting every failure into *temporary* (worth a retry)
//! or *permanent*, with a short description that is safe to log.
//!
//! Does not own: retries, deadlines, counters or logging (see `worker`), nor
//! the message text (see `message`).
//!
//! # Threat model
//!
//! - Logs: an SMTP server's reply text may echo the recipient address or
//!   other data, so [`SendError`] keeps only the reply *code* and a fixed
//!   description of the failure kind; it never carries lettre's message text.
//! - Credentials: the SMTP password goes into lettre's `Credentials` and
//!   nowhere else; it is not logged or put in errors.
//! - TLS: `StartTls` uses lettre's `starttls_relay` (STARTTLS *required*, so a
//!   server that does not offer it gets no credentials and no mail) and `Tls`
//!   uses `relay` (implicit TLS); both verify the certificate against the
//!   webpki roots. `None` sends in plain text and is meant for a relay on
//!   localhost.
//! - Files: message files hold a live sign-in link, so on Unix they are
//!   created with mode 0600, written to a temporary name and renamed, so a
//!   reader never sees half a message. They are flushed to disk before the
//!   rename only with `[mail.file] fsync = true`: the queue in front of them
//!   lives in memory anyway, and a flush per message made the sign-in rate
//!   that of the disk.
//! - Connection reuse is off (lettre pool with `max_size(0)`). The worker
//!   cancels an attempt that runs past its time limit, and lettre cannot tell
//!   that a connection was abandoned mid-dialogue: a reused connection could
//!   then be out of step with the server (e.g. still inside `DATA` of the
//!   previous message), and the next message's text could end up in the
//!   previous recipient's mail. With no reuse, an abandoned connection is only
//!   ever closed. Sign-in mail is low volume; a new connection per message is
//!   cheap enough.
//! - lettre's own `tracing` feature must stay off: it logs every line written
//!   to the server at debug level, message body (and so the link) included.
//! - The console transport prints the link on stdout on purpose (developer
//!   mode, see `console`); it is the operator's choice to enable it.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::console::Printout;
use super::{MailError, SmtpSettings, SmtpTls, TransportSettings};

/// Why one attempt failed, sorted for the retry decision. The text is fixed
/// or built from codes only, so it is safe to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SendError {
    /// Worth retrying: SMTP 4xx, connection refused/reset, timeout, I/O.
    Temporary(String),
    /// Never retried: SMTP 5xx, a message the client itself refuses.
    Permanent(String),
}

/// A built transport, ready to send many messages.
pub(crate) enum Transport {
    Console { dir: Option<PathBuf> },
    File { dir: PathBuf, fsync: bool },
    Smtp(Box<AsyncSmtpTransport<Tokio1Executor>>),
}

impl Transport {
    /// Builds the transport once. SMTP connections are opened lazily (on the
    /// first send), so an unreachable server is not an error here.
    pub(crate) fn build(settings: &TransportSettings) -> Result<Self, MailError> {
        match settings {
            TransportSettings::Console { dir } => {
                if let Some(dir) = dir {
                    create_dir(dir)?;
                }
                Ok(Transport::Console { dir: dir.clone() })
            }
            TransportSettings::File { dir, fsync } => {
                create_dir(dir)?;
                Ok(Transport::File {
                    dir: dir.clone(),
                    fsync: *fsync,
                })
            }
            TransportSettings::Smtp(smtp) => build_smtp(smtp).map(Transport::Smtp),
        }
    }

    /// Whether mail can leave: SMTP connects, greets, authenticates when
    /// configured and says NOOP (no message is sent); console and file
    /// need nothing. The error holds only reply codes and fixed words.
    pub(crate) async fn reachable(&self) -> Result<(), SendError> {
        match self {
            Transport::Smtp(smtp) => match smtp.test_connection().await {
                Ok(true) => Ok(()),
                Ok(false) => Err(SendError::Temporary(
                    "the server did not answer NOOP".into(),
                )),
                Err(e) => Err(classify(e)),
            },
            Transport::Console { .. } | Transport::File { .. } => Ok(()),
        }
    }

    /// Sends one message. `printout` is what the console transport prints
    /// (see `console`). `name` is a short id used in the file name.
    pub(crate) async fn send(
        &self,
        message: &Message,
        printout: &Printout<'_>,
        name: &str,
    ) -> Result<(), SendError> {
        match self {
            Transport::Smtp(smtp) => smtp
                .send(message.clone())
                .await
                .map(|_| ())
                .map_err(classify),
            Transport::File { dir, fsync } => write_file(dir, message, name, *fsync).await,
            Transport::Console { dir } => {
                printout.print(|| message.formatted()).await?;
                match dir {
                    Some(dir) => write_file(dir, message, name, false).await,
                    None => Ok(()),
                }
            }
        }
    }
}

fn create_dir(dir: &Path) -> Result<(), MailError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        MailError::Transport(format!(
            "cannot create mail directory {}: {}",
            dir.display(),
            e.kind()
        ))
    })
}

fn build_smtp(s: &SmtpSettings) -> Result<Box<AsyncSmtpTransport<Tokio1Executor>>, MailError> {
    if s.host.trim().is_empty() {
        return Err(MailError::Settings("smtp host is empty".into()));
    }
    if s.timeout.is_zero() {
        return Err(MailError::Settings(
            "smtp timeout must be above zero".into(),
        ));
    }
    let builder = match s.tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.as_str()),
        SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)
            .map_err(|_| {
                MailError::Settings(format!("smtp host {:?} is not valid for TLS", s.host))
            })?,
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host).map_err(|_| {
            MailError::Settings(format!("smtp host {:?} is not valid for TLS", s.host))
        })?,
    };
    let builder = builder
        .port(s.port)
        .timeout(Some(s.timeout))
        // Pool of size 0: no connection is ever reused (see the module doc).
        .pool_config(PoolConfig::new().max_size(0));
    let builder = match (&s.username, &s.password) {
        (Some(user), Some(pass)) => {
            builder.credentials(Credentials::new(user.clone(), pass.clone()))
        }
        (None, None) => builder,
        (Some(_), None) => {
            return Err(MailError::Settings(
                "smtp username is set but password is not".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(MailError::Settings(
                "smtp password is set but username is not".into(),
            ))
        }
    };
    Ok(Box::new(builder.build()))
}

/// Sorts a lettre error. Only codes and fixed words go into the text.
fn classify(e: lettre::transport::smtp::Error) -> SendError {
    if let Some(code) = e.status() {
        let text = format!("smtp reply {code}");
        return if e.is_permanent() {
            SendError::Permanent(text)
        } else {
            SendError::Temporary(text)
        };
    }
    if e.is_timeout() {
        return SendError::Temporary("timeout".into());
    }
    if e.is_client() {
        return SendError::Permanent("smtp client refused the message".into());
    }
    if e.is_tls() {
        return SendError::Temporary("tls failure".into());
    }
    if e.is_response() {
        return SendError::Temporary("unreadable smtp reply".into());
    }
    if e.is_transport_shutdown() {
        return SendError::Permanent("smtp transport shut down".into());
    }
    match io_kind(&e) {
        Some(kind) => SendError::Temporary(format!("connection: {kind}")),
        None => SendError::Temporary("connection failure".into()),
    }
}

/// The first `std::io::Error` kind in the source chain, if any.
fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
    let mut source = e.source();
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = err.source();
    }
    None
}

/// `{micros since epoch, 20 digits}-{name}.eml`: names sort by time.
fn file_name(name: &str) -> String {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    format!("{micros:020}-{name}.eml")
}

async fn write_file(
    dir: &Path,
    message: &Message,
    name: &str,
    fsync: bool,
) -> Result<(), SendError> {
    let io_err = |e: std::io::Error| SendError::Temporary(format!("file: {}", e.kind()));
    let dir = dir.to_path_buf();
    let bytes = message.formatted();
    let final_name = file_name(name);
    // One blocking task for the whole file (not one per step, as tokio::fs
    // would do): each step's hand-off to the blocking pool and back cost
    // more than the step, and sign-in bursts queue thousands of messages.
    let written =
        tokio::task::spawn_blocking(move || write_file_blocking(&dir, &bytes, &final_name, fsync))
            .await
            .map_err(|_| std::io::Error::other("the file writer stopped"))
            .and_then(|r| r);
    written.map_err(io_err)
}

/// Writes `bytes` to `dir/.NAME.tmp` (mode 0600; with `fsync`, flushed to
/// disk), then renames it to `dir/NAME`; makes `dir` again if it has gone.
/// The rename alone is what keeps a reader from seeing half a message;
/// `fsync` only adds that a file survives a power cut.
fn write_file_blocking(
    dir: &Path,
    bytes: &[u8],
    final_name: &str,
    fsync: bool,
) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = dir.join(format!(".{final_name}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = match options.open(&tmp) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)?;
            options.open(&tmp)?
        }
        Err(e) => return Err(e),
    };
    let written = file
        .write_all(bytes)
        .and_then(|()| if fsync { file.sync_all() } else { Ok(()) })
        .and_then(|()| {
            drop(file);
            std::fs::rename(&tmp, dir.join(final_name))
        });
    if written.is_err() {
        // Best effort: do not leave a half-written file behind.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_start_with_fixed_width_time() {
        let name = file_name("abcd1234");
        let (stamp, rest) = name.split_at(20);
        assert!(stamp.chars().all(|c| c.is_ascii_digit()), "{name}");
        assert_eq!(rest, "-abcd1234.eml");
    }
}
