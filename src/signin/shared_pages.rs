//! The pages more than one step answers with (check your email, the link
//! is not valid) and the stylesheet every gateway page links to. The page
//! text and templates are [`crate::pages`]'; this only fills them in and
//! sets the CSRF cookie a page's form needs.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

use super::csrf;
use crate::body::{self, Body};
use crate::cookies;
use crate::pages::CheckEmail;
use crate::state::Ctx;

/// "Check your email", with the code form: after a request (with the
/// address asked for, the same words for every address), and again after
/// a wrong code (without it: a decoy attempt holds none).
pub(super) fn check_email_page(
    cx: &Ctx<'_>,
    headers: &HeaderMap,
    address: Option<&str>,
    message: Option<&str>,
    status: StatusCode,
) -> Response<Body> {
    let (csrf, set) = csrf::token(&cx.app.key, headers, cx.https);
    let login = &cx.live.config.login;
    let page = cx.live.pages.check_email(&CheckEmail {
        csrf: &csrf,
        address,
        link_ttl: login.link_ttl,
        resend_delay: login.resend_delay,
        notice: message,
    });
    let mut resp = body::html(status, page, cx.https);
    cookies::append(resp.headers_mut(), set);
    resp
}

/// 410: the link (or the attempt behind a code) is not, or no longer, valid.
pub(super) fn invalid_link(cx: &Ctx<'_>) -> Response<Body> {
    body::html(StatusCode::GONE, cx.live.pages.link_invalid(), cx.https)
}

pub(super) fn stylesheet(cx: &Ctx<'_>) -> Response<Body> {
    let mut resp = Response::new(body::full(cx.live.stylesheet.clone()));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}
