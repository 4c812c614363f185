//! The mailer's settings from the configuration (`[mail]`), and how many
//! writers each transport gets.

use super::{MailSettings, SmtpSettings, SmtpTls, TransportSettings};
use crate::config::{Config, MailTransport, SmtpTls as ConfigSmtpTls};

impl From<&Config> for MailSettings {
    fn from(config: &Config) -> MailSettings {
        let m = &config.mail;
        let transport = match &m.transport {
            MailTransport::Console { dir } => TransportSettings::Console { dir: dir.clone() },
            MailTransport::File { dir, fsync } => TransportSettings::File {
                dir: dir.clone(),
                fsync: *fsync,
            },
            MailTransport::Smtp(s) => TransportSettings::Smtp(SmtpSettings {
                host: s.host.clone(),
                port: s.port,
                tls: match s.tls {
                    ConfigSmtpTls::None => SmtpTls::None,
                    ConfigSmtpTls::StartTls => SmtpTls::StartTls,
                    ConfigSmtpTls::Tls => SmtpTls::Tls,
                },
                username: s.username.clone(),
                password: s
                    .password
                    .as_ref()
                    .map(|p| String::from_utf8_lossy(p.expose()).into_owned()),
                timeout: s.timeout,
            }),
        };
        // Files go into one directory, and creating or renaming a file there
        // takes the directory's lock: a second writer only waits for it,
        // spinning on a CPU the gateway needs (sign-in POSTs/s more than
        // doubled with one writer). Writers that flush each file to disk wait
        // for the disk instead, and their flushes share the journal's commits;
        // SMTP sends in parallel.
        let concurrency = match transport {
            TransportSettings::Smtp(_) | TransportSettings::File { fsync: true, .. } => 4,
            TransportSettings::File { fsync: false, .. } | TransportSettings::Console { .. } => 1,
        };
        MailSettings {
            from: m.from.clone(),
            transport,
            queue_capacity: m.queue_capacity,
            concurrency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn settings(mail: &str) -> MailSettings {
        let text = format!(
            "[session]\nsecret_env = \"S\"\n[mail]\n{mail}\n[[route]]\npath = \"/\"\nupstream = \"demo\"\n"
        );
        let env = [("S", "0123456789abcdef0123456789abcdef0123")];
        MailSettings::from(&Config::from_toml_str(&text, "t.toml", &env).unwrap())
    }

    #[test]
    fn one_writer_for_unflushed_files_four_for_smtp_and_flushed_ones() {
        let file = "transport = \"file\"\n[mail.file]\ndir = \"/tmp/outbox\"";
        assert_eq!(settings(file).concurrency, 1);
        assert_eq!(settings(&format!("{file}\nfsync = true")).concurrency, 4);
        assert_eq!(settings("transport = \"console\"").concurrency, 1);
        let smtp = "transport = \"smtp\"\n[mail.smtp]\nhost = \"smtp.example.com\"";
        assert_eq!(settings(smtp).concurrency, 4);
    }
}
