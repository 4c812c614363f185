//! The mode the suites run in, chosen by the environment so that the same
//! test files run unchanged in each:
//!
//! - `PORTCULLIS_TEST_FAST_PATH=off` adds `fast_path = false` to the
//!   `[server]` table of every gateway configuration the harness builds
//!   (hyper serves every request and hyper's client sends every upstream
//!   request). Unset or `on`: the default (the own HTTP/1 loop and the raw
//!   upstream client).
//! - `PORTCULLIS_TEST_LISTENER=tls`: the gateway under test listens with TLS
//!   (a self-signed certificate made here), its `public_url` says `https`,
//!   and the tests' clients ([`super::client`]) speak TLS to it. Unset or
//!   `plain`: plain TCP.
//!
//! A test that is inherently about one mode starts with [`plain_only!`],
//! [`own_loop_only!`] or [`fast_path_only!`] and a reason: in another mode
//! it prints `skipped in mode <mode>: <suite>::<test>: <reason>` (and
//! appends that line to `$PORTCULLIS_TEST_SKIP_LOG` when set, for
//! `.ci/run` to list) and returns. Everything else runs in every mode with
//! the same exact expectations, or with the one the mode implies (cookie
//! names, `X-Forwarded-Proto`, HSTS).

use std::sync::{Arc, OnceLock};

/// `PORTCULLIS_TEST_LISTENER=tls`.
pub fn tls() -> bool {
    static TLS: OnceLock<bool> = OnceLock::new();
    *TLS.get_or_init(
        || match std::env::var("PORTCULLIS_TEST_LISTENER").as_deref() {
            Err(_) | Ok("") | Ok("plain") => false,
            Ok("tls") => true,
            Ok(other) => panic!("PORTCULLIS_TEST_LISTENER={other:?}: expected plain or tls"),
        },
    )
}

/// The fast paths are on (`PORTCULLIS_TEST_FAST_PATH` unset or `on`).
pub fn fast_path() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(
        || match std::env::var("PORTCULLIS_TEST_FAST_PATH").as_deref() {
            Err(_) | Ok("") | Ok("on") => true,
            Ok("off") => false,
            Ok(other) => panic!("PORTCULLIS_TEST_FAST_PATH={other:?}: expected on or off"),
        },
    )
}

/// `<listener>/<fast paths>`: `plain/on` (the default), `plain/off`,
/// `tls/on`, `tls/off`, as `.ci/run --modes` names them.
pub fn name() -> String {
    format!(
        "{}/{}",
        if tls() { "tls" } else { "plain" },
        if fast_path() { "on" } else { "off" }
    )
}

/// `http` or `https`: how the tests' clients reach the gateway.
pub fn scheme() -> &'static str {
    if tls() {
        "https"
    } else {
        "http"
    }
}

/// The scheme the tests' connections do not have (for spoofed
/// `X-Forwarded-Proto` values that must not be believed).
pub fn other_scheme() -> &'static str {
    if tls() {
        "http"
    } else {
        "https"
    }
}

/// The name of a gateway cookie as this mode's requests get it:
/// `__Host-<base>` on the TLS listener, `<base>` over plain HTTP.
pub fn cookie(base: &str) -> String {
    if tls() {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

/// Reports a skipped test (stderr, and `$PORTCULLIS_TEST_SKIP_LOG`).
pub fn skip(test: &str, why: &str) {
    let line = format!("skipped in mode {}: {test}: {why}", name());
    eprintln!("{line}");
    if let Ok(path) = std::env::var("PORTCULLIS_TEST_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// `suite::test` for the test function this expands in (for the skip
/// line).
#[macro_export]
macro_rules! test_name {
    () => {{
        fn f() {}
        let name = std::any::type_name_of_val(&f);
        let name = name.strip_suffix("::f").unwrap_or(name);
        // `suite::test_name::{{closure}}` in an async test.
        name.trim_end_matches("::{{closure}}")
    }};
}

/// At the top of a test about the plain listener: returns (with a notice)
/// when the suites run on the TLS listener.
#[macro_export]
macro_rules! plain_only {
    ($why:expr) => {
        if $crate::support::mode::tls() {
            $crate::support::mode::skip($crate::test_name!(), $why);
            return;
        }
    };
}

/// At the top of a test about the own fast paths: returns (with a notice)
/// when they are off, and on the TLS listener (which the own HTTP/1 loop
/// never serves).
#[macro_export]
macro_rules! own_loop_only {
    ($why:expr) => {
        if $crate::support::mode::tls() || !$crate::support::mode::fast_path() {
            $crate::support::mode::skip($crate::test_name!(), $why);
            return;
        }
    };
}

/// At the top of a test about the raw upstream client: returns (with a
/// notice) when the fast paths are off.
#[macro_export]
macro_rules! fast_path_only {
    ($why:expr) => {
        if !$crate::support::mode::fast_path() {
            $crate::support::mode::skip($crate::test_name!(), $why);
            return;
        }
    };
}

/// The gateway configuration `text` for this mode:
///
/// - fast paths off: `fast_path = false` in its `[server]` table (unless
///   the text sets `fast_path` itself);
/// - TLS listener: an `http://` `public_url` says `https://` (the links
///   in mails then name the origin the tests' clients use, as they do
///   over plain HTTP).
///
/// Line numbers after the `[server]` header move down by one when a line
/// is added.
pub fn config_text(text: &str) -> String {
    if fast_path() && !tls() {
        return text.to_string();
    }
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let Some((header, end)) = server_table(&lines) else {
        if fast_path() {
            return text.to_string();
        }
        // No [server] table: one at the end (a table may follow any
        // other, and this keeps the root keys where they were).
        let mut out = text.to_string();
        out.push_str("\n[server]\nfast_path = false\n");
        return out;
    };
    if tls() {
        for line in &mut lines[header + 1..end] {
            if key_of(line) == Some("public_url") {
                *line = line.replacen("\"http://", "\"https://", 1);
            }
        }
    }
    if !fast_path() && !sets_fast_path(text) {
        // Right after the header: keys there always belong to the table.
        lines.insert(header + 1, "fast_path = false".into());
    }
    let mut out = lines.join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Whether `text` sets `[server] fast_path` itself (then the mode leaves
/// it as it is).
pub fn sets_fast_path(text: &str) -> bool {
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    server_table(&lines).is_some_and(|(header, end)| {
        lines[header + 1..end]
            .iter()
            .any(|l| key_of(l) == Some("fast_path"))
    })
}

/// The child-process configuration for this mode: [`config_text`], and on
/// the TLS listener `listen` becomes `tls_listen` (so the only listener is
/// the TLS one, on the same port) with the test certificate written to
/// `dir`.
pub fn process_config_text(text: &str, dir: &std::path::Path) -> String {
    let text = config_text(text);
    if !tls() {
        return text;
    }
    let cert = cert();
    let cert_path = dir.join("portcullis-test-cert.pem");
    let key_path = dir.join("portcullis-test-key.pem");
    std::fs::write(&cert_path, &cert.cert_pem).unwrap();
    std::fs::write(&key_path, &cert.key_pem).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let (header, end) = server_table(&lines)
        .unwrap_or_else(|| panic!("TLS mode needs a [server] table with listen:\n{text}"));
    let listen = (header + 1..end)
        .find(|&i| key_of(&lines[i]) == Some("listen"))
        .unwrap_or_else(|| panic!("TLS mode needs [server] listen:\n{text}"));
    let value = lines[listen].split_once('=').unwrap().1.trim().to_string();
    lines[listen] = format!("tls_listen = {value}");
    lines.insert(
        listen + 1,
        format!(
            "tls_cert = {:?}\ntls_key = {:?}",
            cert_path.display().to_string(),
            key_path.display().to_string()
        ),
    );
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// The line of the `[server]` header and the line where its table ends
/// (the next table header, or the end).
fn server_table(lines: &[String]) -> Option<(usize, usize)> {
    let header = lines.iter().position(|l| header_of(l) == Some("server"))?;
    let end = (header + 1..lines.len())
        .find(|&i| header_of(&lines[i]).is_some())
        .unwrap_or(lines.len());
    Some((header, end))
}

/// `server` for a line `[server]` (`[[route]]` gives `[route]`).
fn header_of(line: &str) -> Option<&str> {
    let line = line.split('#').next().unwrap_or("").trim();
    let inner = line.strip_prefix('[')?.strip_suffix(']')?;
    Some(inner.trim())
}

/// The key of a `key = value` line.
fn key_of(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && !key.starts_with('#')).then_some(key)
}

/// A self-signed certificate for `127.0.0.1` and `localhost`, one per
/// test process.
pub struct TestCert {
    pub cert_der: rustls::pki_types::CertificateDer<'static>,
    pub key_pkcs8: Vec<u8>,
    pub cert_pem: String,
    pub key_pem: String,
}

pub fn cert() -> &'static TestCert {
    static CERT: OnceLock<TestCert> = OnceLock::new();
    CERT.get_or_init(|| {
        let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap();
        TestCert {
            cert_der: c.cert.der().clone(),
            key_pkcs8: c.signing_key.serialize_der(),
            cert_pem: c.cert.pem(),
            key_pem: c.signing_key.serialize_pem(),
        }
    })
}

/// The gateway's TLS configuration (the certificate above; ALPN h2 and
/// http/1.1, as the real binary's).
pub fn server_tls() -> Arc<rustls::ServerConfig> {
    let c = cert();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(c.key_pkcs8.clone().into());
    portcullis::transport::tls::from_der(vec![c.cert_der.clone()], key).unwrap()
}

/// A client configuration that trusts only the test certificate and
/// offers `alpn`.
pub fn client_tls(alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert().cert_der.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}
