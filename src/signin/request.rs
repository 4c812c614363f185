//! Asking for a link: the sign-in page (`GET /.portcullis/login`) and its
//! POST, which checks the address, asks the store to admit the request
//! (IP rate, pending caps, address rate, resend delay, all in one call),
//! stores a real attempt or a decoy, and queues the mail only when every
//! check passed. Every address gets the same answer and the same store
//! work (see the threat model in [`super`]).

use crate::audit::{Event, Outcome};
use crate::metrics::SigninRequest::{NotAllowed, Queued, RateLimited};
use http::header::{self, HeaderMap};
use http::{Request, Response, StatusCode};

use super::browser::{verifier, BROWSER_COOKIE_AGE};
use super::csrf;
use super::form::{query_param, read_form};
use super::limits::client_bucket_hash;
use super::shared_pages::check_email_page;
use crate::body::{self, Body, RequestBody};
use crate::cookies::{self, Kind};
use crate::crypto;
use crate::error::Error;
use crate::mail::LoginMail;
use crate::session::now_unix;
use crate::state::Ctx;
use crate::store::{Admission, Attempt, SignInLimits};
use crate::{address, code, redirect, user_agent};

/// The sign-in page, with its `rd` (checked) and CSRF field.
pub(super) fn login_page(
    cx: &Ctx<'_>,
    req: &Request<RequestBody>,
    message: Option<&str>,
    status: StatusCode,
) -> Response<Body> {
    let rd = query_param(req, "rd")
        .and_then(|rd| redirect::check(&rd, &cx.origin, &cx.live.redirect))
        .unwrap_or_else(|| "/".into());
    let (csrf, set) = csrf::token(&cx.app.key, req.headers(), cx.https);
    let mut resp = body::html(status, cx.live.pages.login(&rd, &csrf, message), cx.https);
    cookies::append(resp.headers_mut(), set);
    resp
}

/// `POST /.portcullis/login`.
pub(super) async fn request_link(
    cx: &Ctx<'_>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, Error> {
    let (headers, form) = read_form(cx, req).await?;
    csrf::check(cx, &headers, &form)?;
    let rd = form
        .one("rd")?
        .and_then(|rd| redirect::check(rd, &cx.origin, &cx.live.redirect))
        .unwrap_or_else(|| "/".into());
    let email = match form.one("email")? {
        Some(raw) if !form.has_other_email_fields() => address::parse(raw).ok(),
        _ => None,
    };
    let Some(email) = email else {
        let mut resp = bad_address_page(cx, &headers, &rd);
        *resp.status_mut() = StatusCode::BAD_REQUEST;
        return Ok(resp);
    };

    let login = &cx.live.config.login;
    let key = &cx.app.key;
    let store = &cx.app.store;
    let (verifier, new_verifier) = verifier(cx, &headers);
    let browser = key.hash_hex("verifier", verifier.as_bytes());
    let ip_key = format!("ip:{}", client_bucket_hash(cx));
    // Send limits count the address without its `+tag`.
    let rate_hash = key.hash_hex("email", address::rate_key(&email).as_bytes());
    let address_key = format!("addr:{rate_hash}");
    let resend_key = format!("resend:{rate_hash}");
    let token = crypto::random_token();
    let token_hash = key.hash_hex("token", token.as_bytes());

    // The same store work for every address, so that the answer's timing
    // says nothing about it. Only the client's own IP (its rate and its
    // pending cap) or the total cap can make a request store nothing.
    let admission = store
        .admit_sign_in(&SignInLimits {
            ip_key: &ip_key,
            ip_window: login.ip_rate.window,
            ip_rate: login.ip_rate.count,
            max_pending_per_ip: login.max_pending_per_ip,
            max_pending: login.max_pending,
            pending_window: login.link_ttl,
            address_key: &address_key,
            address_window: login.address_rate.window,
            resend: (!login.resend_delay.is_zero())
                .then_some((resend_key.as_str(), login.resend_delay)),
            token_hash: &token_hash,
        })
        .await?;
    let allowed = login.allow.allows(&email, None);
    let (stored, why_not) = match admission {
        Admission::Admitted {
            address_count,
            fresh,
            ..
        } => (
            true,
            if !allowed {
                Some(("address not allowed", NotAllowed))
            } else if address_count > login.address_rate.count {
                Some(("address rate limit", RateLimited))
            } else if !fresh {
                Some(("resend delay", RateLimited))
            } else {
                None
            },
        ),
        Admission::IpRate => (false, Some(("ip rate limit, nothing stored", RateLimited))),
        Admission::IpFull => (
            false,
            Some(("pending cap per ip, nothing stored", RateLimited)),
        ),
        Admission::TotalFull => (
            false,
            Some(("pending cap in total, nothing stored", RateLimited)),
        ),
    };
    let send = why_not.is_none();

    // A decoy (no mail, empty address) is bound to the asking browser like
    // a real attempt, so every later endpoint answers alike for both; with
    // no address it can never start a session.
    let the_code = code::derive(key, &token);
    let attempt = Attempt {
        email: if send { email.clone() } else { String::new() },
        rd: rd.clone(),
        code_hash: key.hash_hex("code", the_code.as_bytes()),
        browser,
        created_at: now_unix(),
        asked_agent: user_agent::label(headers.get(header::USER_AGENT).map(|v| v.as_bytes())),
        asked_ip: cx.client.ip.to_string(),
    };
    if stored {
        store
            .put_attempt(&token_hash, &attempt, login.link_ttl)
            .await?;
    }

    // The answer repeats the address, as typed and normalised: the same
    // words for every address, so it tells nothing the person did not type.
    let typed = email.clone();
    let masked = address::mask(&email);
    let audited = email.clone();
    if send {
        let origin = cx.live.link_origin(&cx.host_for_links, cx.client.scheme);
        let queued = cx.app.mailer.enqueue(LoginMail {
            to: email,
            link: format!("{origin}/.portcullis/verify?token={token}"),
            code: code::display(&the_code),
            valid_for: login.link_ttl,
            deadline: tokio::time::Instant::now() + login.link_ttl,
            site_name: cx.live.config.ui.title.clone(),
        });
        tracing::info!(to = %masked, queued, "sign-in link requested");
        if queued {
            // (A full queue is counted as a dropped mail.)
            cx.app.metrics.signin_request(Queued);
        }
        super::audit(
            cx,
            Event::SigninRequested,
            Outcome::Success,
            &audited,
            None,
            if queued { "queued" } else { "mail queue full" },
        );
    } else {
        let (reason, outcome) = why_not.unwrap_or(("", RateLimited));
        cx.app.metrics.signin_request(outcome);
        tracing::info!(to = %masked, reason, "sign-in request answered without mail");
        super::audit(
            cx,
            Event::SigninRequested,
            Outcome::Failure,
            &audited,
            None,
            reason,
        );
    }

    let mut resp = check_email_page(cx, &headers, Some(&typed), None, StatusCode::OK);
    if let Some(v) = new_verifier {
        cookies::append(
            resp.headers_mut(),
            cookies::set(Kind::Verifier, &v, cx.https, None, Some(BROWSER_COOKIE_AGE)),
        );
    }
    Ok(resp)
}

fn bad_address_page(cx: &Ctx<'_>, headers: &HeaderMap, rd: &str) -> Response<Body> {
    let (csrf, set) = csrf::token(&cx.app.key, headers, cx.https);
    let page = cx.live.pages.login(
        rd,
        &csrf,
        Some("Enter one email address, like name@example.com."),
    );
    let mut resp = body::html(StatusCode::BAD_REQUEST, page, cx.https);
    cookies::append(resp.headers_mut(), set);
    resp
}
