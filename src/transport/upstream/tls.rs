//! TLS to an `https://` upstream: the handshake on a fresh TCP connection,
//! with the route's rustls client configuration (built once when the
//! configuration is read: the system roots or `tls_ca_file`, a client
//! certificate for mTLS, HTTP/1.1 by ALPN) and the name the certificate
//! must carry (`tls_server_name`, else the upstream's host; sent as SNI
//! when it is a DNS name). Verification is always on: there is no switch.
//!
//! Such connections go through hyper's client and its pool list, keyed by
//! the address and the client configuration ([`super::pool`]); the raw
//! client speaks plain HTTP only.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// TLS for one upstream address.
#[derive(Clone, Copy)]
pub struct TlsTo<'a> {
    pub config: &'a Arc<rustls::ClientConfig>,
    pub name: &'a ServerName<'static>,
}

/// The client side of a TLS handshake on `stream`; the error says why the
/// upstream was not trusted (for the log line naming the route).
pub async fn connect(stream: TcpStream, to: TlsTo<'_>) -> std::io::Result<TlsStream<TcpStream>> {
    TlsConnector::from(Arc::clone(to.config))
        .connect(to.name.clone(), stream)
        .await
}
