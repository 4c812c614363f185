//! Active health checks (`health_path`): every `health_interval`, a `GET`
//! of the path to each address of the route, on a connection of its own
//! (TLS as the route's), answered within `health_timeout`. A 2xx or 3xx is
//! a pass. `unhealthy_threshold` failures in a row take an address out of
//! rotation, `healthy_threshold` passes in a row bring it back (also after
//! a refused or reset connection took it out: [`super::balance`]).
//!
//! The checks of a configuration end with it: each task holds its route's
//! [`Backends`] weakly and stops when a reload has dropped them.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};

use http::{Request, StatusCode};
use http_body_util::Empty;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::config::route_options::Backends;
use crate::config::{RouteConfig, Upstream};

use super::tls::{self, TlsTo};

/// Starts the checks of every route that has them (on the calling
/// runtime; without one, none start).
pub fn start(routes: &[RouteConfig]) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    for r in routes {
        if let Upstream::Balanced(set) = &r.upstream {
            if set.health.is_some() {
                let weak = Arc::downgrade(set);
                let name = r.name.clone();
                runtime.spawn(run(weak, name));
            }
        }
    }
}

async fn run(set: Weak<Backends>, route: String) {
    loop {
        let Some(interval) = set
            .upgrade()
            .and_then(|s| s.health.as_ref().map(|h| h.interval))
        else {
            return;
        };
        let Some(s) = set.upgrade() else {
            return;
        };
        for i in 0..s.targets.len() {
            let ok = check(&s, i).await;
            record(&s, i, ok, &route);
        }
        drop(s);
        tokio::time::sleep(interval).await;
    }
}

/// One check's outcome on address `i`.
fn record(set: &Backends, i: usize, ok: bool, route: &str) {
    let Some(h) = &set.health else {
        return;
    };
    let t = &set.targets[i];
    let out = t.check_failed.load(Relaxed);
    if ok != out {
        // As things are: the streak towards a change starts again.
        t.streak.store(0, Relaxed);
        return;
    }
    let streak = t.streak.fetch_add(1, Relaxed) + 1;
    let threshold = if out {
        h.healthy_threshold
    } else {
        h.unhealthy_threshold
    };
    if streak >= threshold {
        t.streak.store(0, Relaxed);
        t.check_failed.store(!out, Relaxed);
        if out {
            t.down_until.store(0, Relaxed);
            tracing::info!(route, upstream = %t.authority, "upstream passes its health check again: back in rotation");
        } else {
            tracing::warn!(route, upstream = %t.authority, "upstream fails its health check: out of rotation");
        }
    }
}

/// Whether address `i` answers its health check with 2xx or 3xx in time.
async fn check(set: &Backends, i: usize) -> bool {
    let Some(h) = &set.health else {
        return true;
    };
    tokio::time::timeout(h.timeout, probe(set, i, &h.path))
        .await
        .unwrap_or(false)
}

async fn probe(set: &Backends, i: usize, path: &str) -> bool {
    let t = &set.targets[i];
    let port = t.authority.port_u16().unwrap_or(80);
    let host = t.authority.host();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let Ok(stream) = TcpStream::connect((host, port)).await else {
        return false;
    };
    let req = match Request::get(path)
        .header(http::header::HOST, t.authority.as_str())
        .header(http::header::USER_AGENT, "portcullis-health")
        .body(Empty::<bytes::Bytes>::new())
    {
        Ok(r) => r,
        Err(_) => return false,
    };
    let status = match (&set.tls, &t.server_name) {
        (Some(tls), Some(name)) => {
            let to = TlsTo {
                config: &tls.config,
                name,
            };
            match tls::connect(stream, to).await {
                Ok(s) => get(s, req).await,
                Err(_) => None,
            }
        }
        _ => get(stream, req).await,
    };
    status.is_some_and(|s| s.is_success() || s.is_redirection())
}

async fn get<T>(io: T, req: Request<Empty<bytes::Bytes>>) -> Option<StatusCode>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = http1::handshake(TokioIo::new(io)).await.ok()?;
    let driver = tokio::spawn(conn);
    let status = sender.send_request(req).await.ok().map(|r| r.status());
    driver.abort();
    status
}
