//! The TLS listener's configuration: a PEM certificate chain and private
//! key loaded into a rustls `ServerConfig` (ring provider) that offers
//! HTTP/2 and HTTP/1.1 through ALPN.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the TLS files cannot be used; [`TlsError::key`] is the key to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("server.tls_cert: cannot read certificates from {path}: {reason}")]
    Cert { path: String, reason: String },
    #[error("server.tls_key: cannot read a private key from {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("server.tls_cert/tls_key: {0}")]
    Mismatch(String),
}

impl TlsError {
    /// The configuration key the problem is about.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Cert { .. } => "server.tls_cert",
            TlsError::Key { .. } => "server.tls_key",
            TlsError::Mismatch(_) => "server.tls_cert/tls_key",
        }
    }

    /// The problem without the key (for a [`crate::config::ConfigError`]).
    pub fn detail(&self) -> String {
        match self {
            TlsError::Cert { path, reason } => {
                format!("cannot read certificates from {path}: {reason}")
            }
            TlsError::Key { path, reason } => {
                format!("cannot read a private key from {path}: {reason}")
            }
            TlsError::Mismatch(m) => m.clone(),
        }
    }
}

pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: cert.display().to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Cert {
            path: cert.display().to_string(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        reason: e.to_string(),
    })?;
    from_der(certs, key_der)
}

pub fn from_der(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Mismatch(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Mismatch(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
