//! The mailer against a real SMTP server (mailin-embedded on 127.0.0.1:0):
//! delivery, retries, permanent failures, a tarpit, a full queue, the file
//! and console transports, HTML escaping, and that no log line carries the
//! link or the code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/smtp.rs"]
mod smtp;

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as StdInstant};

use portcullis::mail::{
    render, LoginMail, MailError, MailSettings, MailStats, Mailer, SmtpSettings, SmtpTls,
    TransportSettings,
};
use smtp::{wait_until, Received, Script, SmtpServer};
use tokio::time::Instant;

const FROM: &str = "Portcullis <login@example.com>";
const WAIT: Duration = Duration::from_secs(15);

fn smtp_settings(port: u16, timeout: Duration, concurrency: usize) -> MailSettings {
    MailSettings {
        from: FROM.into(),
        transport: TransportSettings::Smtp(SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            tls: SmtpTls::None,
            username: None,
            password: None,
            timeout,
        }),
        queue_capacity: 64,
        concurrency,
    }
}

/// A sign-in mail whose secrets all contain `tag`, so tests can look for them.
fn login_mail(to: &str, tag: &str, expires_in: Duration) -> LoginMail {
    LoginMail {
        to: to.into(),
        link: format!(
            "https://auth.example.com/_portcullis/verify?token=TOKEN{tag}SECRET&rd=%2Fdocs"
        ),
        code: format!("{tag}QX9M"),
        valid_for: Duration::from_secs(900),
        deadline: Instant::now() + expires_in,
        site_name: "Acme Wiki".into(),
    }
}

async fn wait_stats(mailer: &Mailer, what: &str, cond: impl Fn(MailStats) -> bool) -> MailStats {
    wait_until(WAIT, what, || cond(mailer.stats())).await;
    mailer.stats()
}

/// A port with nothing listening on it.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn files_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
}

fn as_received(bytes: Vec<u8>) -> Received {
    Received {
        from: String::new(),
        to: Vec::new(),
        data: bytes,
    }
}

#[tokio::test]
async fn delivers_over_smtp_with_text_and_html_parts() {
    let server = SmtpServer::start(Script::Accept);
    let mailer = Mailer::start(smtp_settings(server.port(), Duration::from_secs(5), 2)).unwrap();
    let mail = login_mail("alice@example.com", "AB12", Duration::from_secs(30));
    let link = mail.link.clone();

    assert!(mailer.enqueue(mail));
    let received = server.wait_for(1, WAIT).await;
    let stats = wait_stats(&mailer, "sent == 1", |s| s.sent == 1).await;

    assert_eq!(received.len(), 1);
    let msg = &received[0];
    assert_eq!(msg.from, "login@example.com");
    assert_eq!(msg.to, vec!["alice@example.com".to_owned()]);
    assert_eq!(
        msg.header("Subject").as_deref(),
        Some("Your sign-in link for Acme Wiki")
    );
    assert_eq!(msg.header("To").as_deref(), Some("alice@example.com"));
    assert_eq!(msg.header("From").as_deref(), Some(FROM));
    assert!(msg
        .header("Content-Type")
        .unwrap()
        .starts_with("multipart/alternative"));

    let kinds: Vec<String> = msg.parts().into_iter().map(|p| p.content_type).collect();
    assert_eq!(kinds, vec!["text/plain", "text/html"]);

    let text = msg.text().unwrap();
    assert!(text.contains(&link), "{text}");
    assert!(text.contains("AB12-QX9M"), "{text}");
    assert!(text.contains("valid for 15 minutes"), "{text}");
    assert!(text.contains("If you did not ask for this, ignore this email."));

    let html = msg.html().unwrap();
    let link_in_html = link.replace('&', "&amp;");
    assert!(html.contains(&format!("href=\"{link_in_html}\"")), "{html}");
    assert!(html.contains(&format!(">{link_in_html}</a>")), "{html}");
    assert!(html.contains("AB12-QX9M"), "{html}");
    assert!(html.contains("monospace"), "{html}");
    assert!(html.contains("valid for 15 minutes"), "{html}");
    assert!(html.contains("If you did not ask for this, ignore this email."));
    assert!(!html.contains("<link") && !html.contains("<img") && !html.contains("<style"));

    assert_eq!(
        stats,
        MailStats {
            queued: 1,
            sent: 1,
            retried: 0,
            failed: 0,
            dropped: 0
        }
    );
    assert_eq!(server.attempts(), 1);
}

#[tokio::test]
async fn temporary_failures_are_retried_and_delivered_once() {
    let server = SmtpServer::start(Script::TempFailFirst(2));
    let mailer = Mailer::start(smtp_settings(server.port(), Duration::from_secs(5), 2)).unwrap();

    assert!(mailer.enqueue(login_mail(
        "bob@example.com",
        "CD34",
        Duration::from_secs(60)
    )));
    let stats = wait_stats(&mailer, "sent == 1", |s| s.sent == 1).await;

    assert!(stats.retried >= 2, "{stats:?}");
    assert_eq!(stats.failed, 0);
    assert_eq!(server.attempts(), 3);
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].to, vec!["bob@example.com".to_owned()]);
}

#[tokio::test]
async fn permanent_failure_is_not_retried() {
    let server = SmtpServer::start(Script::AlwaysReject);
    let mailer = Mailer::start(smtp_settings(server.port(), Duration::from_secs(5), 2)).unwrap();

    assert!(mailer.enqueue(login_mail(
        "carol@example.com",
        "EF56",
        Duration::from_secs(60)
    )));
    let stats = wait_stats(&mailer, "failed == 1", |s| s.failed == 1).await;

    assert_eq!(
        stats,
        MailStats {
            queued: 1,
            sent: 0,
            retried: 0,
            failed: 1,
            dropped: 0
        }
    );
    assert_eq!(server.attempts(), 1);
    assert_eq!(server.received().len(), 0);
}

#[tokio::test]
async fn connection_refused_is_retried_until_the_deadline() {
    let mailer = Mailer::start(smtp_settings(closed_port(), Duration::from_secs(5), 1)).unwrap();
    let started = StdInstant::now();

    assert!(mailer.enqueue(login_mail(
        "dave@example.com",
        "GH78",
        Duration::from_millis(2500)
    )));
    let stats = wait_stats(&mailer, "failed == 1", |s| s.failed == 1).await;

    assert!(stats.retried >= 1, "{stats:?}");
    assert_eq!(stats.sent, 0);
    // Given up around the deadline, not long after it.
    assert!(
        started.elapsed() < Duration::from_millis(2500 + 1000),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn tarpit_neither_blocks_enqueue_nor_hangs_the_worker() {
    let server = SmtpServer::tarpit();
    let timeout = Duration::from_millis(500);
    let mailer = Mailer::start(smtp_settings(server.port(), timeout, 2)).unwrap();
    let deadline_in = Duration::from_millis(1500);

    let started = StdInstant::now();
    for i in 0..10 {
        let tag = format!("T{i:03}");
        assert!(mailer.enqueue(login_mail("erin@example.com", &tag, deadline_in)));
    }
    let enqueue_time = started.elapsed();
    assert!(enqueue_time < Duration::from_millis(50), "{enqueue_time:?}");

    let stats = wait_stats(&mailer, "failed == 10", |s| s.failed == 10).await;
    assert_eq!(stats.sent, 0);
    assert_eq!(stats.queued, 10);
    // Every message gave up by its deadline (plus scheduling slack), even
    // though the server never answered: attempts are time-limited.
    assert!(
        started.elapsed() < deadline_in + Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // Both sending slots were used at once; nothing beyond the limit.
    assert!(server.connections() >= 2, "{}", server.connections());
    assert_eq!(server.attempts(), 0);

    // The worker is still alive: once the server behaves, mail flows again.
    server.set_tarpit(false);
    assert!(mailer.enqueue(login_mail(
        "frank@example.com",
        "OK01",
        Duration::from_secs(30)
    )));
    let received = server.wait_for(1, WAIT).await;
    assert_eq!(received[0].to, vec!["frank@example.com".to_owned()]);
    wait_stats(&mailer, "sent == 1", |s| s.sent == 1).await;
}

#[tokio::test]
async fn full_queue_drops_and_counts() {
    let server = SmtpServer::tarpit();
    let mut settings = smtp_settings(server.port(), Duration::from_millis(300), 1);
    settings.queue_capacity = 2;
    let mailer = Mailer::start(settings).unwrap();
    let short = Duration::from_millis(600);

    assert!(mailer.enqueue(login_mail("gina@example.com", "Q001", short)));
    assert!(mailer.enqueue(login_mail("gina@example.com", "Q002", short)));
    assert!(!mailer.enqueue(login_mail("gina@example.com", "Q003", short)));
    assert_eq!(
        mailer.stats(),
        MailStats {
            queued: 2,
            sent: 0,
            retried: 0,
            failed: 0,
            dropped: 1
        }
    );

    // Places come back once messages are finished (here: expired).
    wait_stats(&mailer, "failed == 2", |s| s.failed == 2).await;
    assert!(mailer.enqueue(login_mail("gina@example.com", "Q004", short)));
    assert_eq!(mailer.stats().queued, 3);
}

#[tokio::test]
async fn file_transport_writes_one_parseable_file_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().join("outbox"); // does not exist yet
    let mailer = Mailer::start(MailSettings {
        from: FROM.into(),
        transport: TransportSettings::File {
            dir: mail_dir.clone(),
            fsync: true,
        },
        queue_capacity: 8,
        concurrency: 2,
    })
    .unwrap();

    let first = login_mail("hank@example.com", "F001", Duration::from_secs(30));
    let second = login_mail("ivy@example.com", "F002", Duration::from_secs(30));
    assert!(mailer.enqueue(first.clone()));
    assert!(mailer.enqueue(second.clone()));
    wait_stats(&mailer, "sent == 2", |s| s.sent == 2).await;

    let files = files_in(&mail_dir);
    assert_eq!(files.len(), 2, "{files:?}");
    let mut seen = Vec::new();
    for path in &files {
        let msg = as_received(std::fs::read(path).unwrap());
        assert_eq!(
            msg.header("Subject").as_deref(),
            Some("Your sign-in link for Acme Wiki")
        );
        let to = msg.header("To").unwrap();
        let expected = if to == first.to { &first } else { &second };
        assert_eq!(to, expected.to);
        assert!(msg.text().unwrap().contains(&expected.link));
        assert!(msg
            .html()
            .unwrap()
            .contains(&expected.link.replace('&', "&amp;")));
        seen.push(to);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{path:?}");
        }
    }
    seen.sort();
    assert_eq!(seen, vec!["hank@example.com", "ivy@example.com"]);
    // No temporary files left behind.
    assert_eq!(std::fs::read_dir(&mail_dir).unwrap().count(), 2);
}

#[tokio::test]
async fn console_transport_with_a_dir_also_writes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = Mailer::start(MailSettings {
        from: FROM.into(),
        transport: TransportSettings::Console {
            dir: Some(dir.path().to_owned()),
        },
        queue_capacity: 8,
        concurrency: 1,
    })
    .unwrap();
    let mail = login_mail("jack@example.com", "C001", Duration::from_secs(30));
    assert!(mailer.enqueue(mail.clone()));
    wait_stats(&mailer, "sent == 1", |s| s.sent == 1).await;

    let files = files_in(dir.path());
    assert_eq!(files.len(), 1);
    let msg = as_received(std::fs::read(&files[0]).unwrap());
    assert!(msg.text().unwrap().contains(&mail.link));
}

#[test]
fn render_escapes_html_and_keeps_headers_clean() {
    let mut mail = login_mail("kim@example.com", "R001", Duration::from_secs(30));
    mail.site_name = "<script>alert(1)</script> & \"co\"".into();
    let message = render(&mail, FROM).unwrap();
    let msg = as_received(message.formatted());

    let html = msg.html().unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;co&quot;"),
        "{html}"
    );
    // The plain-text part is text, not markup: it shows the name as is.
    assert!(msg.text().unwrap().contains("<script>alert(1)</script>"));

    // A line break in the site name cannot add a header.
    mail.site_name = "Acme\r\nBcc: evil@example.net".into();
    let msg = as_received(render(&mail, FROM).unwrap().formatted());
    assert_eq!(msg.header("Bcc"), None);
    assert_eq!(
        msg.header("Subject").as_deref(),
        Some("Your sign-in link for Acme  Bcc: evil@example.net")
    );
}

#[test]
fn render_refuses_bad_input() {
    let mail = login_mail("lee@example.com", "R002", Duration::from_secs(30));
    assert_eq!(
        render(&mail, "not a mailbox").unwrap_err(),
        MailError::BadFrom("not a mailbox".into())
    );

    let mut bad_to = mail.clone();
    bad_to.to = "lee at example.com".into();
    assert_eq!(
        render(&bad_to, FROM).unwrap_err(),
        MailError::BadRecipient("***".into())
    );
    bad_to.to = "lee@exa mple.com".into();
    assert_eq!(
        render(&bad_to, FROM).unwrap_err(),
        MailError::BadRecipient("l***@exa mple.com".into())
    );

    let mut bad_link = mail.clone();
    bad_link.link = "javascript:alert(1)".into();
    assert_eq!(
        render(&bad_link, FROM).unwrap_err(),
        MailError::BadLink("scheme is not http or https")
    );
    bad_link.link = "/relative/path".into();
    assert_eq!(
        render(&bad_link, FROM).unwrap_err(),
        MailError::BadLink("not an absolute URL")
    );
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Sends, retries and failures all log; none of their lines may hold the
/// link, the token, the code or the full recipient address.
#[tokio::test]
async fn logs_never_contain_the_link_or_the_code() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // This test runs on a current-thread runtime, so the worker's tasks run
    // on this thread and log into this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    let flaky = SmtpServer::start(Script::TempFailFirst(1));
    let rejecting = SmtpServer::start(Script::AlwaysReject);
    let flaky_mailer =
        Mailer::start(smtp_settings(flaky.port(), Duration::from_secs(5), 1)).unwrap();
    let rejecting_mailer =
        Mailer::start(smtp_settings(rejecting.port(), Duration::from_secs(5), 1)).unwrap();
    let refused_mailer =
        Mailer::start(smtp_settings(closed_port(), Duration::from_secs(5), 1)).unwrap();
    let mut full = smtp_settings(closed_port(), Duration::from_secs(5), 1);
    full.queue_capacity = 1;
    let full_mailer = Mailer::start(full).unwrap();

    let mails = [
        login_mail("alice@example.com", "LG01", Duration::from_secs(30)),
        login_mail("alice@example.com", "LG02", Duration::from_secs(30)),
        login_mail("alice@example.com", "LG03", Duration::from_millis(1200)),
        login_mail("alice@example.com", "LG04", Duration::from_millis(300)),
        login_mail("alice@example.com", "LG05", Duration::from_millis(300)),
    ];
    assert!(flaky_mailer.enqueue(mails[0].clone()));
    assert!(rejecting_mailer.enqueue(mails[1].clone()));
    assert!(refused_mailer.enqueue(mails[2].clone()));
    assert!(full_mailer.enqueue(mails[3].clone()));
    assert!(!full_mailer.enqueue(mails[4].clone()));

    wait_stats(&flaky_mailer, "flaky: sent", |s| {
        s.sent == 1 && s.retried >= 1
    })
    .await;
    wait_stats(&rejecting_mailer, "rejecting: failed", |s| s.failed == 1).await;
    wait_stats(&refused_mailer, "refused: failed", |s| s.failed == 1).await;
    wait_stats(&full_mailer, "full: failed", |s| s.failed == 1).await;
    assert_eq!(flaky.received().len(), 1);

    let text = logs.text();
    // The outcomes were logged, with the masked recipient ...
    assert!(text.contains("sign-in email sent"), "{text}");
    assert!(text.contains("will retry"), "{text}");
    assert!(text.contains("refused; not retrying"), "{text}");
    assert!(text.contains("before the link expired"), "{text}");
    assert!(text.contains("mail queue full"), "{text}");
    assert!(text.contains("a***@example.com"), "{text}");
    // ... and never a secret or the full address.
    assert!(!text.contains("alice@example.com"), "{text}");
    for mail in &mails {
        let token = mail
            .link
            .split("token=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        let formatted = format!("{}-{}", &mail.code[..4], &mail.code[4..]);
        for secret in [
            mail.link.as_str(),
            token,
            mail.code.as_str(),
            formatted.as_str(),
        ] {
            assert!(!text.contains(secret), "log holds {secret:?}:\n{text}");
        }
    }
}

#[tokio::test]
async fn clones_share_one_queue_after_the_original_is_dropped() {
    let server = SmtpServer::start(Script::Accept);
    let mailer = Mailer::start(smtp_settings(server.port(), Duration::from_secs(5), 1)).unwrap();
    let probe = mailer.clone();
    assert!(mailer.enqueue(login_mail(
        "mia@example.com",
        "D001",
        Duration::from_secs(30)
    )));
    drop(mailer);
    // One clone is still alive, so the queue still takes mail.
    assert!(probe.enqueue(login_mail(
        "mia@example.com",
        "D002",
        Duration::from_secs(30)
    )));
    let received = server.wait_for(2, WAIT).await;
    assert_eq!(received.len(), 2);
}

/// STARTTLS is required, not opportunistic: a server that does not offer it
/// gets no mail (and lettre says so as a client error: not retried).
#[tokio::test]
async fn starttls_against_a_plain_server_sends_nothing() {
    let server = SmtpServer::start(Script::Accept);
    let mut settings = smtp_settings(server.port(), Duration::from_secs(5), 1);
    if let TransportSettings::Smtp(smtp) = &mut settings.transport {
        smtp.tls = SmtpTls::StartTls;
        smtp.host = "localhost".into();
    }
    let mailer = Mailer::start(settings).unwrap();
    assert!(mailer.enqueue(login_mail(
        "nina@example.com",
        "S001",
        Duration::from_secs(30)
    )));
    let stats = wait_stats(&mailer, "failed == 1", |s| s.failed == 1).await;
    assert_eq!(stats.retried, 0);
    assert_eq!(server.attempts(), 0);
    assert_eq!(server.received().len(), 0);
}

/// Implicit TLS against a plain server: the handshake fails, nothing is sent
/// in the clear, and the message gives up at its deadline.
#[tokio::test]
async fn implicit_tls_against_a_plain_server_sends_nothing() {
    let server = SmtpServer::start(Script::Accept);
    let mut settings = smtp_settings(server.port(), Duration::from_secs(5), 1);
    if let TransportSettings::Smtp(smtp) = &mut settings.transport {
        smtp.tls = SmtpTls::Tls;
        smtp.host = "localhost".into();
    }
    let mailer = Mailer::start(settings).unwrap();
    assert!(mailer.enqueue(login_mail(
        "omar@example.com",
        "S002",
        Duration::from_millis(1500)
    )));
    let stats = wait_stats(&mailer, "failed == 1", |s| s.failed == 1).await;
    assert_eq!(stats.sent, 0);
    assert_eq!(server.attempts(), 0);
    assert_eq!(server.received().len(), 0);
}
