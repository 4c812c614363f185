//! Opening a share link: `GET /.portcullis/share/{token}` (404 unless
//! `[share] enabled`). Never consumes anything: a valid link for this
//! host sets the share cookie with `Path=` the shared path and answers
//! 303 to that path, so the token stays between the browser and the
//! gateway and never reaches the upstream. A forged link counts one
//! failure against the client ([`crate::failures`]); a forged, ended,
//! revoked or other host's link gets a page that says so. Audited as
//! `share.used`.

use http::{Request, Response, StatusCode};

use super::limits::refuse_if_failing;
use crate::body::{self, Body, RequestBody};
use crate::error::Error;
use crate::session::now_unix;
use crate::share::{self, Grant, Invalid};
use crate::state::Ctx;

/// A page about a link that does not open.
fn dead(cx: &Ctx<'_>, status: StatusCode, message: &str) -> Response<Body> {
    let reason = status.canonical_reason().unwrap_or("Error");
    body::html(
        status,
        cx.live.pages.error(status.as_u16(), reason, message),
        cx.https,
    )
}

const NOT_VALID: &str =
    "This share link is not valid here. Check that it was copied whole, or ask whoever sent it for a new one.";
const ENDED: &str =
    "This share link has ended or was withdrawn. Ask whoever sent it for a new one.";

pub(super) async fn open(
    cx: &Ctx<'_>,
    _req: &Request<RequestBody>,
    token: &str,
) -> Result<Response<Body>, Error> {
    if !cx.live.config.share.enabled {
        return Err(Error::NoRoute);
    }
    refuse_if_failing(cx).await?;
    let now = now_unix();
    let grant = match Grant::verify(&cx.app.key, token, now) {
        Ok(g) => g,
        Err(Invalid::Expired) => return Ok(dead(cx, StatusCode::GONE, ENDED)),
        Err(Invalid::Forged) => {
            let window = cx.live.config.login.ip_rate.window;
            cx.app
                .store
                .hit(&crate::failures::key(&cx.app.key, cx.client.ip), window)
                .await?;
            return Ok(dead(cx, StatusCode::NOT_FOUND, NOT_VALID));
        }
    };
    // The host the browser sees (a trusted proxy's X-Forwarded-Host).
    let visible = cx.origin.split_once("://").map_or("", |(_, h)| h);
    if !grant.takes_host(visible) {
        return Ok(dead(cx, StatusCode::NOT_FOUND, NOT_VALID));
    }
    if cx.app.store.count(&share::revoked_key(&grant.id)).await? > 0 {
        return Ok(dead(cx, StatusCode::GONE, ENDED));
    }
    let reason = format!("share {} {}", grant.id, grant.path);
    super::audit(
        cx,
        crate::audit::Event::ShareUsed,
        crate::audit::Outcome::Success,
        grant.email.as_deref().unwrap_or(""),
        None,
        &reason,
    );
    let mut resp = body::see_other(&grant.path, cx.https);
    crate::cookies::append(
        resp.headers_mut(),
        share::set_cookie(token, &grant, cx.https, now),
    );
    Ok(resp)
}
