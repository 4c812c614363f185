//! HTTP clients for tests: reqwest without redirects or cookie store (the
//! tests carry cookies by hand, like a browser would), and raw TCP for
//! requests no well-behaved client would send. Both follow the test mode
//! ([`super::mode`]): on the TLS listener they speak TLS (HTTP/1.1 only,
//! unless asked for h2) and trust only the test certificate.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

pub fn http() -> reqwest::Client {
    builder().build().unwrap()
}

/// What [`http`] is built from: no redirects, a 30 s timeout, and on the
/// TLS listener the test certificate as the only root and HTTP/1.1 (as
/// over plain TCP; tests that want HTTP/2 build their own client).
pub fn builder() -> reqwest::ClientBuilder {
    for_mode(
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30)),
    )
}

/// `b` as the mode needs it: unchanged over plain TCP; on the TLS listener
/// the test certificate as the only root, and HTTP/1.1 only.
pub fn for_mode(b: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    super::gateway::install_crypto();
    if !super::mode::tls() {
        return b;
    }
    let cert = reqwest::Certificate::from_der(&super::mode::cert().cert_der).unwrap();
    b.tls_certs_only([cert]).http1_only()
}

/// A connection to the gateway at `addr` as the mode says: plain TCP, or
/// TLS offering `http/1.1`.
pub async fn connect(addr: SocketAddr) -> Stream {
    connect_with(addr, b"http/1.1").await
}

/// Like [`connect`], offering `h2` on the TLS listener (HTTP/2 with prior
/// knowledge over plain TCP).
pub async fn connect_h2(addr: SocketAddr) -> Stream {
    connect_with(addr, b"h2").await
}

async fn connect_with(addr: SocketAddr, alpn: &[u8]) -> Stream {
    let tcp = TcpStream::connect(addr).await.unwrap();
    if !super::mode::tls() {
        return Stream::Plain(tcp);
    }
    super::gateway::install_crypto();
    let connector = tokio_rustls::TlsConnector::from(super::mode::client_tls(&[alpn]));
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let tls = connector.connect(name, tcp).await.unwrap();
    Stream::Tls(Box::new(tls))
}

/// A client connection to the gateway: plain TCP or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }

    /// Writes all of `bytes` to the socket now, without yielding to the
    /// runtime (`TcpStream::try_write`; on TLS the records are made here
    /// and written the same way). `WouldBlock` if the socket is full.
    pub fn try_write_now(&mut self, bytes: &[u8]) -> io::Result<usize> {
        use std::io::Write;
        match self {
            Stream::Plain(s) => s.try_write(bytes),
            Stream::Tls(s) => {
                let (tcp, conn) = s.get_mut();
                conn.writer().write_all(bytes)?;
                struct Now<'a>(&'a TcpStream);
                impl Write for Now<'_> {
                    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                        self.0.try_write(buf)
                    }
                    fn flush(&mut self) -> io::Result<()> {
                        Ok(())
                    }
                }
                while conn.wants_write() {
                    conn.write_tls(&mut Now(tcp))?;
                }
                Ok(bytes.len())
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One raw exchange: writes `request` and reads until the server closes
/// or `within` passes. Returns everything read.
pub async fn raw(addr: SocketAddr, request: &[u8], within: Duration) -> String {
    let mut s = connect(addr).await;
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(within, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of the first response in `text`.
pub fn status_of(text: &str) -> u16 {
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The body of the first response in `text` (after the blank line).
pub fn body_of(text: &str) -> &str {
    text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")
}

/// The `Content-Length` of a request or response head (0 without one), for
/// the small raw servers of the tests.
pub fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}
