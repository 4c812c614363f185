//! The sign-in flow: the gateway's own endpoints under `/.portcullis/`.
//!
//! Threat model (each point has a test in `tests/signin.rs`):
//! - `POST /login` gives the same page, byte for byte apart from the CSRF
//!   field, for every address, and does the same store work for each:
//!   allowed, unknown, blocked and rate-limited addresses alike. Only when
//!   every check passes is a real attempt stored and a mail queued; other
//!   requests store a decoy with the same keys and TTL, bound to the asking
//!   browser, so the code and verify endpoints answer it exactly like a
//!   real attempt (wrong codes count down, then lock); its address is
//!   empty, so no code can start a session with it. The address limit and
//!   the resend delay only decide whether mail is sent: they change nothing
//!   a client can see (`tests/signin_abuse.rs`).
//! - Bounded state (`tests/signin_abuse.rs`): a request over the client's
//!   IP rate, over `max_pending_per_ip` or over `max_pending` stores
//!   nothing at all (same answer; it tells a client only about its own IP,
//!   or that the gateway is flooded). An IPv6 client is its /64, for rate
//!   keys and failure counts. A stored `rd` is at most
//!   [`redirect::MAX_LEN`] bytes (a longer one is refused by the check and
//!   becomes `/`). Send limits count the address without its `+tag`.
//! - Tokens are 256 random bits; the store holds only keyed hashes of the
//!   token, the code and the asking browser's verifier.
//! - `GET /verify` never changes state. Only the browser that asked (its
//!   verifier cookie matches) gets a sign-in button; a POST from that
//!   browser takes the attempt atomically, so of many concurrent posts one
//!   wins. Anywhere else (another device, a mail scanner) a GET or HEAD
//!   shows nothing that completes a sign-in, only a button: its POST
//!   (`action=show-code`, CSRF-checked, refused and counted like every
//!   link check) shows the code to type in the browser that asked, with
//!   that browser's family, IP and time, so a person can tell a sign-in
//!   someone else started. Nothing is consumed.
//! - Every POST needs a same-origin `Origin` (or `Sec-Fetch-Site`, or
//!   `Referer`) and a CSRF field bound to a cookie.
//! - Links are built from configured values only, never from the request's
//!   Host or `X-Forwarded-Host`. `rd` is checked before it is stored.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};

use crate::body::{self, Body, RequestBody};
use crate::cookies::{self, Kind};
use crate::crypto;
use crate::error::Error;
use crate::mail::LoginMail;
use crate::session::{self, now_unix};
use crate::state::Ctx;
use crate::store::{Admission, Attempt, SessionRecord, SignInLimits};
use crate::{address, code, pages, redirect, user_agent};

/// Verifier and CSRF cookies live this long in the browser.
const BROWSER_COOKIE_AGE: Duration = Duration::from_secs(30 * 86_400);

pub async fn serve(
    cx: &Ctx<'_>,
    req: Request<RequestBody>,
    path: &str,
) -> Result<Response<Body>, Error> {
    let method = req.method().clone();
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    match path {
        "/.portcullis/login" if get => Ok(login_page(cx, &req, None, StatusCode::OK)),
        "/.portcullis/login" if post => request_link(cx, req).await,
        "/.portcullis/verify" if get => verify_page(cx, &req).await,
        "/.portcullis/verify" if post => verify_submit(cx, req).await,
        "/.portcullis/code" if post => code_submit(cx, req).await,
        "/.portcullis/logout" if get => logout_page(cx, &req).await,
        "/.portcullis/logout" if post => logout_submit(cx, req).await,
        "/.portcullis/auth" if get => forward_auth(cx, &req).await,
        pages::STYLESHEET_PATH if get => Ok(stylesheet(cx)),
        "/.portcullis/login"
        | "/.portcullis/verify"
        | "/.portcullis/code"
        | "/.portcullis/logout"
        | "/.portcullis/auth"
        | pages::STYLESHEET_PATH => Err(Error::MethodNotAllowed),
        _ => Err(Error::NoRoute),
    }
}

// === pages ===

fn login_page(
    cx: &Ctx<'_>,
    req: &Request<RequestBody>,
    message: Option<&str>,
    status: StatusCode,
) -> Response<Body> {
    let rd = query_param(req, "rd")
        .and_then(|rd| redirect::check(&rd, &cx.origin, &cx.live.redirect))
        .unwrap_or_else(|| "/".into());
    let (csrf, set) = csrf_token(cx, req.headers());
    let mut resp = body::html(status, cx.live.pages.login(&rd, &csrf, message), cx.https);
    cookies::append(resp.headers_mut(), set);
    resp
}

fn check_email_page(
    cx: &Ctx<'_>,
    headers: &HeaderMap,
    message: Option<&str>,
    status: StatusCode,
) -> Response<Body> {
    let (csrf, set) = csrf_token(cx, headers);
    let minutes = cx.live.config.login.link_ttl.as_secs().div_ceil(60);
    let page = cx.live.pages.check_email(&csrf, minutes, message);
    let mut resp = body::html(status, page, cx.https);
    cookies::append(resp.headers_mut(), set);
    resp
}

fn stylesheet(cx: &Ctx<'_>) -> Response<Body> {
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

fn invalid_link(cx: &Ctx<'_>) -> Response<Body> {
    body::html(StatusCode::GONE, cx.live.pages.link_invalid(), cx.https)
}

// === POST /.portcullis/login ===

async fn request_link(cx: &Ctx<'_>, req: Request<RequestBody>) -> Result<Response<Body>, Error> {
    let (headers, form) = read_form(cx, req).await?;
    check_csrf(cx, &headers, &form)?;
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
    let allowed = login.allow.allows(&email);
    let (stored, why_not) = match admission {
        Admission::Admitted {
            address_count,
            fresh,
            ..
        } => (
            true,
            if !allowed {
                Some("address not allowed")
            } else if address_count > login.address_rate.count {
                Some("address rate limit")
            } else if !fresh {
                Some("resend delay")
            } else {
                None
            },
        ),
        Admission::IpRate => (false, Some("ip rate limit, nothing stored")),
        Admission::IpFull => (false, Some("pending cap per ip, nothing stored")),
        Admission::TotalFull => (false, Some("pending cap in total, nothing stored")),
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

    let masked = address::mask(&email);
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
    } else {
        let reason = why_not.unwrap_or_default();
        tracing::info!(to = %masked, reason, "sign-in request answered without mail");
    }

    let mut resp = check_email_page(cx, &headers, None, StatusCode::OK);
    if let Some(v) = new_verifier {
        cookies::append(
            resp.headers_mut(),
            cookies::set(Kind::Verifier, &v, cx.https, None, Some(BROWSER_COOKIE_AGE)),
        );
    }
    Ok(resp)
}

fn bad_address_page(cx: &Ctx<'_>, headers: &HeaderMap, rd: &str) -> Response<Body> {
    let (csrf, set) = csrf_token(cx, headers);
    let page = cx.live.pages.login(
        rd,
        &csrf,
        Some("Enter one email address, like name@example.com."),
    );
    let mut resp = body::html(StatusCode::BAD_REQUEST, page, cx.https);
    cookies::append(resp.headers_mut(), set);
    resp
}

// === /.portcullis/verify ===

/// Failed link and code checks allowed per client IP per `ip_rate` window
/// (a person needs a handful; guessing needs millions).
fn failure_limit(cx: &Ctx<'_>) -> u64 {
    cx.live.config.login.ip_rate.count.saturating_mul(4).max(20)
}

fn failure_key(cx: &Ctx<'_>) -> String {
    format!("fail:{}", client_bucket_hash(cx))
}

/// The keyed hash of the client's rate bucket ([`client_bucket`]).
fn client_bucket_hash(cx: &Ctx<'_>) -> String {
    cx.app
        .key
        .hash_hex("ip", client_bucket(cx.client.ip).as_bytes())
}

/// What one client is, for rate limits and failure counts: its IPv4
/// address, or the /64 of its IPv6 address (a /64 is one network, and
/// usually one host can use all of it). An IPv4-mapped IPv6 address is its
/// IPv4 address.
fn client_bucket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Refuses a client that has failed too many checks, before any lookup.
async fn refuse_if_failing(cx: &Ctx<'_>) -> Result<(), Error> {
    if cx.app.store.count(&failure_key(cx)).await? >= failure_limit(cx) {
        return Err(Error::TooManyRequests);
    }
    Ok(())
}

/// Counts one failed check and answers with the invalid-link page.
async fn failed_check(cx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let window = cx.live.config.login.ip_rate.window;
    cx.app.store.hit(&failure_key(cx), window).await?;
    Ok(invalid_link(cx))
}

async fn verify_page(cx: &Ctx<'_>, req: &Request<RequestBody>) -> Result<Response<Body>, Error> {
    refuse_if_failing(cx).await?;
    let Some(token) = query_param(req, "token").filter(|t| plausible_token(t)) else {
        return failed_check(cx).await;
    };
    let token_hash = cx.app.key.hash_hex("token", token.as_bytes());
    let Some(attempt) = cx.app.store.peek_attempt(&token_hash).await? else {
        return failed_check(cx).await;
    };
    let (csrf, set) = csrf_token(cx, req.headers());
    let page = if same_browser(cx, req.headers(), &attempt) {
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

async fn verify_submit(cx: &Ctx<'_>, req: Request<RequestBody>) -> Result<Response<Body>, Error> {
    let (headers, form) = read_form(cx, req).await?;
    check_csrf(cx, &headers, &form)?;
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
        return failed_check(cx).await;
    };
    let token_hash = cx.app.key.hash_hex("token", token.as_bytes());
    let Some(attempt) = cx.app.store.peek_attempt(&token_hash).await? else {
        return failed_check(cx).await;
    };
    if show_code || !same_browser(cx, &headers, &attempt) {
        return Ok(elsewhere_page(cx, &token, &attempt));
    }
    match cx.app.store.take_attempt(&token_hash).await? {
        Some(attempt) if !attempt.email.is_empty() => start_session(cx, &headers, attempt).await,
        _ => Ok(invalid_link(cx)),
    }
}

// === POST /.portcullis/code ===

async fn code_submit(cx: &Ctx<'_>, req: Request<RequestBody>) -> Result<Response<Body>, Error> {
    let (headers, form) = read_form(cx, req).await?;
    check_csrf(cx, &headers, &form)?;
    refuse_if_failing(cx).await?;
    let store = &cx.app.store;
    let key = &cx.app.key;
    let Some(browser) =
        cookie_value(cx, &headers, Kind::Verifier).map(|v| key.hash_hex("verifier", v.as_bytes()))
    else {
        return failed_check(cx).await;
    };
    let Some((token_hash, attempt)) = store.attempt_for_browser(&browser).await? else {
        return failed_check(cx).await;
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
            Some(a) if !a.email.is_empty() => start_session(cx, &headers, a).await,
            _ => Ok(invalid_link(cx)),
        };
    }
    let max = cx.live.config.login.code_attempts;
    store
        .hit(&failure_key(cx), cx.live.config.login.ip_rate.window)
        .await?;
    let failures = store.fail_attempt(&token_hash, max).await?;
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
        Some(&message),
        StatusCode::BAD_REQUEST,
    ))
}

async fn start_session(
    cx: &Ctx<'_>,
    headers: &HeaderMap,
    attempt: Attempt,
) -> Result<Response<Body>, Error> {
    let cfg = &cx.live.config.session;
    let now = now_unix();
    let record = SessionRecord {
        email: attempt.email.clone(),
        created_at: now,
        expires_at: now.saturating_add(cfg.lifetime.as_secs()),
    };
    let new = session::new_session(&cx.app.key);
    let email_hash = cx.app.key.hash_hex("email", record.email.as_bytes());
    cx.app
        .store
        .put_session(
            &crypto::hex(&new.tag),
            &email_hash,
            &record,
            cfg.idle_timeout,
        )
        .await?;
    cx.app.sessions.remember(new.tag, &record);
    // A session cookie the browser already had is ended: one browser, one session.
    if let Some(old) = cookie_value(cx, headers, Kind::Session)
        .and_then(|v| session::verify_cookie(&cx.app.key, v))
    {
        cx.app.sessions.forget(&old);
        let _ = cx
            .app
            .store
            .delete_session(&crypto::hex(&old), &email_hash)
            .await;
    }
    tracing::info!(to = %address::mask(&record.email), "signed in");
    let mut resp = body::see_other(&attempt.rd, cx.https);
    cookies::append(
        resp.headers_mut(),
        cookies::set(
            Kind::Session,
            &new.cookie,
            cx.https,
            cfg.cookie_domain.as_deref(),
            Some(cfg.lifetime),
        ),
    );
    Ok(resp)
}

// === logout and forward-auth ===

async fn logout_page(cx: &Ctx<'_>, req: &Request<RequestBody>) -> Result<Response<Body>, Error> {
    if query_param(req, "done").is_some() {
        return Ok(body::html(
            StatusCode::OK,
            cx.live.pages.signed_out(),
            cx.https,
        ));
    }
    let rd = query_param(req, "rd").unwrap_or_default();
    let identity = cx.current_identity(req.headers()).await.ok().flatten();
    let (csrf, set) = csrf_token(cx, req.headers());
    let page = cx
        .live
        .pages
        .logout_confirm(&csrf, &rd, identity.as_ref().map(|i| &*i.email));
    let mut resp = body::html(StatusCode::OK, page, cx.https);
    cookies::append(resp.headers_mut(), set);
    Ok(resp)
}

async fn logout_submit(cx: &Ctx<'_>, req: Request<RequestBody>) -> Result<Response<Body>, Error> {
    let (headers, form) = read_form(cx, req).await?;
    check_csrf(cx, &headers, &form)?;
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
            tracing::info!(to = %address::mask(&e), "signed out");
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

/// For nginx `auth_request`, Traefik `forwardAuth`, Caddy `forward_auth`:
/// 200 with the identity headers, or 401.
async fn forward_auth(cx: &Ctx<'_>, req: &Request<RequestBody>) -> Result<Response<Body>, Error> {
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

// === helpers ===

fn plausible_token(t: &str) -> bool {
    t.len() == 43
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn same_browser(cx: &Ctx<'_>, headers: &HeaderMap, attempt: &Attempt) -> bool {
    cookie_value(cx, headers, Kind::Verifier).is_some_and(|v| {
        let hash = cx.app.key.hash_hex("verifier", v.as_bytes());
        crypto::ct_eq(hash.as_bytes(), attempt.browser.as_bytes())
    })
}

fn cookie_value<'h>(cx: &Ctx<'_>, headers: &'h HeaderMap, kind: Kind) -> Option<&'h str> {
    let domain = cx.live.config.session.cookie_domain.as_deref();
    crate::headers::cookie(headers, cookies::name(kind, cx.https, domain)).filter(|v| !v.is_empty())
}

/// The browser's verifier, or a new one to set.
fn verifier(cx: &Ctx<'_>, headers: &HeaderMap) -> (String, Option<String>) {
    match cookie_value(cx, headers, Kind::Verifier).filter(|v| plausible_token(v)) {
        Some(v) => (v.to_string(), None),
        None => {
            let v = crypto::random_token();
            (v.clone(), Some(v))
        }
    }
}

/// The CSRF field for a form, and the cookie to set when the browser has
/// none yet.
fn csrf_token(cx: &Ctx<'_>, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    let (value, set) = match cookie_value(cx, headers, Kind::Csrf).filter(|v| plausible_token(v)) {
        Some(v) => (v.to_string(), None),
        None => {
            let v = crypto::random_token();
            let set = cookies::set(Kind::Csrf, &v, cx.https, None, Some(BROWSER_COOKIE_AGE));
            (v, set)
        }
    };
    (crypto::b64(&cx.app.key.tag("csrf", value.as_bytes())), set)
}

fn check_csrf(cx: &Ctx<'_>, headers: &HeaderMap, form: &Form) -> Result<(), Error> {
    let get = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(site, Some("cross-site") | Some("same-site")) {
        return Err(Error::Csrf("Sec-Fetch-Site"));
    }
    // Under `Referrer-Policy: no-referrer` (which every gateway page sends)
    // browsers post forms with `Origin: null`; that says nothing, so the
    // decision falls to Sec-Fetch-Site (or Referer) below.
    match get(header::ORIGIN).filter(|o| *o != "null") {
        Some(origin) => {
            if !origin.eq_ignore_ascii_case(&cx.origin) {
                return Err(Error::Csrf("Origin"));
            }
        }
        None => {
            let referer_ok = get(header::REFERER).is_some_and(|r| {
                r.get(..cx.origin.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(&cx.origin))
                    && r.as_bytes().get(cx.origin.len()) == Some(&b'/')
            });
            if !(matches!(site, Some("same-origin")) || referer_ok) {
                return Err(Error::Csrf("no Origin"));
            }
        }
    }
    let cookie = cookie_value(cx, headers, Kind::Csrf).ok_or(Error::Csrf("no cookie"))?;
    let field = form.one("csrf")?.ok_or(Error::Csrf("no field"))?;
    let expected = crypto::b64(&cx.app.key.tag("csrf", cookie.as_bytes()));
    if crypto::ct_eq(expected.as_bytes(), field.as_bytes()) {
        Ok(())
    } else {
        Err(Error::Csrf("token"))
    }
}

fn query_param(req: &Request<RequestBody>, name: &str) -> Option<String> {
    let query = req.uri().query()?;
    let mut found = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k == name {
            if found.is_some() {
                return None;
            }
            found = Some(v.into_owned());
        }
    }
    found
}

/// A parsed `application/x-www-form-urlencoded` body.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(bytes: &[u8]) -> Form {
        Form(
            url::form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The one value of `name`; a field sent twice is an error.
    pub fn one(&self, name: &str) -> Result<Option<&str>, Error> {
        let mut values = self.0.iter().filter(|(k, _)| k == name);
        let first = values.next().map(|(_, v)| v.as_str());
        if values.next().is_some() {
            return Err(Error::BadRequest("A form field was sent more than once."));
        }
        Ok(first)
    }

    /// `email[]`, `email[0]` and the like: an attempt to send a list.
    fn has_other_email_fields(&self) -> bool {
        self.0
            .iter()
            .any(|(k, _)| k != "email" && k.starts_with("email"))
    }
}

async fn read_form(cx: &Ctx<'_>, req: Request<RequestBody>) -> Result<(HeaderMap, Form), Error> {
    let limit = cx.live.config.server.limits.max_body_bytes;
    let (parts, incoming) = req.into_parts();
    let form_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(Error::BadRequest(
            "Send the form as application/x-www-form-urlencoded.",
        ));
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Error::BodyTooLarge);
    }
    let wait = cx.live.config.server.limits.header_read_timeout;
    let collected = tokio::time::timeout(wait, Limited::new(incoming, limit).collect())
        .await
        .map_err(|_| Error::RequestTimeout)?;
    let bytes: Bytes = match collected {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(Error::BodyTooLarge),
        Err(_) => return Err(Error::BadRequest("The request body could not be read.")),
    };
    Ok((parts.headers, Form::parse(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_once() {
        let f = Form::parse(b"email=a%40b.c&rd=%2Fx&csrf=t");
        assert_eq!(f.one("email").unwrap(), Some("a@b.c"));
        assert_eq!(f.one("rd").unwrap(), Some("/x"));
        assert_eq!(f.one("nope").unwrap(), None);
        let twice = Form::parse(b"email=a%40b.c&email=c%40d.e");
        assert!(matches!(twice.one("email"), Err(Error::BadRequest(_))));
        assert!(Form::parse(b"email%5B%5D=a%40b.c&email=x%40y.z").has_other_email_fields());
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let b = |s: &str| client_bucket(s.parse().unwrap());
        assert_eq!(b("192.0.2.7"), "192.0.2.7");
        assert_eq!(b("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(b("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(b("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_ne!(b("2001:db8:1:3::1"), b("2001:db8:1:2::1"));
    }

    #[test]
    fn token_shape() {
        assert!(plausible_token(&crypto::random_token()));
        assert!(!plausible_token("short"));
        assert!(!plausible_token(&"a".repeat(42)));
        assert!(!plausible_token(&format!("{}=", "a".repeat(42))));
    }
}
