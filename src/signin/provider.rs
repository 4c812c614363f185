//! Signing in with a `[[provider]]`: the two endpoints.
//!
//! - `GET /.portcullis/oidc/start?provider=NAME&rd=…` checks `rd`, makes a
//!   `state`, a `nonce` and a PKCE verifier, seals them in the flow cookie
//!   ([`super::provider_flow`]) and sends the browser to the provider's
//!   authorization endpoint (code flow, S256). A provider that cannot be
//!   reached gets a 503 page naming it; nothing else is affected.
//! - `GET /.portcullis/oidc/callback?code=…&state=…` needs the flow cookie
//!   and its `state`, takes the `state` once in the store (a replayed
//!   callback fails even with the cookie), exchanges the code
//!   ([`crate::oidc::identify`]: the ID token checked in full, or GitHub's
//!   verified primary address), then applies what a sign-in by link does:
//!   the address normalised, the provider's `allowed_domains`, the
//!   `[login]` allow list (else the 403 page), and the session started for
//!   the checked `rd` with the method recorded (`oidc:NAME`/`github:NAME`).
//!
//! Every failure ends on a page (never a redirect, so never a loop) with
//! no session, an audit line and the flow cookie cleared. Codes, tokens and
//! the client secret are never logged.

use http::header::HeaderMap;
use http::{Request, Response, StatusCode};

use super::browser::cookie_value;
use super::form::query_param;
use super::provider_flow::{pkce_challenge, Flow, FLOW_AGE};
use super::session_start::start_session_as;
use crate::audit::{Event, Outcome};
use crate::body::{self, Body, RequestBody};
use crate::config::{ProviderConfig, ProviderKind};
use crate::cookies::{self, Kind};
use crate::crypto;
use crate::error::Error;
use crate::metrics::SigninMethod;
use crate::oidc::exchange::Flow as Exchange;
use crate::oidc::IdentifyError;
use crate::session::now_unix;
use crate::state::Ctx;
use crate::store::Attempt;
use crate::{address, redirect};

pub(super) const START_PATH: &str = "/.portcullis/oidc/start";
pub(super) const CALLBACK_PATH: &str = "/.portcullis/oidc/callback";

fn method(p: &ProviderConfig) -> SigninMethod {
    match p.kind {
        ProviderKind::Oidc { .. } => SigninMethod::Oidc,
        ProviderKind::Github { .. } => SigninMethod::Github,
    }
}

fn find<'a>(cx: &'a Ctx<'_>, name: &str) -> Option<&'a ProviderConfig> {
    cx.live.config.providers.iter().find(|p| p.name == name)
}

/// An error page for this flow; the flow cookie is cleared.
fn page(cx: &Ctx<'_>, status: StatusCode, message: &str) -> Response<Body> {
    let reason = status.canonical_reason().unwrap_or("Error");
    let html = cx.live.pages.error(status.as_u16(), reason, message);
    let mut resp = body::html(status, html, cx.https);
    cookies::append(
        resp.headers_mut(),
        cookies::set(Kind::Provider, "", cx.https, None, None),
    );
    resp
}

/// `GET /.portcullis/oidc/start`.
pub(super) async fn start(
    cx: &Ctx<'_>,
    req: &Request<RequestBody>,
) -> Result<Response<Body>, Error> {
    let Some(p) = query_param(req, "provider").and_then(|n| find(cx, &n)) else {
        return Ok(page(
            cx,
            StatusCode::NOT_FOUND,
            "There is no such way to sign in here. Go back to the sign-in page and choose again.",
        ));
    };
    let rd = query_param(req, "rd")
        .and_then(|rd| redirect::check(&rd, &cx.origin, &cx.live.redirect))
        .unwrap_or_else(|| "/".into());
    let endpoints = match cx.app.providers.endpoints(p).await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(provider = %p.name, "provider not available: {e}");
            cx.app.metrics.signin(method(p), false);
            return Ok(page(
                cx,
                StatusCode::SERVICE_UNAVAILABLE,
                &format!(
                    "{} is not available right now. Try again in a few minutes{}.",
                    p.label,
                    if cx.live.config.login.email {
                        ", or sign in with your email address"
                    } else {
                        ""
                    }
                ),
            ));
        }
    };
    let origin = cx.live.link_origin(&cx.host_for_links, cx.client.scheme);
    let flow = Flow {
        provider: p.name.clone(),
        state: crypto::random_token(),
        nonce: crypto::random_token(),
        pkce: crypto::random_token(),
        redirect_uri: format!("{origin}{CALLBACK_PATH}"),
        rd,
        expires: now_unix().saturating_add(FLOW_AGE.as_secs()),
    };
    let scope = p.scopes.join(" ");
    let challenge = pkce_challenge(&flow.pkce);
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", &p.client_id)
        .append_pair("redirect_uri", &flow.redirect_uri)
        .append_pair("scope", &scope)
        .append_pair("state", &flow.state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    if matches!(p.kind, ProviderKind::Oidc { .. }) {
        query.append_pair("nonce", &flow.nonce);
        // Google shows only accounts of this Workspace domain (a hint: the
        // address is still checked on return).
        if let [one] = p.allowed_domains.as_slice() {
            query.append_pair("hd", one);
        }
    }
    let sep = if endpoints.authorization.contains('?') {
        '&'
    } else {
        '?'
    };
    let location = format!("{}{sep}{}", endpoints.authorization, query.finish());
    let mut resp = body::see_other(&location, cx.https);
    cookies::append(
        resp.headers_mut(),
        cookies::set(
            Kind::Provider,
            &flow.seal(&cx.app.key),
            cx.https,
            None,
            Some(FLOW_AGE),
        ),
    );
    Ok(resp)
}

/// Audits a failed callback and answers with a page.
fn failed(
    cx: &Ctx<'_>,
    p: Option<&ProviderConfig>,
    email: &str,
    status: StatusCode,
    reason: &str,
    message: &str,
) -> Response<Body> {
    let how = p.map(method).unwrap_or(SigninMethod::Oidc);
    cx.app.metrics.signin(how, false);
    let name = p.map(|p| p.name.as_str()).unwrap_or("-");
    tracing::info!(provider = name, reason, "provider sign-in refused");
    let amr = p.map(|p| format!("{}:{}", p.kind.as_str(), p.name));
    let full = match &amr {
        Some(a) => format!("{a}: {reason}"),
        None => reason.to_string(),
    };
    super::audit(
        cx,
        Event::SigninFailed,
        Outcome::Failure,
        email,
        None,
        &full,
    );
    page(cx, status, message)
}

const START_AGAIN: &str =
    "This sign-in could not be finished. Go back to the sign-in page and start again.";

/// `GET /.portcullis/oidc/callback`.
pub(super) async fn callback(
    cx: &Ctx<'_>,
    req: &Request<RequestBody>,
) -> Result<Response<Body>, Error> {
    let headers: &HeaderMap = req.headers();
    let now = now_unix();
    let Some(flow) =
        cookie_value(cx, headers, Kind::Provider).and_then(|v| Flow::open(&cx.app.key, v, now))
    else {
        return Ok(failed(
            cx,
            None,
            "",
            StatusCode::BAD_REQUEST,
            "no flow cookie (expired, other browser or replayed)",
            START_AGAIN,
        ));
    };
    let p = find(cx, &flow.provider);
    let state_ok = query_param(req, "state")
        .is_some_and(|s| crypto::ct_eq(s.as_bytes(), flow.state.as_bytes()));
    if !state_ok {
        return Ok(failed(
            cx,
            p,
            "",
            StatusCode::BAD_REQUEST,
            "state does not match",
            START_AGAIN,
        ));
    }
    let Some(p) = p else {
        return Ok(failed(
            cx,
            None,
            "",
            StatusCode::BAD_REQUEST,
            "provider no longer configured",
            START_AGAIN,
        ));
    };
    // One use per state, whatever the provider does with its codes.
    let state_key = format!(
        "oidc:{}",
        cx.app.key.hash_hex("oidc-state", flow.state.as_bytes())
    );
    if !cx.app.store.claim(&state_key, FLOW_AGE).await? {
        return Ok(failed(
            cx,
            Some(p),
            "",
            StatusCode::BAD_REQUEST,
            "state already used",
            START_AGAIN,
        ));
    }
    if let Some(err) = query_param(req, "error") {
        let code: String = err
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return Ok(failed(
            cx,
            Some(p),
            "",
            StatusCode::FORBIDDEN,
            &format!("provider answered {code}"),
            &format!(
                "{} did not sign you in ({code}). Go back to the sign-in page to try again.",
                p.label
            ),
        ));
    }
    let Some(code) = query_param(req, "code").filter(|c| !c.is_empty() && c.len() <= 2048) else {
        return Ok(failed(
            cx,
            Some(p),
            "",
            StatusCode::BAD_REQUEST,
            "no code",
            START_AGAIN,
        ));
    };
    let exchange = Exchange {
        code: &code,
        redirect_uri: &flow.redirect_uri,
        pkce_verifier: &flow.pkce,
        nonce: &flow.nonce,
        now,
    };
    let identified = match crate::oidc::identify(&cx.app.providers, p, &exchange).await {
        Ok(i) => i,
        Err(e) => {
            let (status, message) = match &e {
                IdentifyError::Provider(_) | IdentifyError::Api(_) => (
                    StatusCode::BAD_GATEWAY,
                    format!(
                        "{} did not answer as expected. Try again in a few minutes.",
                        p.label
                    ),
                ),
                IdentifyError::NoVerifiedEmail | IdentifyError::IdToken(
                    crate::oidc::id_token::TokenError::EmailUnverified
                    | crate::oidc::id_token::TokenError::NoEmail,
                ) => (
                    StatusCode::FORBIDDEN,
                    format!(
                        "{} did not confirm a verified email address for this account, so it cannot be used to sign in here.",
                        p.label
                    ),
                ),
                _ => (StatusCode::BAD_REQUEST, START_AGAIN.to_string()),
            };
            return Ok(failed(cx, Some(p), "", status, &e.to_string(), &message));
        }
    };
    let Ok(email) = address::parse(&identified.email) else {
        return Ok(failed(
            cx,
            Some(p),
            "",
            StatusCode::FORBIDDEN,
            "provider address not usable",
            "The address this account has cannot be used to sign in here.",
        ));
    };
    let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    let domain_ok = p.allowed_domains.is_empty()
        || (p.allowed_domains.iter().any(|d| d == domain)
            && identified
                .hd
                .as_deref()
                .is_none_or(|hd| p.allowed_domains.iter().any(|d| d.eq_ignore_ascii_case(hd))));
    if !domain_ok || !cx.live.config.login.allow.allows(&email, None) {
        let reason = if domain_ok {
            "address not allowed"
        } else {
            "domain not allowed for this provider"
        };
        return Ok(failed(
            cx,
            Some(p),
            &email,
            StatusCode::FORBIDDEN,
            reason,
            &format!(
                "{email} may not sign in to {}. Sign in with another account, or ask the people who run it for access.",
                cx.live.config.ui.title
            ),
        ));
    }
    let attempt = Attempt {
        email,
        rd: flow.rd.clone(),
        code_hash: String::new(),
        browser: String::new(),
        created_at: now,
        asked_agent: String::new(),
        asked_ip: String::new(),
    };
    let amr = format!("{}:{}", p.kind.as_str(), p.name);
    let mut resp = start_session_as(cx, headers, attempt, method(p), &amr).await?;
    cookies::append(
        resp.headers_mut(),
        cookies::set(Kind::Provider, "", cx.https, None, None),
    );
    Ok(resp)
}
