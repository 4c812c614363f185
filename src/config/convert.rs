//! Raw → typed conversion of every section. Each function records its
//! problems under the dotted key and returns `None` only when it cannot go
//! on; defaults live here, next to the key they belong to.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::error::Problems;
use super::raw::*;
use super::ui::ui_config;
use super::values::{self, Rate};
use super::*;

const MIN_SECRET_BYTES: usize = 32;

pub(super) fn config(
    raw: RawConfig,
    file: &str,
    env: &dyn Environment,
    p: &mut Problems,
) -> Option<Config> {
    let RawConfig {
        server,
        session,
        login,
        mail,
        store,
        ui,
        log,
        admin,
        groups,
        assertion,
        routes,
        tokens,
        share,
        providers,
    } = raw;
    let mut warnings = Vec::new();
    let server = server_config(server, p);
    let session = session_config(session, env, p, &mut warnings);
    let login = login_config(login, p);
    let mail = mail_config(mail, env, p);
    let store = super::store::store_config(store, env, p);
    let ui = ui_config(ui, p);
    let groups_file = login.as_ref().and_then(|l| l.groups_file.as_deref());
    let token_groups = super::access::token_groups(&tokens);
    let groups = super::groups::groups(groups, groups_file, &token_groups, p);
    let strip: &[String] = server.as_ref().map_or(&[], |s| &s.strip_headers);
    let routes = route_configs(routes, &groups, strip, p);
    let public_url = server.as_ref().map(|s| &s.public_url);
    let assertion = super::assertion::settings(assertion, public_url, p);
    let tokens = super::access::tokens(tokens, &groups, p);
    let share = super::access::share(share, p);
    let providers = super::providers::providers(providers, env, p);
    if let Some(routes) = &routes {
        if routes.is_empty() {
            warnings.push(format!(
                "{file}: no [[route]]: every request that is not for /.portcullis/ gets 404"
            ));
        }
    }
    if let (Some(s), Some(server)) = (&session, &server) {
        if let Some(domain) = &s.cookie_domain {
            let host = &server.public_url.host;
            if host != domain && !host.ends_with(&format!(".{domain}")) {
                p.add(
                    "session.cookie_domain",
                    format!("{domain:?} does not cover public_url's host {host:?}"),
                );
            }
        }
    }
    Some(Config {
        source: file.to_string(),
        server: server?,
        session: session?,
        login: login?,
        mail: mail?,
        store: store?,
        ui: ui?,
        log: LogConfig {
            audit_file: log.audit_file.map(std::path::PathBuf::from),
        },
        admin: AdminConfig {
            listen: match admin.listen {
                Some(l) => Some(socket_addr(p, "admin.listen", &l)?),
                None => None,
            },
            metrics: admin.metrics.unwrap_or(true),
        },
        groups,
        assertion,
        routes: routes?,
        tokens,
        share,
        providers,
        warnings,
    })
}

pub(super) fn duration_or(
    p: &mut Problems,
    key: &str,
    v: Option<String>,
    default: Duration,
) -> Duration {
    match v {
        None => default,
        Some(text) => match values::duration(&text) {
            Ok(d) if d.is_zero() => {
                p.add(key, format!("{text:?} must be longer than zero"));
                default
            }
            Ok(d) => d,
            Err(m) => {
                p.add(key, m);
                default
            }
        },
    }
}

fn rate_or(p: &mut Problems, key: &str, v: Option<String>, default: Rate) -> Rate {
    match v {
        None => default,
        Some(text) => p.check(key, values::rate(&text)).unwrap_or(default),
    }
}

fn count_or(
    p: &mut Problems,
    key: &str,
    v: Option<i64>,
    default: usize,
    min: usize,
    max: usize,
) -> usize {
    match v {
        None => default,
        Some(n) if n >= min as i64 && n <= max as i64 => n as usize,
        Some(n) => {
            p.add(key, format!("{n} is out of range ({min} to {max})"));
            default
        }
    }
}

fn socket_addr(p: &mut Problems, key: &str, v: &str) -> Option<SocketAddr> {
    p.check(
        key,
        v.parse::<SocketAddr>()
            .map_err(|_| format!("{v:?} is not an address like \"0.0.0.0:8080\"")),
    )
}

fn server_config(raw: RawServer, p: &mut Problems) -> Option<ServerConfig> {
    let RawServer {
        listen,
        tls_listen,
        tls_cert,
        tls_key,
        public_url,
        trusted_proxies,
        strip_headers,
        max_header_count,
        max_header_bytes,
        max_uri_bytes,
        max_body_bytes,
        header_read_timeout,
        body_read_timeout,
        tls_handshake_timeout,
        shutdown_timeout,
        threads,
        fast_path,
    } = raw;
    let listen = match (&listen, &tls_listen) {
        (None, None) => socket_addr(p, "server.listen", "0.0.0.0:8080"),
        (Some(l), _) => socket_addr(p, "server.listen", l),
        (None, Some(_)) => None,
    };
    let tls = match (tls_listen, tls_cert, tls_key) {
        (None, None, None) => None,
        (Some(l), Some(cert), Some(key)) => Some(TlsConfig {
            listen: socket_addr(p, "server.tls_listen", &l)?,
            cert: PathBuf::from(cert),
            key: PathBuf::from(key),
        }),
        (l, c, k) => {
            let missing: Vec<&str> = [
                ("server.tls_listen", l.is_none()),
                ("server.tls_cert", c.is_none()),
                ("server.tls_key", k.is_none()),
            ]
            .iter()
            .filter(|(_, m)| *m)
            .map(|(n, _)| *n)
            .collect();
            for key in &missing {
                p.add(
                    *key,
                    "is missing: tls_listen, tls_cert and tls_key go together",
                );
            }
            None
        }
    };
    let public_url = public_url_config(p, public_url.as_deref().unwrap_or("http://localhost:8080"));
    let mut proxies = Vec::new();
    for (i, cidr) in trusted_proxies.unwrap_or_default().iter().enumerate() {
        let key = format!("server.trusted_proxies[{i}]");
        let net = cidr
            .parse::<IpNet>()
            .or_else(|_| cidr.parse::<std::net::IpAddr>().map(IpNet::from));
        match net {
            Ok(n) => proxies.push(n),
            Err(_) => p.add(key, format!("{cidr:?} is not a CIDR like \"10.0.0.0/8\"")),
        }
    }
    let strip_headers = strip_headers_config(p, strip_headers.unwrap_or_default());
    let limits = Limits {
        max_header_count: count_or(p, "server.max_header_count", max_header_count, 100, 8, 1000),
        max_header_bytes: count_or(
            p,
            "server.max_header_bytes",
            max_header_bytes,
            32 * 1024,
            4096,
            1024 * 1024,
        ),
        max_uri_bytes: count_or(p, "server.max_uri_bytes", max_uri_bytes, 8192, 256, 65_534),
        max_body_bytes: count_or(
            p,
            "server.max_body_bytes",
            max_body_bytes,
            64 * 1024,
            1024,
            16 * 1024 * 1024,
        ),
        header_read_timeout: duration_or(
            p,
            "server.header_read_timeout",
            header_read_timeout,
            Duration::from_secs(10),
        ),
        body_read_timeout: duration_or(
            p,
            "server.body_read_timeout",
            body_read_timeout,
            Duration::from_secs(30),
        ),
        tls_handshake_timeout: duration_or(
            p,
            "server.tls_handshake_timeout",
            tls_handshake_timeout,
            Duration::from_secs(10),
        ),
        shutdown_timeout: duration_or(
            p,
            "server.shutdown_timeout",
            shutdown_timeout,
            Duration::from_secs(30),
        ),
        fast_path: fast_path.unwrap_or(true),
    };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let threads = match count_or(p, "server.threads", threads, 0, 0, 1024) {
        0 => cores,
        n => n,
    };
    Some(ServerConfig {
        threads,
        listen,
        tls,
        public_url: public_url?,
        trusted_proxies: proxies,
        strip_headers,
        limits,
    })
}

/// `server.strip_headers`: header names, folded as the identity list is
/// compared (lowercase, `_` as `-`). The headers the gateway needs to
/// forward a request cannot be named.
fn strip_headers_config(p: &mut Problems, names: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let key = format!("server.strip_headers[{i}]");
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            p.add(key, format!("{name:?} is not a header name"));
            continue;
        }
        let folded: String = name
            .bytes()
            .map(|b| {
                char::from(if b == b'_' {
                    b'-'
                } else {
                    b.to_ascii_lowercase()
                })
            })
            .collect();
        if matches!(
            folded.as_str(),
            "host" | "cookie" | "content-length" | "transfer-encoding"
        ) {
            p.add(
                key,
                format!("{name:?} is needed to forward requests and cannot be stripped"),
            );
            continue;
        }
        if !out.contains(&folded) {
            out.push(folded);
        }
    }
    out
}

fn public_url_config(p: &mut Problems, text: &str) -> Option<PublicUrl> {
    let key = "server.public_url";
    let url = match url::Url::parse(text) {
        Ok(u) => u,
        Err(e) => {
            p.add(key, format!("{text:?} is not a URL: {e}"));
            return None;
        }
    };
    let scheme = match url.scheme() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => {
            p.add(
                key,
                format!("{text:?}: scheme {other:?} is not http or https"),
            );
            return None;
        }
    };
    if !url.username().is_empty() || url.password().is_some() {
        p.add(
            key,
            format!("{text:?} must not hold a user name or password"),
        );
        return None;
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        p.add(
            key,
            format!("{text:?} must be an origin only, like \"https://login.example.com\""),
        );
        return None;
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.trim_end_matches('.').to_ascii_lowercase(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        None => {
            p.add(key, format!("{text:?} has no host"));
            return None;
        }
    };
    Some(PublicUrl {
        scheme,
        host,
        port: url.port(),
    })
}

pub(super) fn secret_from(
    p: &mut Problems,
    env_key: &str,
    file_key: &str,
    env_name: Option<String>,
    file_path: Option<String>,
    env: &dyn Environment,
) -> Option<Option<Secret>> {
    match (env_name, file_path) {
        (Some(_), Some(_)) => {
            p.add(
                file_key,
                format!("set either {env_key} or {file_key}, not both"),
            );
            None
        }
        (Some(name), None) => match env.var(&name) {
            Some(v) if !v.trim().is_empty() => {
                Some(Some(Secret::new(v.trim().as_bytes().to_vec())))
            }
            _ => {
                p.add(
                    env_key,
                    format!("the environment variable {name:?} is not set or empty"),
                );
                None
            }
        },
        (None, Some(path)) => match std::fs::read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let trimmed = text.trim();
                if trimmed.is_empty() {
                    p.add(file_key, format!("the file {path:?} is empty"));
                    None
                } else {
                    Some(Some(Secret::new(trimmed.as_bytes().to_vec())))
                }
            }
            Err(e) => {
                p.add(file_key, format!("cannot read {path:?}: {e}"));
                None
            }
        },
        (None, None) => Some(None),
    }
}

fn session_config(
    raw: RawSession,
    env: &dyn Environment,
    p: &mut Problems,
    warnings: &mut Vec<String>,
) -> Option<SessionConfig> {
    let RawSession {
        secret_env,
        secret_file,
        lifetime,
        idle_timeout,
        cookie_domain,
        revalidate,
        store_grace,
    } = raw;
    let secret = secret_from(
        p,
        "session.secret_env",
        "session.secret_file",
        secret_env,
        secret_file,
        env,
    );
    if let Some(Some(s)) = &secret {
        if s.expose().len() < MIN_SECRET_BYTES {
            p.add(
                "session.secret_env",
                format!(
                    "the session secret is {} bytes; it must be at least {MIN_SECRET_BYTES} (try `openssl rand -base64 48`)",
                    s.expose().len()
                ),
            );
        }
    }
    if let Some(None) = &secret {
        warnings.push(
            "session.secret_env and session.secret_file are unset: a random key is made at every start, so sessions and links do not survive a restart and cannot be shared between instances".into(),
        );
    }
    let lifetime = duration_or(
        p,
        "session.lifetime",
        lifetime,
        Duration::from_secs(7 * 86_400),
    );
    let idle = duration_or(
        p,
        "session.idle_timeout",
        idle_timeout,
        Duration::from_secs(86_400),
    );
    if idle > lifetime {
        warnings
            .push("session.idle_timeout is longer than session.lifetime; the lifetime wins".into());
    }
    let cookie_domain = match cookie_domain {
        None => None,
        Some(d) => {
            let trimmed = d.trim().trim_start_matches('.');
            match values::host(trimmed) {
                Ok(h) if !h.contains(':') && h.contains('.') => Some(h),
                Ok(_) => {
                    p.add(
                        "session.cookie_domain",
                        format!("{d:?} must be a domain with at least two labels and no port"),
                    );
                    None
                }
                Err(m) => {
                    p.add("session.cookie_domain", m);
                    None
                }
            }
        }
    };
    Some(SessionConfig {
        secret: secret?,
        lifetime,
        idle_timeout: idle.min(lifetime),
        cookie_domain,
        revalidate: duration_or(p, "session.revalidate", revalidate, Duration::from_secs(5)),
        store_grace: duration_or(
            p,
            "session.store_grace",
            store_grace,
            Duration::from_secs(30),
        ),
    })
}

fn allow_list(
    p: &mut Problems,
    prefix: &str,
    emails: Option<Vec<String>>,
    domains: Option<Vec<String>>,
) -> AllowList {
    let mut list = AllowList::default();
    for (i, e) in emails.unwrap_or_default().iter().enumerate() {
        match crate::address::parse(e) {
            Ok(a) => {
                list.emails.insert(a);
            }
            Err(err) => p.add(
                format!("{prefix}allow_emails[{i}]"),
                format!("{e:?} is not one email address ({err})"),
            ),
        }
    }
    let mut domains_set = BTreeSet::new();
    for (i, d) in domains.unwrap_or_default().iter().enumerate() {
        let trimmed = d.trim().trim_start_matches('@');
        match values::host(trimmed) {
            Ok(h) if !h.contains(':') => {
                domains_set.insert(h);
            }
            Ok(_) => p.add(
                format!("{prefix}allow_domains[{i}]"),
                format!("{d:?} must not have a port"),
            ),
            Err(m) => p.add(format!("{prefix}allow_domains[{i}]"), m),
        }
    }
    list.domains = domains_set;
    list
}

fn login_config(raw: RawLogin, p: &mut Problems) -> Option<LoginConfig> {
    let RawLogin {
        link_ttl,
        allow_emails,
        allow_domains,
        groups_file,
        address_rate,
        ip_rate,
        resend_delay,
        code_attempts,
        max_pending_per_ip,
        max_pending,
        email,
    } = raw;
    Some(LoginConfig {
        email: email.unwrap_or(true),
        link_ttl: duration_or(p, "login.link_ttl", link_ttl, Duration::from_secs(15 * 60)),
        allow: allow_list(p, "login.", allow_emails, allow_domains),
        groups_file: groups_file.map(PathBuf::from),
        address_rate: rate_or(
            p,
            "login.address_rate",
            address_rate,
            Rate {
                count: 5,
                window: Duration::from_secs(15 * 60),
            },
        ),
        ip_rate: rate_or(
            p,
            "login.ip_rate",
            ip_rate,
            Rate {
                count: 30,
                window: Duration::from_secs(15 * 60),
            },
        ),
        resend_delay: match resend_delay {
            None => Duration::from_secs(60),
            Some(t) => p
                .check("login.resend_delay", values::duration(&t))
                .unwrap_or_default(),
        },
        code_attempts: count_or(p, "login.code_attempts", code_attempts, 5, 1, 100) as u32,
        max_pending_per_ip: count_or(
            p,
            "login.max_pending_per_ip",
            max_pending_per_ip,
            100,
            1,
            1_000_000,
        ) as u64,
        max_pending: count_or(p, "login.max_pending", max_pending, 10_000, 1, 10_000_000) as u64,
    })
}

fn mail_config(raw: RawMail, env: &dyn Environment, p: &mut Problems) -> Option<MailConfig> {
    let RawMail {
        from,
        transport,
        queue_capacity,
        smtp,
        file,
    } = raw;
    let from = from.unwrap_or_else(|| "Portcullis <login@localhost>".into());
    let (file_dir, fsync) = match file {
        Some(RawMailFile { dir, fsync }) => (dir, fsync.unwrap_or(false)),
        None => (None, false),
    };
    let transport = transport.as_deref().unwrap_or("console");
    // A [mail.smtp] table is checked even when the transport does not use
    // it: a mistake there would otherwise surface only when the
    // transport is switched to it.
    let smtp = match smtp {
        Some(smtp) if transport != "smtp" => {
            smtp_config(smtp, env, p);
            None
        }
        smtp => smtp,
    };
    let transport = match transport {
        "console" => MailTransport::Console {
            dir: file_dir.map(PathBuf::from),
        },
        "file" => MailTransport::File {
            dir: PathBuf::from(file_dir.unwrap_or_else(|| "./mail".into())),
            fsync,
        },
        "smtp" => {
            let Some(smtp) = smtp else {
                p.add(
                    "mail.smtp",
                    "transport is \"smtp\" but there is no [mail.smtp] table",
                );
                return None;
            };
            MailTransport::Smtp(smtp_config(smtp, env, p)?)
        }
        other => {
            p.add(
                "mail.transport",
                format!("{other:?} is not one of \"smtp\", \"file\", \"console\""),
            );
            return None;
        }
    };
    Some(MailConfig {
        from,
        transport,
        queue_capacity: count_or(p, "mail.queue_capacity", queue_capacity, 1024, 1, 1_000_000),
    })
}

fn smtp_config(raw: RawSmtp, env: &dyn Environment, p: &mut Problems) -> Option<SmtpConfig> {
    let RawSmtp {
        host,
        port,
        tls,
        username,
        password_env,
        password_file,
        timeout,
    } = raw;
    let Some(host) = host.filter(|h| !h.trim().is_empty()) else {
        p.add("mail.smtp.host", "is missing");
        return None;
    };
    let tls = match tls.as_deref().unwrap_or("starttls") {
        "starttls" => SmtpTls::StartTls,
        "tls" => SmtpTls::Tls,
        "none" => SmtpTls::None,
        other => {
            p.add(
                "mail.smtp.tls",
                format!("{other:?} is not one of \"starttls\", \"tls\", \"none\""),
            );
            SmtpTls::StartTls
        }
    };
    let default_port = match tls {
        SmtpTls::Tls => 465,
        SmtpTls::StartTls => 587,
        SmtpTls::None => 25,
    };
    let port = count_or(p, "mail.smtp.port", port, default_port, 1, 65_535) as u16;
    let password = secret_from(
        p,
        "mail.smtp.password_env",
        "mail.smtp.password_file",
        password_env,
        password_file,
        env,
    )?;
    if password.is_some() && username.is_none() {
        p.add("mail.smtp.username", "is missing while a password is set");
    }
    Some(SmtpConfig {
        host: host.trim().to_string(),
        port,
        tls,
        username,
        password,
        timeout: duration_or(p, "mail.smtp.timeout", timeout, Duration::from_secs(30)),
    })
}

/// A route's host and path: routes there must not share a method.
type Place = (Option<String>, String);
/// A route at a place: its index and `methods`.
type Taken = (usize, Option<Vec<http::Method>>);

fn route_configs(
    raw: Vec<RawRoute>,
    groups: &crate::groups::Groups,
    strip: &[String],
    p: &mut Problems,
) -> Option<Vec<RouteConfig>> {
    let mut out = Vec::with_capacity(raw.len());
    // Host and path → the routes there so far (index, methods).
    let mut seen: BTreeMap<Place, Vec<Taken>> = BTreeMap::new();
    for (i, mut r) in raw.into_iter().enumerate() {
        let k = |field: &str| format!("route[{i}].{field}");
        let options = super::route_options::read(p, i, &mut r, strip);
        let RawRoute {
            name,
            host,
            path,
            access,
            allow_emails,
            allow_domains,
            allow_groups,
            methods,
            bypass_networks,
            deny,
            connect_timeout,
            timeout,
            ..
        } = r;
        let host = match host {
            None => None,
            Some(h) => p.check(&k("host"), values::host(&h)),
        };
        let path = path.unwrap_or_else(|| "/".into());
        let clean = if path.len() > 1 {
            path.trim_end_matches('/').to_string()
        } else {
            path.clone()
        };
        let path = match crate::path::normalize(&path) {
            // Also its own matching view: a prefix with `;` or a segment
            // ending in a dot or space could never match.
            Ok(n)
                if (n.len() <= 1 || n.trim_end_matches('/') == clean)
                    && crate::path::matching_view(&n) == n.as_str() =>
            {
                clean
            }
            _ => {
                p.add(
                    k("path"),
                    format!("{path:?} is not a clean absolute path like \"/app\""),
                );
                continue;
            }
        };
        let Some((upstream, forward)) = options else {
            continue;
        };
        let access = match access.as_deref().unwrap_or("authenticated") {
            "authenticated" => Access::Authenticated,
            "public" => Access::Public,
            other => {
                p.add(
                    k("access"),
                    format!("{other:?} is not one of \"authenticated\", \"public\""),
                );
                Access::Authenticated
            }
        };
        let mut allow = allow_list(p, &format!("route[{i}]."), allow_emails, allow_domains);
        for (j, name) in allow_groups.unwrap_or_default().iter().enumerate() {
            match groups.id(name) {
                Some(id) if !allow.groups.contains(&id) => allow.groups.push(id),
                Some(_) => {}
                None => p.add(
                    format!("route[{i}].allow_groups[{j}]"),
                    format!("no group {name:?} in [groups] or login.groups_file"),
                ),
            }
        }
        if access == Access::Public && !allow.is_empty() {
            p.add(
                k("access"),
                "is \"public\" but allow_emails/allow_domains/allow_groups are set; a public route lets everyone in",
            );
        }
        let methods = methods.map(|list| route_methods(p, i, list));
        let deny = deny.unwrap_or(false);
        let mut bypass = Vec::new();
        for (j, cidr) in bypass_networks.unwrap_or_default().iter().enumerate() {
            match cidr
                .parse::<IpNet>()
                .or_else(|_| cidr.parse::<std::net::IpAddr>().map(IpNet::from))
            {
                Ok(n) => bypass.push(n),
                Err(_) => p.add(
                    format!("route[{i}].bypass_networks[{j}]"),
                    format!("{cidr:?} is not a CIDR like \"10.0.0.0/8\""),
                ),
            }
        }
        if !bypass.is_empty() && (deny || access == Access::Public) {
            p.add(
                k("bypass_networks"),
                "is set on a route that is public or denied, where it can change nothing",
            );
        }
        // Routes on one host and path must not both take a method: the
        // one whose `methods` has it serves, else the one without.
        let siblings = seen.entry((host.clone(), path.clone())).or_default();
        for (j, other) in siblings.iter() {
            match (&methods, other) {
                (None, None) => p.add(
                    k("path"),
                    format!(
                        "route[{j}] already has host {} and path {path:?}; give one of them `methods`",
                        host.as_deref().unwrap_or("(any)")
                    ),
                ),
                (Some(mine), Some(theirs)) => {
                    if let Some(m) = mine.iter().find(|m| theirs.contains(m)) {
                        p.add(
                            k("methods"),
                            format!("{m} is also in route[{j}]'s, which has the same host and path"),
                        );
                    }
                }
                _ => {}
            }
        }
        siblings.push((i, methods.clone()));
        let name = name.unwrap_or_else(|| match &host {
            Some(h) => format!("{h}{path}"),
            None => path.clone(),
        });
        out.push(RouteConfig {
            name,
            host,
            path,
            upstream,
            access,
            allow,
            methods,
            bypass_networks: bypass,
            deny,
            connect_timeout: duration_or(
                p,
                &k("connect_timeout"),
                connect_timeout,
                Duration::from_secs(5),
            ),
            timeout: duration_or(p, &k("timeout"), timeout, Duration::from_secs(60)),
            forward,
        });
    }
    Some(out)
}

/// `route[i].methods`: method names, uppercase (`"get"` is `GET`), none
/// twice; an empty list is an error (the route would match nothing).
fn route_methods(p: &mut Problems, i: usize, list: Vec<String>) -> Vec<http::Method> {
    if list.is_empty() {
        p.add(
            format!("route[{i}].methods"),
            "is empty: the route would match no request (leave it out for every method)",
        );
    }
    let mut out = Vec::with_capacity(list.len());
    for (j, name) in list.iter().enumerate() {
        let upper = name.trim().to_ascii_uppercase();
        match http::Method::from_bytes(upper.as_bytes()) {
            Ok(m) if !upper.is_empty() => {
                if !out.contains(&m) {
                    out.push(m);
                }
            }
            _ => p.add(
                format!("route[{i}].methods[{j}]"),
                format!("{name:?} is not an HTTP method"),
            ),
        }
    }
    out
}
