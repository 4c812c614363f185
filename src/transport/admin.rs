//! The admin listener (`[admin] listen`, off when absent): a plain HTTP/1.1
//! server of its own for probes, so that a load balancer or Kubernetes can
//! reach them without going through the gateway's routes. What it answers
//! is the caller's ([`crate::app`]); this module only serves it. No
//! keep-alive limits beyond hyper's defaults: it is meant for a private
//! address.

use std::future::Future;

use http::{Method, Response};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::body::Body;

/// Serves `answer(method, path)` on `listener` until the process ends.
pub async fn serve<F, Fut>(listener: TcpListener, answer: F)
where
    F: Fn(Method, String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "admin accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let answer = answer.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let answer = answer.clone();
                async move {
                    let (method, path) = (req.method().clone(), req.uri().path().to_string());
                    Ok::<_, std::convert::Infallible>(answer(method, path).await)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            let _ = conn.await;
        });
    }
}
