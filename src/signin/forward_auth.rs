//! `GET /.portcullis/auth`, the forward-auth endpoint for another proxy in
//! front of the app: the session cookie decides, and the answer is 200 with
//! the identity headers or 401. Self-contained: it shares nothing with the
//! rest of the flow but the request context.

use http::header::HeaderValue;
use http::{Request, Response, StatusCode};

use crate::body::{self, Body, RequestBody};
use crate::error::Error;
use crate::state::Ctx;

/// For nginx `auth_request`, Traefik `forwardAuth`, Caddy `forward_auth`:
/// 200 with the identity headers, or 401.
pub(super) async fn forward_auth(
    cx: &Ctx<'_>,
    req: &Request<RequestBody>,
) -> Result<Response<Body>, Error> {
    let identity = cx.current_identity(req.headers()).await?;
    let Some(identity) = identity.filter(|i| cx.live.config.login.allow.allows(&i.email)) else {
        return Ok(body::plain(StatusCode::UNAUTHORIZED, "not signed in"));
    };
    let mut resp = body::plain(StatusCode::OK, "ok");
    if let Ok(v) = HeaderValue::from_str(&identity.email) {
        let h = resp.headers_mut();
        for name in [
            "x-forwarded-email",
            "x-forwarded-user",
            "x-auth-request-email",
            "x-auth-request-user",
        ] {
            h.insert(name, v.clone());
        }
    }
    Ok(resp)
}
