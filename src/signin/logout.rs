//! Signing out (`/.portcullis/logout`): a GET shows a confirm page (or,
//! with `done`, the signed-out page) and never changes anything; the POST
//! (CSRF-checked) ends the session in the cache and the store, expires the
//! cookie, sends `Clear-Site-Data`, and redirects to a checked `rd`.

use http::header::HeaderValue;
use http::{Request, Response, StatusCode};

use super::browser::cookie_value;
use super::csrf;
use super::form::{query_param, read_form};
use crate::body::{self, Body, RequestBody};
use crate::cookies::{self, Kind};
use crate::error::Error;
use crate::state::Ctx;
use crate::{address, crypto, redirect, session};

/// `GET /.portcullis/logout`.
pub(super) async fn logout_page(
    cx: &Ctx<'_>,
    req: &Request<RequestBody>,
) -> Result<Response<Body>, Error> {
    if query_param(req, "done").is_some() {
        return Ok(body::html(
            StatusCode::OK,
            cx.live.pages.signed_out(),
            cx.https,
        ));
    }
    let rd = query_param(req, "rd").unwrap_or_default();
    let identity = cx.current_identity(req.headers()).await.ok().flatten();
    let (csrf, set) = csrf::token(&cx.app.key, req.headers(), cx.https);
    let page = cx
        .live
        .pages
        .logout_confirm(&csrf, &rd, identity.as_ref().map(|i| &*i.email));
    let mut resp = body::html(StatusCode::OK, page, cx.https);
    cookies::append(resp.headers_mut(), set);
    Ok(resp)
}

/// `POST /.portcullis/logout`.
pub(super) async fn logout_submit(
    cx: &Ctx<'_>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, Error> {
    let (headers, form) = read_form(cx, req).await?;
    csrf::check(cx, &headers, &form)?;
    if let Some(tag) = cookie_value(cx, &headers, Kind::Session)
        .and_then(|v| session::verify_cookie(&cx.app.key, v))
    {
        let email = cx
            .app
            .sessions
            .check(&cx.app.store, tag, cx.live.config.session.idle_timeout)
            .await?
            .map(|i| i.email);
        cx.app.sessions.forget(&tag);
        let email_hash = email
            .as_deref()
            .map(|e| cx.app.key.hash_hex("email", e.as_bytes()))
            .unwrap_or_default();
        cx.app
            .store
            .delete_session(&crypto::hex(&tag), &email_hash)
            .await?;
        if let Some(e) = email {
            cx.app.metrics.sessions_revoked(1);
            tracing::info!(to = %address::mask(&e), "signed out");
            super::audit(
                cx,
                crate::audit::Event::Signout,
                crate::audit::Outcome::Success,
                &e,
                Some(&crypto::hex(&tag)),
                "",
            );
        }
    }
    let target = form
        .one("rd")?
        .filter(|rd| !rd.is_empty())
        .and_then(|rd| redirect::check(rd, &cx.origin, &cx.live.redirect))
        .unwrap_or_else(|| "/.portcullis/logout?done=1".into());
    let mut resp = body::see_other(&target, cx.https);
    let domain = cx.live.config.session.cookie_domain.as_deref();
    cookies::append(
        resp.headers_mut(),
        cookies::set(Kind::Session, "", cx.https, domain, None),
    );
    resp.headers_mut()
        .insert("clear-site-data", HeaderValue::from_static("\"cookies\""));
    Ok(resp)
}
