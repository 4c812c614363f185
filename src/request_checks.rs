//! The first phase of every request: checks on the request as it came,
//! before anything else looks at it. Header and URI limits (414/431), the
//! `Transfer-Encoding` allowed (400), and the one host of the request
//! (400). Leaf functions: each returns a value or an [`Error`].

use http::header;
use http::{Request, Version};

use crate::body::RequestBody;
use crate::config::Limits;
use crate::error::Error;

pub fn check_limits(req: &Request<RequestBody>, limits: &Limits) -> Result<(), Error> {
    let uri_len = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().len())
        .unwrap_or(0);
    if uri_len > limits.max_uri_bytes {
        return Err(Error::UriTooLong);
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > limits.max_header_bytes {
        return Err(Error::HeadersTooLarge);
    }
    Ok(())
}

/// A `Transfer-Encoding` other than exactly `chunked` (one token, once)
/// is refused: `gzip, chunked`, `,chunked` and repeated headers are the
/// stuff of request smuggling. (hyper drops a `Content-Length` next to it
/// before we see the request; [`crate::framing`] catches that case.)
pub fn check_framing(req: &Request<RequestBody>) -> Result<(), Error> {
    let mut values = req.headers().get_all(header::TRANSFER_ENCODING).iter();
    let Some(first) = values.next() else {
        return Ok(());
    };
    let exactly_chunked = first
        .to_str()
        .is_ok_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
    if !exactly_chunked || values.next().is_some() || req.version() != Version::HTTP_11 {
        return Err(Error::BadRequest(
            "The request's Transfer-Encoding is not allowed.",
        ));
    }
    Ok(())
}

/// The one host of the request: the Host header (exactly one) or the
/// request target's authority (absolute form, HTTP/2); both present must
/// agree, and it must be a [`crate::routes::valid_host`].
pub fn host(req: &Request<RequestBody>) -> Result<String, Error> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let header_host = hosts.next();
    if hosts.next().is_some() {
        return Err(Error::BadHost);
    }
    let header_host = match header_host {
        Some(v) => Some(v.to_str().map_err(|_| Error::BadHost)?),
        None => None,
    };
    let authority = req.uri().authority().map(|a| a.as_str());
    let host = match (header_host, authority) {
        (Some(h), Some(a)) if !h.eq_ignore_ascii_case(a) => return Err(Error::BadHost),
        (Some(h), _) => h,
        (None, Some(a)) => a,
        (None, None) if req.version() == Version::HTTP_10 => "",
        (None, None) => return Err(Error::BadHost),
    };
    // One reading only: a valid name or address, and a port of 1 to
    // 65535 when there is a `:` (`app.test:` would match no host route).
    if !crate::routes::valid_host(host) {
        return Err(Error::BadHost);
    }
    Ok(host.to_string())
}
