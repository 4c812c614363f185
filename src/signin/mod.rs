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
//!   [`redirect::MAX_LEN`](crate::redirect::MAX_LEN) bytes (a longer one is
//!   refused by the check and becomes `/`). Send limits count the address
//!   without its `+tag`.
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
//!
//! This file only routes; each step lives in a file of its own:
//! - `request`: asking for a link (`/login`), the admission, the decoy.
//! - `verify`: the link page, the same-browser button, show-code.
//! - `code_entry`: typing the code in the browser that asked.
//! - `session_start`: a taken attempt becomes a session cookie.
//! - `logout`: the sign-out page and its POST.
//! - `forward_auth`: `/.portcullis/auth` for other proxies.
//! - `share_open`: `/.portcullis/share/{token}`, opening a share link.
//!
//! With `[[token]]`s configured, a request here (forward-auth aside,
//! whose `Authorization` is the original request's) that carries
//! `Authorization: Bearer` is refused (401): a machine token never signs
//! in, out or anything else on these pages.
//! - [`csrf`]: the double-submit cookie and the check every POST passes.
//! - `browser`: the flow's cookies, the verifier, the same-browser check.
//! - `limits`: client buckets and the failed-check limit.
//! - `form`: the form body and query parameters.
//! - `shared_pages`: the check-email and invalid-link pages, the stylesheet.
//! - `provider`: signing in with a `[[provider]]` (start and callback),
//!   with its flow cookie in `provider_flow`; the protocol is
//!   [`crate::oidc`]'s.
//!
//! With `[login] email = false` the email steps (`POST /login`, `/verify`,
//! `/code`) answer 404 and the sign-in page shows only the providers.

use http::{Method, Request, Response, StatusCode};

use crate::body::{Body, RequestBody};
use crate::error::Error;
use crate::pages;
use crate::state::Ctx;

pub(crate) mod browser;
mod code_entry;
pub mod csrf;
mod form;
mod forward_auth;
mod limits;
mod logout;
mod provider;
mod provider_flow;
mod request;
mod session_start;
mod share_open;
mod shared_pages;
mod verify;

pub use form::Form;
pub use forward_auth::Shape as ForwardAuth;

/// Writes one audit line about this request.
pub(super) fn audit(
    cx: &Ctx<'_>,
    event: crate::audit::Event,
    outcome: crate::audit::Outcome,
    email: &str,
    session: Option<&str>,
    reason: &str,
) {
    let mut entry = crate::audit::Entry::new(event, outcome)
        .email(email)
        .request(cx.facts)
        .reason(reason);
    if let Some(s) = session {
        entry = entry.session(s);
    }
    cx.app.audit.record(&entry);
}

/// The forward-auth endpoint `path` names, for GET and HEAD (the one
/// method those endpoints answer; [`serve`] gives the others their 405).
pub fn forward_auth_endpoint(path: &str, method: &Method) -> Option<ForwardAuth> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    match path {
        "/.portcullis/auth" => Some(ForwardAuth::AuthRequest),
        "/.portcullis/forward-auth" => Some(ForwardAuth::ForwardAuth),
        _ => None,
    }
}

/// Answers a forward-auth question ([`forward_auth_endpoint`]): the same
/// as [`serve`] does for that path, without its sign-in flow's future.
pub async fn forward_auth(
    cx: &Ctx<'_>,
    req: &Request<RequestBody>,
    shape: ForwardAuth,
) -> Result<Response<Body>, Error> {
    forward_auth::forward_auth(cx, req, shape).await
}

pub async fn serve(
    cx: &Ctx<'_>,
    req: Request<RequestBody>,
    path: &str,
) -> Result<Response<Body>, Error> {
    let method = req.method().clone();
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    let forward_auth = path == "/.portcullis/auth" || path == "/.portcullis/forward-auth";
    if !forward_auth && crate::access::has_bearer(cx.live, req.headers()) {
        // A machine token is for applications, never for signing in or out.
        return Err(Error::TokenNotHere);
    }
    if let Some(token) = path.strip_prefix(crate::share::ENDPOINT) {
        return if get {
            share_open::open(cx, &req, token).await
        } else if cx.live.config.share.enabled {
            Err(Error::MethodNotAllowed)
        } else {
            Err(Error::NoRoute)
        };
    }
    let email_off = !cx.live.config.login.email;
    match path {
        "/.portcullis/login" | "/.portcullis/verify" | "/.portcullis/code"
            if email_off && !(path == "/.portcullis/login" && get) =>
        {
            Err(Error::NoRoute)
        }
        provider::START_PATH if get => provider::start(cx, &req).await,
        // GET only: a HEAD would use up the state.
        provider::CALLBACK_PATH if method == Method::GET => provider::callback(cx, &req).await,
        "/.portcullis/login" if get => Ok(request::login_page(cx, &req, None, StatusCode::OK)),
        "/.portcullis/login" if post => request::request_link(cx, req).await,
        "/.portcullis/verify" if get => verify::verify_page(cx, &req).await,
        "/.portcullis/verify" if post => verify::verify_submit(cx, req).await,
        "/.portcullis/code" if post => code_entry::code_submit(cx, req).await,
        "/.portcullis/logout" if get => logout::logout_page(cx, &req).await,
        "/.portcullis/logout" if post => logout::logout_submit(cx, req).await,
        "/.portcullis/auth" if get => {
            forward_auth::forward_auth(cx, &req, ForwardAuth::AuthRequest).await
        }
        "/.portcullis/forward-auth" if get => {
            forward_auth::forward_auth(cx, &req, ForwardAuth::ForwardAuth).await
        }
        pages::STYLESHEET_PATH if get => Ok(shared_pages::stylesheet(cx)),
        "/.portcullis/login"
        | "/.portcullis/verify"
        | "/.portcullis/code"
        | "/.portcullis/logout"
        | "/.portcullis/auth"
        | "/.portcullis/forward-auth"
        | provider::START_PATH
        | provider::CALLBACK_PATH
        | pages::STYLESHEET_PATH => Err(Error::MethodNotAllowed),
        _ => Err(Error::NoRoute),
    }
}
