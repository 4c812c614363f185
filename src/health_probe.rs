//! `portcullis health`: a probe of a running gateway for places with no
//! shell and no curl, such as the container image's `HEALTHCHECK`. One
//! `GET` over plain HTTP/1.1 to a loopback or private address (the admin
//! listener's `/ping` by default); healthy means status 200. Blocking std
//! sockets with one deadline: no runtime is started for it.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::time::{Duration, Instant};

/// The default probe: the admin listener of the container image's
/// configuration (`[admin] listen = "0.0.0.0:9180"`).
pub const DEFAULT_URL: &str = "http://127.0.0.1:9180/ping";

/// The most of the answer that is read (the status line is all that counts).
const MAX_HEAD: usize = 8 * 1024;

/// Why a probe failed, as one line for the terminal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("{0}: not an http://host:port/path URL")]
    Url(String),
    #[error("{url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("{url}: answered {status}, not 200")]
    Status { url: String, status: u16 },
    #[error("{url}: no HTTP status line in the answer")]
    NoStatus { url: String },
}

/// `GET url`; `Ok(())` when the answer's status is 200 within `timeout`.
pub fn probe(url: &str, timeout: Duration) -> Result<(), ProbeError> {
    let parsed = url::Url::parse(url).map_err(|_| ProbeError::Url(url.to_string()))?;
    if parsed.scheme() != "http" || parsed.cannot_be_a_base() {
        return Err(ProbeError::Url(url.to_string()));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| ProbeError::Url(url.to_string()))?;
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| ProbeError::Url(url.to_string()))?;
    let unreachable = |detail: String| ProbeError::Unreachable {
        url: url.to_string(),
        detail,
    };
    let deadline = Instant::now() + timeout;
    // `[::1]` keeps its brackets in host_str; the resolver wants them off.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = (bare, port)
        .to_socket_addrs()
        .map_err(|e| unreachable(format!("cannot resolve {bare}: {e}")))?
        .collect();
    let mut last = format!("{bare} resolves to no address");
    let mut stream = None;
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            last = "timed out".into();
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    let mut stream = stream.ok_or_else(|| unreachable(last))?;
    let mut target = parsed.path().to_string();
    if let Some(q) = parsed.query() {
        target.push('?');
        target.push_str(q);
    }
    let authority = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: portcullis-health\r\nConnection: close\r\n\r\n"
    );
    let left = |what: &str| {
        let d = deadline.saturating_duration_since(Instant::now());
        if d.is_zero() {
            Err(unreachable(format!("timed out {what}")))
        } else {
            Ok(d)
        }
    };
    stream
        .set_write_timeout(Some(left("before sending")?))
        .map_err(|e| unreachable(e.to_string()))?;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| unreachable(format!("cannot send the request: {e}")))?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < MAX_HEAD {
        stream
            .set_read_timeout(Some(left("waiting for the answer")?))
            .map_err(|e| unreachable(e.to_string()))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return Err(unreachable(format!("cannot read the answer: {e}"))),
        }
    }
    match status_of(&head) {
        Some(200) => Ok(()),
        Some(status) => Err(ProbeError::Status {
            url: url.to_string(),
            status,
        }),
        None => Err(ProbeError::NoStatus {
            url: url.to_string(),
        }),
    }
}

/// The status code of an `HTTP/1.x NNN ...` status line.
fn status_of(head: &[u8]) -> Option<u16> {
    let end = head.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&head[..end]).ok()?;
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    if !(version == "HTTP/1.1" || version == "HTTP/1.0") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot server on a port from the OS that answers `answer` (or
    /// nothing, when `None`, holding the connection open); returns the
    /// probe URL and the request it received.
    fn server(
        answer: Option<&'static str>,
        path: &str,
    ) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}{path}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 512];
            while !req.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
            }
            match answer {
                Some(a) => s.write_all(a.as_bytes()).unwrap(),
                None => std::thread::sleep(Duration::from_millis(600)),
            }
            String::from_utf8(req).unwrap()
        });
        (url, handle)
    }

    #[test]
    fn a_200_is_healthy_and_the_request_is_a_plain_get() {
        let (url, handle) = server(
            Some("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK"),
            "/ping",
        );
        assert_eq!(probe(&url, Duration::from_secs(5)), Ok(()));
        let authority = url.trim_start_matches("http://").trim_end_matches("/ping");
        assert_eq!(
            handle.join().unwrap(),
            format!(
                "GET /ping HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: portcullis-health\r\nConnection: close\r\n\r\n"
            )
        );
    }

    #[test]
    fn any_other_status_is_unhealthy() {
        let (url, handle) = server(Some("HTTP/1.1 503 Service Unavailable\r\n\r\n"), "/ready");
        assert_eq!(
            probe(&url, Duration::from_secs(5)),
            Err(ProbeError::Status {
                url: url.clone(),
                status: 503
            })
        );
        handle.join().unwrap();
    }

    #[test]
    fn an_answer_that_is_not_http_is_unhealthy() {
        let (url, handle) = server(Some("SSH-2.0-OpenSSH\r\n"), "/ping");
        assert_eq!(
            probe(&url, Duration::from_secs(5)),
            Err(ProbeError::NoStatus { url: url.clone() })
        );
        handle.join().unwrap();
    }

    #[test]
    fn silence_times_out() {
        let (url, handle) = server(None, "/ping");
        let started = Instant::now();
        let err = probe(&url, Duration::from_millis(200)).unwrap_err();
        assert!(
            matches!(&err, ProbeError::Unreachable { detail, .. } if detail.contains("cannot read the answer") || detail.contains("timed out")),
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(550),
            "{:?}",
            started.elapsed()
        );
        handle.join().unwrap();
    }

    #[test]
    fn a_closed_port_is_unreachable() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/ping", listener.local_addr().unwrap());
        drop(listener);
        let err = probe(&url, Duration::from_secs(2)).unwrap_err();
        assert!(
            matches!(&err, ProbeError::Unreachable { detail, .. } if detail.starts_with("cannot connect to 127.0.0.1:")),
            "{err}"
        );
    }

    #[test]
    fn only_http_urls_are_probed() {
        for bad in [
            "https://127.0.0.1:9180/ping",
            "127.0.0.1:9180",
            "mailto:a@b.c",
        ] {
            assert_eq!(
                probe(bad, Duration::from_secs(1)),
                Err(ProbeError::Url(bad.to_string())),
                "{bad}"
            );
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_of(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_of(b"HTTP/1.0 204\r\n"), Some(204));
        assert_eq!(status_of(b"HTTP/1.1 200 OK"), None);
        assert_eq!(status_of(b"HTTP/2 200\r\n"), None);
        assert_eq!(status_of(b"HTTP/1.1 2000 OK\r\n"), None);
    }
}
