//! HTTP to identity providers: one request per connection over hyper's
//! HTTP/1 client, `https` through rustls (ring) with the system's roots
//! (`rustls-native-certs`, read once at start: `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` are honoured),
//! plain `http` only to the loopback hosts the configuration allows. Every
//! call has one deadline for connect, TLS, request and body; answers are
//! read up to [`MAX_BODY`] bytes and must be JSON. Redirects are not
//! followed. Nothing here logs: callers decide what to say, and a secret
//! sent (client secret, code, access token) never appears in an error.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Largest answer read from a provider (discovery, JWKS, tokens, emails).
pub const MAX_BODY: usize = 1 << 20;
/// The deadline for one call, all included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call to a provider failed. Messages name the host, never a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("{0}: not a usable URL")]
    Url(String),
    #[error("{0}: no answer within {1:?}")]
    Timeout(String, Duration),
    #[error("{0}: cannot connect: {1}")]
    Connect(String, String),
    #[error("{0}: answered {1}{2}")]
    Status(String, u16, String),
    #[error("{0}: the answer is not JSON or too large")]
    Body(String),
}

/// A client for provider calls; cheap to clone.
#[derive(Clone)]
pub struct Client {
    tls: tokio_rustls::TlsConnector,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The request to make.
pub enum Call<'a> {
    Get {
        bearer: Option<&'a str>,
    },
    /// An `application/x-www-form-urlencoded` POST, with HTTP Basic client
    /// credentials when given (RFC 6749 §2.3.1: both parts form-encoded).
    PostForm {
        form: &'a [(&'a str, &'a str)],
        basic: Option<(&'a str, &'a [u8])>,
    },
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Client {
    /// A client trusting the system's roots; also says how many were found
    /// (none means every `https` provider fails: the caller warns).
    pub fn new(timeout: Duration) -> (Client, usize) {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            let _ = roots.add(cert);
        }
        let count = roots.len();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(roots).with_no_client_auth());
        let mut config = match config {
            Ok(c) => c,
            // The ring provider always supports the default versions.
            Err(_) => rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        (
            Client {
                tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
                timeout,
            },
            count,
        )
    }

    /// Makes `call` to `url` and returns the JSON answer of a 2xx.
    pub async fn json(&self, url: &str, call: Call<'_>) -> Result<serde_json::Value, FetchError> {
        let parsed = url::Url::parse(url).map_err(|_| FetchError::Url(url.to_string()))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| FetchError::Url(url.to_string()))?
            .to_string();
        match tokio::time::timeout(self.timeout, self.call(&parsed, &host, call)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(host, self.timeout)),
        }
    }

    async fn call(
        &self,
        url: &url::Url,
        host: &str,
        call: Call<'_>,
    ) -> Result<serde_json::Value, FetchError> {
        let https = match url.scheme() {
            "https" => true,
            "http" if crate::config::is_loopback_host(host) => false,
            _ => return Err(FetchError::Url(host.to_string())),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| FetchError::Url(host.to_string()))?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let tcp = TcpStream::connect((bare, port))
            .await
            .map_err(|e| FetchError::Connect(host.to_string(), e.kind().to_string()))?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Io> = if https {
            let name = rustls::pki_types::ServerName::try_from(bare.to_string())
                .map_err(|_| FetchError::Url(host.to_string()))?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| FetchError::Connect(host.to_string(), e.to_string()))?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| FetchError::Connect(host.to_string(), e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });

        let mut path = url.path().to_string();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let builder = Request::builder()
            .uri(path)
            .header(header::HOST, authority)
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, "portcullis");
        let req = match call {
            Call::Get { bearer } => {
                let mut b = builder.method(Method::GET);
                if let Some(t) = bearer {
                    let v = HeaderValue::from_str(&format!("Bearer {t}"))
                        .map_err(|_| FetchError::Url(host.to_string()))?;
                    b = b.header(header::AUTHORIZATION, v);
                }
                b.body(Full::new(Bytes::new()))
            }
            Call::PostForm { form, basic } => {
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form.iter())
                    .finish();
                let mut b = builder
                    .method(Method::POST)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                if let Some((id, secret)) = basic {
                    let enc =
                        |v: &[u8]| url::form_urlencoded::byte_serialize(v).collect::<String>();
                    let pair = format!("{}:{}", enc(id.as_bytes()), enc(secret));
                    use base64::Engine as _;
                    let value = format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(pair)
                    );
                    let v = HeaderValue::from_str(&value)
                        .map_err(|_| FetchError::Url(host.to_string()))?;
                    b = b.header(header::AUTHORIZATION, v);
                }
                b.body(Full::new(Bytes::from(body)))
            }
        }
        .map_err(|_| FetchError::Url(host.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| FetchError::Connect(host.to_string(), e.to_string()))?;
        let status = resp.status();
        let bytes = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|_| FetchError::Body(host.to_string()))?
            .to_bytes();
        if !status.is_success() {
            // OAuth errors name a code (`invalid_grant`); keep only that.
            let code = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
                .filter(|c| c.len() <= 64 && c.bytes().all(|b| b.is_ascii_graphic()))
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            return Err(FetchError::Status(host.to_string(), status.as_u16(), code));
        }
        serde_json::from_slice(&bytes).map_err(|_| FetchError::Body(host.to_string()))
    }
}
