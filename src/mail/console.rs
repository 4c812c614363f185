//! What the console transport prints: the sign-in email as a developer
//! needs it, on stdout.
//!
//! Owns: the printout's text. A short summary comes first, decoded (to,
//! subject, link, code), so the link can be copied whole; the raw RFC 5322
//! message (quoted-printable, lines folded) follows only when this module's
//! `debug` level is on (`RUST_LOG=debug`).
//!
//! # Threat model
//!
//! The printout holds a live link and code on purpose: the console
//! transport is the development transport, chosen in the configuration.
//! It is written to stdout as a mail printout, never through `tracing`, so
//! the log (stderr, which never carries links, tokens or codes) stays
//! clean and a log shipper does not pick the link up.

use tokio::io::AsyncWriteExt;

use super::transport::SendError;

/// The parts of one sign-in email a developer reads.
pub(crate) struct Printout<'a> {
    pub(crate) to: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) link: &'a str,
    /// As shown in the mail (`XXXX-XXXX`).
    pub(crate) code: &'a str,
}

/// The first line of every printout.
pub(crate) const HEAD: &str = "----- sign-in email (console mail transport, for development) -----";

impl Printout<'_> {
    /// The summary, then `raw` (the whole message) if given.
    pub(crate) fn text(&self, raw: Option<&[u8]>) -> Vec<u8> {
        let mut out = format!(
            "{HEAD}\nTo:      {}\nSubject: {}\nLink:    {}\nCode:    {}\n",
            self.to, self.subject, self.link, self.code
        )
        .into_bytes();
        match raw {
            Some(raw) => {
                out.extend_from_slice(b"----- the raw message -----\n");
                out.extend_from_slice(raw);
                if !raw.ends_with(b"\n") {
                    out.push(b'\n');
                }
                out.extend_from_slice(b"----- end of email -----\n");
            }
            None => {
                out.extend_from_slice(
                    b"----- end of email (RUST_LOG=debug also prints the raw message) -----\n",
                );
            }
        }
        out
    }

    /// Writes the printout to stdout in one piece; `raw` is only formatted
    /// when `debug` is on here.
    pub(crate) async fn print(&self, raw: impl FnOnce() -> Vec<u8>) -> Result<(), SendError> {
        let raw = tracing::enabled!(tracing::Level::DEBUG).then(raw);
        let out = self.text(raw.as_deref());
        let mut stdout = tokio::io::stdout();
        let io_err = |e: std::io::Error| SendError::Temporary(format!("stdout: {}", e.kind()));
        stdout.write_all(&out).await.map_err(io_err)?;
        stdout.flush().await.map_err(io_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: Printout<'static> = Printout {
        to: "alice@example.com",
        subject: "Your sign-in link for Example",
        link: "http://localhost:8080/.portcullis/verify?token=abc",
        code: "ABCD-EFGH",
    };

    #[test]
    fn the_summary_comes_first_and_whole() {
        let text = String::from_utf8(MAIL.text(None)).unwrap();
        assert_eq!(
            text,
            "----- sign-in email (console mail transport, for development) -----\n\
             To:      alice@example.com\n\
             Subject: Your sign-in link for Example\n\
             Link:    http://localhost:8080/.portcullis/verify?token=abc\n\
             Code:    ABCD-EFGH\n\
             ----- end of email (RUST_LOG=debug also prints the raw message) -----\n"
        );
    }

    #[test]
    fn the_raw_message_follows_the_summary_when_asked_for() {
        let text = String::from_utf8(MAIL.text(Some(b"Subject: x\r\n\r\nbody"))).unwrap();
        assert!(
            text.ends_with(
                "Code:    ABCD-EFGH\n----- the raw message -----\nSubject: x\r\n\r\nbody\n----- end of email -----\n"
            ),
            "{text}"
        );
    }
}
