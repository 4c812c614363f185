//! The request error type and its one mapping to an HTTP status.
//!
//! Errors are grouped by who is at fault (as pingora's `ErrorSource`):
//! the client (4xx), the upstream (502/504), or our own dependencies (503).
//! The page a client sees never carries the error's text; the log line does.

use http::StatusCode;

use crate::path::PathError;
use crate::store::StoreError;
use crate::transport::{Fault, UpstreamError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("bad path: {0:?}")]
    BadPath(PathError),
    #[error("missing, repeated or invalid Host")]
    BadHost,
    #[error("URI too long")]
    UriTooLong,
    #[error("request headers too large")]
    HeadersTooLarge,
    #[error("request body too large")]
    BodyTooLarge,
    #[error("request body not received in time")]
    RequestTimeout,
    #[error("too many failed sign-in checks from this client")]
    TooManyRequests,
    #[error("no route")]
    NoRoute,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("route closed (deny)")]
    Denied,
    #[error("cross-site or tokenless form post: {0}")]
    Csrf(&'static str),
    #[error("not signed in")]
    Unauthenticated,
    #[error("machine token unknown or expired")]
    BadToken,
    #[error("machine token on a sign-in endpoint")]
    TokenNotHere,
    #[error("machine token not allowed on this route")]
    TokenForbidden,
    #[error("WebSocket handshake from another origin")]
    CrossOriginWebSocket,
    #[error("upstream refused or reset: {0}")]
    UpstreamFailed(String),
    #[error("upstream timed out")]
    UpstreamTimeout,
    #[error("store unavailable: {0}")]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The one reading of an upstream fault as a request error (and so as a
/// status): 504 when time ran out, 502 otherwise; the client's own body
/// trouble met on the way is 408 or 400.
impl From<UpstreamError> for Error {
    fn from(e: UpstreamError) -> Error {
        match e.fault {
            Fault::Timeout => Error::UpstreamTimeout,
            Fault::Failed => Error::UpstreamFailed(e.detail),
            Fault::ClientBodyStalled => Error::RequestTimeout,
            Fault::ClientBodyBroken => {
                Error::BadRequest("The request body is malformed or was cut off.")
            }
        }
    }
}

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) | Error::BadPath(_) | Error::BadHost => StatusCode::BAD_REQUEST,
            Error::UriTooLong => StatusCode::URI_TOO_LONG,
            Error::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Error::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Error::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Error::NoRoute => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::Denied => StatusCode::FORBIDDEN,
            Error::Csrf(_) => StatusCode::FORBIDDEN,
            Error::Unauthenticated | Error::BadToken | Error::TokenNotHere => {
                StatusCode::UNAUTHORIZED
            }
            Error::TokenForbidden => StatusCode::FORBIDDEN,
            Error::CrossOriginWebSocket => StatusCode::FORBIDDEN,
            Error::UpstreamFailed(_) => StatusCode::BAD_GATEWAY,
            Error::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Error::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The short sentence shown to the client (never the error's details).
    pub fn public_message(&self) -> &'static str {
        match self {
            Error::BadRequest(m) => m,
            Error::BadPath(_) => "The request path is not allowed.",
            Error::BadHost => "The Host header is missing, repeated or invalid.",
            Error::UriTooLong => "The request URI is too long.",
            Error::HeadersTooLarge => "The request headers are too large.",
            Error::BodyTooLarge => "The request body is too large.",
            Error::RequestTimeout => "The request body did not arrive in time.",
            Error::TooManyRequests => {
                "Too many sign-in links or codes were tried from your network. Wait a few minutes and try again."
            }
            Error::NoRoute => "There is nothing here.",
            Error::MethodNotAllowed => "That method is not allowed here.",
            Error::Denied => "This page is closed.",
            Error::Csrf(_) => {
                "This form was sent from another site or has expired. Go back, reload the page and try again."
            }
            Error::Unauthenticated => "Sign in first.",
            Error::BadToken => "This token is not valid.",
            Error::TokenNotHere => "Machine tokens do not work on the sign-in pages.",
            Error::TokenForbidden => "This token may not open this page.",
            Error::CrossOriginWebSocket => {
                "Another site may not open a connection to this application in your name."
            }
            Error::UpstreamFailed(_) => "The application behind this gateway is not answering.",
            Error::UpstreamTimeout => "The application behind this gateway took too long to answer.",
            Error::Store(_) => "Sign-in is unavailable for a moment. Try again shortly.",
            Error::Internal(_) => "Something went wrong on our side.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_status() {
        let cases: Vec<(Error, u16)> = vec![
            (Error::BadRequest("x"), 400),
            (Error::BadPath(PathError::EncodedSlash), 400),
            (Error::BadHost, 400),
            (Error::UriTooLong, 414),
            (Error::HeadersTooLarge, 431),
            (Error::BodyTooLarge, 413),
            (Error::RequestTimeout, 408),
            (Error::TooManyRequests, 429),
            (Error::NoRoute, 404),
            (Error::MethodNotAllowed, 405),
            (Error::Denied, 403),
            (Error::Csrf("origin"), 403),
            (Error::Unauthenticated, 401),
            (Error::BadToken, 401),
            (Error::TokenNotHere, 401),
            (Error::TokenForbidden, 403),
            (Error::CrossOriginWebSocket, 403),
            (Error::UpstreamFailed("refused".into()), 502),
            (Error::UpstreamTimeout, 504),
            (Error::Store(StoreError::Unavailable("down".into())), 503),
            (Error::Internal("x".into()), 500),
        ];
        for (e, code) in cases {
            assert_eq!(e.status().as_u16(), code, "{e}");
        }
    }
}
