//! Typing the code (`POST /.portcullis/code`) in the browser that asked:
//! the attempt is found by that browser's verifier, never by anything the
//! form says. A right code takes the attempt and starts the session; each
//! wrong one counts against the client and the attempt, which ends after
//! `login.code_attempts` wrong codes. Deriving and normalising codes is
//! [`crate::code`]'s.

use http::{Request, Response, StatusCode};

use super::browser::cookie_value;
use super::csrf;
use super::form::read_form;
use super::limits::{failed_check, failure_key, refuse_if_failing};
use super::session_start::start_session;
use super::shared_pages::{check_email_page, invalid_link};
use crate::audit::{Event, Outcome};
use crate::body::{self, Body, RequestBody};
use crate::cookies::Kind;
use crate::crypto;
use crate::error::Error;
use crate::metrics::SigninMethod;
use crate::state::Ctx;
use crate::{address, code};

/// `POST /.portcullis/code`.
pub(super) async fn code_submit(
    cx: &Ctx<'_>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, Error> {
    let (headers, form) = read_form(cx, req).await?;
    csrf::check(cx, &headers, &form)?;
    refuse_if_failing(cx).await?;
    let store = &cx.app.store;
    let key = &cx.app.key;
    let Some(browser) =
        cookie_value(cx, &headers, Kind::Verifier).map(|v| key.hash_hex("verifier", v.as_bytes()))
    else {
        return failed_check(cx, SigninMethod::Code).await;
    };
    let Some((token_hash, attempt)) = store.attempt_for_browser(&browser).await? else {
        return failed_check(cx, SigninMethod::Code).await;
    };
    let typed = form.one("code")?.and_then(code::normalize);
    let matches = typed.is_some_and(|c| {
        crypto::ct_eq(
            key.hash_hex("code", c.as_bytes()).as_bytes(),
            attempt.code_hash.as_bytes(),
        )
    });
    if matches {
        return match store.take_attempt(&token_hash).await? {
            Some(a) if !a.email.is_empty() => {
                start_session(cx, &headers, a, SigninMethod::Code).await
            }
            _ => {
                cx.app.metrics.signin(SigninMethod::Code, false);
                Ok(invalid_link(cx))
            }
        };
    }
    let max = cx.live.config.login.code_attempts;
    store
        .hit(&failure_key(cx), cx.live.config.login.ip_rate.window)
        .await?;
    let failures = store.fail_attempt(&token_hash, max).await?;
    cx.app.metrics.signin(SigninMethod::Code, false);
    super::audit(
        cx,
        Event::SigninFailed,
        Outcome::Failure,
        &attempt.email,
        None,
        if failures >= max {
            "wrong code, attempt ended"
        } else {
            "wrong code"
        },
    );
    if failures >= max {
        tracing::info!(to = %address::mask(&attempt.email), "sign-in attempt ended after wrong codes");
        return Ok(body::html(
            StatusCode::TOO_MANY_REQUESTS,
            cx.live.pages.code_locked(),
            cx.https,
        ));
    }
    let left = max - failures;
    let message = if left == 1 {
        "That code is not right. 1 try left.".to_string()
    } else {
        format!("That code is not right. {left} tries left.")
    };
    Ok(check_email_page(
        cx,
        &headers,
        None,
        Some(&message),
        StatusCode::BAD_REQUEST,
    ))
}
