//! The audit trail: one JSON line per security event, for the operator.
//!
//! Every line goes to the `portcullis::audit` tracing target (the binary
//! keeps that target out of stderr unless `RUST_LOG` names it, as the
//! lines carry full addresses), and to `[log] audit_file` when one is
//! configured (appended; reopened on SIGHUP, so logrotate can move it).
//! Unlike the ordinary log, an audit line carries the full address: it is
//! the operator's record of who did what. It never carries a token, a
//! code, a cookie or a link.
//!
//! Fields: `ts` (RFC 3339, UTC), `event`, `outcome` (`success`, `failure`
//! or `error`), and when known `email`, `ip`, `request_id`, `method`,
//! `host`, `path` (never the query), `user_agent`, `session` (the first
//! 12 hex digits of the session's keyed hash), `reason`.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use http::header::{self, HeaderMap};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    SigninRequested,
    SigninSucceeded,
    SigninFailed,
    Signout,
    SessionRevoked,
    AccessDenied,
    /// A request let through without a session by `bypass_networks`.
    AccessBypassed,
    MailFailed,
    ConfigReloaded,
    ConfigReloadFailed,
    /// A wrong or expired machine token (the name when it is known).
    TokenRefused,
    /// `portcullis share`: a share link made.
    ShareCreated,
    /// A share link opened (`/.portcullis/share/…`).
    ShareUsed,
    /// `portcullis share revoke`.
    ShareRevoked,
    /// `portcullis link`: a sign-in link made for support staff.
    LinkIssued,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::SigninRequested => "signin.requested",
            Event::SigninSucceeded => "signin.succeeded",
            Event::SigninFailed => "signin.failed",
            Event::Signout => "signout",
            Event::SessionRevoked => "session.revoked",
            Event::AccessDenied => "access.denied",
            Event::AccessBypassed => "access.bypassed",
            Event::MailFailed => "mail.failed",
            Event::ConfigReloaded => "config.reloaded",
            Event::ConfigReloadFailed => "config.reload_failed",
            Event::TokenRefused => "token.refused",
            Event::ShareCreated => "share.created",
            Event::ShareUsed => "share.used",
            Event::ShareRevoked => "share.revoked",
            Event::LinkIssued => "signin.link_issued",
        }
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Error,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Error => "error",
        }
    }
}

/// The request an event happened on.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub ip: IpAddr,
    pub request_id: &'a str,
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub user_agent: Option<&'a str>,
}

/// The `User-Agent` of a request, as text.
pub fn user_agent(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
}

/// One audit line, built field by field.
#[derive(Debug)]
pub struct Entry<'a> {
    event: Event,
    outcome: Outcome,
    email: Option<&'a str>,
    request: Option<RequestFacts<'a>>,
    session: Option<&'a str>,
    reason: Option<&'a str>,
}

impl<'a> Entry<'a> {
    pub fn new(event: Event, outcome: Outcome) -> Entry<'a> {
        Entry {
            event,
            outcome,
            email: None,
            request: None,
            session: None,
            reason: None,
        }
    }

    pub fn email(mut self, email: &'a str) -> Entry<'a> {
        self.email = (!email.is_empty()).then_some(email);
        self
    }

    pub fn request(mut self, facts: RequestFacts<'a>) -> Entry<'a> {
        self.request = Some(facts);
        self
    }

    /// The session's keyed hash (hex); only a prefix is written.
    pub fn session(mut self, hash_hex: &'a str) -> Entry<'a> {
        self.session = Some(hash_hex);
        self
    }

    pub fn reason(mut self, reason: &'a str) -> Entry<'a> {
        self.reason = Some(reason);
        self
    }

    /// The JSON line (without the newline).
    pub fn line(&self, now: std::time::SystemTime) -> String {
        let mut o = serde_json::Map::new();
        let ts = httpdate_rfc3339(now);
        o.insert("ts".into(), ts.into());
        o.insert("event".into(), self.event.as_str().into());
        o.insert("outcome".into(), self.outcome.as_str().into());
        if let Some(e) = self.email {
            o.insert("email".into(), e.into());
        }
        if let Some(r) = &self.request {
            o.insert("ip".into(), r.ip.to_string().into());
            o.insert("request_id".into(), r.request_id.into());
            o.insert("method".into(), r.method.into());
            o.insert("host".into(), r.host.into());
            o.insert("path".into(), r.path.into());
            if let Some(ua) = r.user_agent {
                let ua: String = ua.chars().take(200).collect();
                o.insert("user_agent".into(), ua.into());
            }
        }
        if let Some(s) = self.session {
            let prefix: String = s.chars().take(12).collect();
            o.insert("session".into(), prefix.into());
        }
        if let Some(r) = self.reason {
            o.insert("reason".into(), r.into());
        }
        serde_json::Value::Object(o).to_string()
    }
}

/// `2026-12-03T00:49:01Z`.
fn httpdate_rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Where audit lines go besides the tracing target.
#[derive(Debug, Default)]
pub struct Audit {
    file: Mutex<Option<(PathBuf, File)>>,
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl Audit {
    /// Opens `path` for appending (none: the tracing target only).
    pub fn open(path: Option<&Path>) -> std::io::Result<Audit> {
        let file = match path {
            Some(p) => Some((p.to_path_buf(), open(p)?)),
            None => None,
        };
        Ok(Audit {
            file: Mutex::new(file),
        })
    }

    /// SIGHUP: opens the file again (logrotate moved it), or the new one
    /// the reloaded configuration names. On failure the old one is kept.
    pub fn reopen(&self, path: Option<&Path>) {
        let Ok(mut slot) = self.file.lock() else {
            return;
        };
        match path {
            None => *slot = None,
            Some(p) => match open(p) {
                Ok(f) => *slot = Some((p.to_path_buf(), f)),
                Err(e) => tracing::warn!(
                    "log.audit_file ({}): cannot open it again ({e}); still writing to the old one",
                    p.display()
                ),
            },
        }
    }

    /// Writes one event.
    pub fn record(&self, entry: &Entry<'_>) {
        let line = entry.line(std::time::SystemTime::now());
        tracing::info!(target: "portcullis::audit", "{line}");
        let Ok(mut slot) = self.file.lock() else {
            return;
        };
        if let Some((path, file)) = slot.as_mut() {
            let mut bytes = line.into_bytes();
            bytes.push(b'\n');
            // One write per line: appends of a line are not interleaved.
            if let Err(e) = file.write_all(&bytes) {
                tracing::warn!("log.audit_file ({}): {e}", path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn lines_are_json_with_the_fields_given() {
        let facts = RequestFacts {
            ip: "192.0.2.7".parse().unwrap(),
            request_id: "r1",
            method: "POST",
            host: "app.test",
            path: "/.portcullis/login",
            user_agent: None,
        };
        let at = UNIX_EPOCH + Duration::from_secs(1_764_720_541);
        let line = Entry::new(Event::SigninRequested, Outcome::Success)
            .email("a@b.example")
            .request(facts)
            .session("0123456789abcdef")
            .reason("queued")
            .line(at);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["ts"], "2025-12-03T00:09:01Z");
        assert_eq!(v["event"], "signin.requested");
        assert_eq!(v["outcome"], "success");
        assert_eq!(v["email"], "a@b.example");
        assert_eq!(v["ip"], "192.0.2.7");
        assert_eq!(v["request_id"], "r1");
        assert_eq!(v["method"], "POST");
        assert_eq!(v["session"], "0123456789ab");
        assert_eq!(v["reason"], "queued");
        assert!(v.get("user_agent").is_none());
    }

    #[test]
    fn civil_dates() {
        let at = |s: u64| httpdate_rfc3339(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59Z");
    }
}
