//! The link from the mail (`/.portcullis/verify`). A GET never changes
//! anything: the browser that asked (its verifier matches) gets a sign-in
//! button, anything else a button that reveals the code. The POST either
//! shows the code with where the sign-in was asked from (`show-code`, or
//! another browser) or, from the browser that asked, takes the attempt
//! atomically and starts the session. Every failed link check is counted
//! ([`super::limits`]). A link made by `portcullis link` has no asking
//! browser: any browser that opens it gets the sign-in button, and the
//! first to press it is signed in (a GET still changes nothing, so a mail
//! or chat scanner cannot use it up).

use http::{Request, Response, StatusCode};

use super::browser::{any_browser, plausible_token, same_browser};
use super::csrf;
use super::form::{query_param, read_form};
use super::limits::{failed_check, refuse_if_failing};
use super::session_start::start_session;
use super::shared_pages::invalid_link;
use crate::body::{self, Body, RequestBody};
use crate::cookies;
use crate::error::Error;
use crate::metrics::SigninMethod;
use crate::session::now_unix;
use crate::state::Ctx;
use crate::store::Attempt;
use crate::{address, code, pages};

/// `GET /.portcullis/verify?token=…`.
pub(super) async fn verify_page(
    cx: &Ctx<'_>,
    req: &Request<RequestBody>,
) -> Result<Response<Body>, Error> {
    refuse_if_failing(cx).await?;
    let Some(token) = query_param(req, "token").filter(|t| plausible_token(t)) else {
        return failed_check(cx, SigninMethod::Link).await;
    };
    let token_hash = cx.app.key.hash_hex("token", token.as_bytes());
    let Some(attempt) = cx.app.store.peek_attempt(&token_hash).await? else {
        return failed_check(cx, SigninMethod::Link).await;
    };
    let (csrf, set) = csrf::token(&cx.app.key, req.headers(), cx.https);
    let page = if same_browser(cx, req.headers(), &attempt) || any_browser(&attempt) {
        cx.live
            .pages
            .verify_confirm(&token, &csrf, &address::mask(&attempt.email))
    } else {
        cx.live.pages.verify_reveal(&token, &csrf)
    };
    let mut resp = body::html(StatusCode::OK, page, cx.https);
    cookies::append(resp.headers_mut(), set);
    Ok(resp)
}

/// The answer to the reveal button (a POST, CSRF-checked, counted like
/// every check): the code to type in the browser that asked, and where
/// that sign-in was asked from. Nothing is consumed.
fn elsewhere_page(cx: &Ctx<'_>, token: &str, attempt: &Attempt) -> Response<Body> {
    let the_code = code::display(&code::derive(&cx.app.key, token));
    let asked = pages::Asked {
        browser: &attempt.asked_agent,
        ip: &attempt.asked_ip,
        at: attempt.created_at,
        now: now_unix(),
    };
    body::html(
        StatusCode::OK,
        cx.live.pages.verify_elsewhere(&the_code, &asked),
        cx.https,
    )
}

/// `POST /.portcullis/verify`: the sign-in button, or `action=show-code`.
pub(super) async fn verify_submit(
    cx: &Ctx<'_>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, Error> {
    let (headers, form) = read_form(cx, req).await?;
    csrf::check(cx, &headers, &form)?;
    refuse_if_failing(cx).await?;
    let show_code = match form.one("action")? {
        None | Some("") => false,
        Some("show-code") => true,
        Some(_) => return Err(Error::BadRequest("The form's action is not known.")),
    };
    let Some(token) = form
        .one("token")?
        .filter(|t| plausible_token(t))
        .map(String::from)
    else {
        return failed_check(cx, SigninMethod::Link).await;
    };
    let token_hash = cx.app.key.hash_hex("token", token.as_bytes());
    let Some(attempt) = cx.app.store.peek_attempt(&token_hash).await? else {
        return failed_check(cx, SigninMethod::Link).await;
    };
    if show_code || !(same_browser(cx, &headers, &attempt) || any_browser(&attempt)) {
        return Ok(elsewhere_page(cx, &token, &attempt));
    }
    match cx.app.store.take_attempt(&token_hash).await? {
        Some(attempt) if !attempt.email.is_empty() => {
            start_session(cx, &headers, attempt, SigninMethod::Link).await
        }
        _ => {
            // A decoy, or taken by a concurrent request a moment ago.
            cx.app.metrics.signin(SigninMethod::Link, false);
            Ok(invalid_link(cx))
        }
    }
}
