//! The rustls client configuration of a route's `https://` upstreams
//! (`tls_ca_file`, `tls_client_cert_file`, `tls_client_key_file`), read
//! once with the configuration; every problem names its key.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::error::Problems;
use super::raw::RawRoute;
use super::route_options::UpstreamTls;

/// The rustls client of an `https://` route: the system's roots, or only
/// `tls_ca_file`'s; a client certificate from `tls_client_cert_file` and
/// `tls_client_key_file`; HTTP/1.1 by ALPN. Verification is always on.
pub(super) fn tls_client(
    p: &mut Problems,
    i: usize,
    r: &mut RawRoute,
    server_name: Option<String>,
) -> Option<UpstreamTls> {
    let k = |field: &str| format!("route[{i}].{field}");
    let mut roots = rustls::RootCertStore::empty();
    let custom_ca = match r.tls_ca_file.take() {
        Some(file) => {
            let certs: Result<Vec<CertificateDer<'static>>, _> =
                CertificateDer::pem_file_iter(&file).and_then(|it| it.collect());
            match certs {
                Ok(certs) if !certs.is_empty() => {
                    let (_, bad) = roots.add_parsable_certificates(certs);
                    if bad > 0 || roots.is_empty() {
                        p.add(
                            k("tls_ca_file"),
                            format!("{file}: {bad} certificate(s) could not be used as a CA"),
                        );
                    }
                }
                Ok(_) => p.add(
                    k("tls_ca_file"),
                    format!("{file}: no PEM certificate in it"),
                ),
                Err(e) => p.add(k("tls_ca_file"), format!("{file}: {e}")),
            }
            true
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                p.add(
                    k("upstream"),
                    "is https:// but no system CA certificates were found; set tls_ca_file",
                );
            }
            false
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b.with_root_certificates(roots),
        Err(e) => {
            p.add(k("upstream"), format!("TLS: {e}"));
            return None;
        }
    };
    let cert_file = r.tls_client_cert_file.take();
    let key_file = r.tls_client_key_file.take();
    let client_cert = cert_file.is_some();
    let mut config = match (cert_file, key_file) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let certs: Result<Vec<CertificateDer<'static>>, _> =
                CertificateDer::pem_file_iter(&cert).and_then(|it| it.collect());
            let certs = match certs {
                Ok(c) if !c.is_empty() => c,
                Ok(_) => {
                    p.add(
                        k("tls_client_cert_file"),
                        format!("{cert}: no PEM certificate in it"),
                    );
                    return None;
                }
                Err(e) => {
                    p.add(k("tls_client_cert_file"), format!("{cert}: {e}"));
                    return None;
                }
            };
            let key_der = match PrivateKeyDer::from_pem_file(&key) {
                Ok(k) => k,
                Err(e) => {
                    p.add(k("tls_client_key_file"), format!("{key}: {e}"));
                    return None;
                }
            };
            match builder.with_client_auth_cert(certs, key_der) {
                Ok(c) => c,
                Err(e) => {
                    p.add(
                        k("tls_client_key_file"),
                        format!("does not go with tls_client_cert_file: {e}"),
                    );
                    return None;
                }
            }
        }
        (Some(_), None) => {
            p.add(
                k("tls_client_key_file"),
                "is missing: tls_client_cert_file needs it",
            );
            return None;
        }
        (None, Some(_)) => {
            p.add(
                k("tls_client_cert_file"),
                "is missing: tls_client_key_file needs it",
            );
            return None;
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Some(UpstreamTls {
        config: Arc::new(config),
        custom_ca,
        client_cert,
        server_name,
    })
}
