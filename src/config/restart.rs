//! Which keys a reload (SIGHUP) cannot apply: those read once at start,
//! by the listeners and workers (addresses, TLS files, threads, hyper's
//! limits and timers), the store, the mailer and the session cache. A
//! reload swaps in everything else; for these it can only say "restart to
//! apply", and only for the ones whose value changed.

use super::{Config, MailTransport, StoreConfig};

impl Config {
    /// The keys read only at start whose value differs in `new`, in file
    /// order.
    pub fn restart_keys(&self, new: &Config) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut check = |key: &'static str, changed: bool| {
            if changed {
                keys.push(key);
            }
        };
        let (a, b) = (&self.server, &new.server);
        check("server.listen", a.listen != b.listen);
        let tls = |c: &Config| {
            c.server
                .tls
                .as_ref()
                .map(|t| (t.listen, t.cert.clone(), t.key.clone()))
        };
        let (ta, tb) = (tls(self), tls(new));
        check(
            "server.tls_listen",
            ta.as_ref().map(|t| t.0) != tb.as_ref().map(|t| t.0),
        );
        check(
            "server.tls_cert",
            ta.as_ref().map(|t| &t.1) != tb.as_ref().map(|t| &t.1),
        );
        check(
            "server.tls_key",
            ta.as_ref().map(|t| &t.2) != tb.as_ref().map(|t| &t.2),
        );
        let (la, lb) = (&a.limits, &b.limits);
        // Also checked per request with the live value, but hyper's
        // buffers and the own loop's header table are sized at start.
        check(
            "server.max_header_count",
            la.max_header_count != lb.max_header_count,
        );
        check(
            "server.max_header_bytes",
            la.max_header_bytes != lb.max_header_bytes,
        );
        check("server.max_uri_bytes", la.max_uri_bytes != lb.max_uri_bytes);
        check(
            "server.header_read_timeout",
            la.header_read_timeout != lb.header_read_timeout,
        );
        check(
            "server.tls_handshake_timeout",
            la.tls_handshake_timeout != lb.tls_handshake_timeout,
        );
        check(
            "server.shutdown_timeout",
            la.shutdown_timeout != lb.shutdown_timeout,
        );
        check("server.threads", a.threads != b.threads);
        check("admin.listen", self.admin.listen != new.admin.listen);
        check("admin.metrics", self.admin.metrics != new.admin.metrics);
        check("server.fast_path", la.fast_path != lb.fast_path);

        let (sa, sb) = (&self.session, &new.session);
        check("session.secret", sa.secret != sb.secret);
        check("session.revalidate", sa.revalidate != sb.revalidate);
        check("session.store_grace", sa.store_grace != sb.store_grace);

        let (ma, mb) = (&self.mail, &new.mail);
        check("mail.from", ma.from != mb.from);
        check(
            "mail.queue_capacity",
            ma.queue_capacity != mb.queue_capacity,
        );
        match (&ma.transport, &mb.transport) {
            (MailTransport::Console { dir: x }, MailTransport::Console { dir: y }) => {
                check("mail.file.dir", x != y);
            }
            (
                MailTransport::File { dir: x, fsync: f },
                MailTransport::File { dir: y, fsync: g },
            ) => {
                check("mail.file.dir", x != y);
                check("mail.file.fsync", f != g);
            }
            (MailTransport::Smtp(x), MailTransport::Smtp(y)) => {
                check("mail.smtp.host", x.host != y.host);
                check("mail.smtp.port", x.port != y.port);
                check("mail.smtp.tls", x.tls != y.tls);
                check("mail.smtp.username", x.username != y.username);
                check("mail.smtp.password", x.password != y.password);
                check("mail.smtp.timeout", x.timeout != y.timeout);
            }
            _ => check("mail.transport", true),
        }

        match (&self.store, &new.store) {
            (StoreConfig::Memory, StoreConfig::Memory) => {}
            (StoreConfig::Redis(x), StoreConfig::Redis(y)) => {
                for key in x.changed_keys(y) {
                    check(key, true);
                }
            }
            _ => check("store.backend", true),
        }
        keys
    }
}
