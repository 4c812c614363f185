//! What a request presents to [`crate::authorize`], read once, the same
//! way for the proxy path ([`crate::app`]) and forward-auth: a session, a
//! machine token, or a share link that covers it.
//!
//! In this order, the first that is there wins:
//! 1. A valid session cookie (a request that also carries a Bearer header
//!    is the session's; the header is the application's business), with
//!    the share link covering the request if there is one: the decision
//!    takes the session when its address may pass, else the share.
//! 2. `Authorization: Bearer` when `[[token]]`s are configured: a client
//!    over its failure budget ([`crate::failures`]) is refused first
//!    (429); a wrong or expired secret is 401 and counts one failure, with
//!    an audit line (the token's name when it is known, never the secret).
//!    A valid token costs one store read (the failure count; a store that
//!    does not answer does not stop a valid token).
//! 3. With `[share] enabled`, the share cookies: the first whose MAC
//!    holds, that has not ended and that covers the request (host, method,
//!    both readings of the path), then is checked against the revoked ids
//!    (one store read; a store that does not answer is 503).
//!
//! Nothing here decides: a token that may not open the route is still
//! presented, and the decision says 403.

use std::net::IpAddr;

use http::header::HeaderMap;
use http::Method;

use crate::audit::{Entry, Event, Outcome, RequestFacts};
use crate::authorize::Credential;
use crate::error::Error;
use crate::session::{now_unix, Identity};
use crate::share::Grant;
use crate::state::{App, Live};
use crate::token::{self, Check, Token};

/// The request as [`read`] needs it.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'r> {
    pub headers: &'r HeaderMap,
    pub https: bool,
    /// The client (after `trusted_proxies`).
    pub ip: IpAddr,
    /// The host, method and canonical path asked for (forward-auth: the
    /// original request's).
    pub host: &'r str,
    pub method: &'r Method,
    pub path: &'r str,
    /// For the audit line of a refused token.
    pub request_id: &'r str,
}

/// What the request presents (at most one thing).
#[derive(Debug)]
pub enum Presented<'l> {
    Nothing,
    /// A session, and the share link (if any) covering the request.
    Session(Identity, Option<Grant>),
    Token(&'l Token),
    Share(Grant),
}

impl Presented<'_> {
    /// As [`authorize`](crate::authorize::authorize) takes it, for the
    /// request `method host path`.
    pub fn credential(&self, host: &str, method: &Method, path: &str) -> Option<Credential<'_>> {
        match self {
            Presented::Nothing => None,
            Presented::Session(i, None) => Some(Credential::Session(i)),
            Presented::Session(i, Some(g)) => Some(match g.covering(host, method, path) {
                Some(c) => Credential::SessionOrShare(i, c),
                None => Credential::Session(i),
            }),
            Presented::Token(t) => Some(Credential::Token(t)),
            Presented::Share(g) => g.covering(host, method, path).map(Credential::Share),
        }
    }
}

/// Reads what the request presents; see the module docs for the order.
pub async fn read<'l>(app: &App, live: &'l Live, asked: Asked<'_>) -> Result<Presented<'l>, Error> {
    let config = &live.config;
    if let Some(identity) = app.identity(live, asked.headers, asked.https).await? {
        // A share cookie (sent only under its path) still counts when the
        // address may not open the route.
        let share = if config.share.enabled && has_share_cookie(&asked) {
            Box::pin(covering_share(app, &asked)).await?
        } else {
            None
        };
        return Ok(Presented::Session(identity, share));
    }
    if !config.tokens.is_empty() {
        if let Some(secret) = token::bearer(asked.headers) {
            return Box::pin(check_token(app, live, &asked, secret)).await;
        }
    }
    if config.share.enabled {
        if let Some(grant) = Box::pin(covering_share(app, &asked)).await? {
            return Ok(Presented::Share(grant));
        }
    }
    Ok(Presented::Nothing)
}

/// Whether the request carries an `Authorization: Bearer` header while
/// tokens are configured (the sign-in endpoints refuse it).
pub fn has_bearer(live: &Live, headers: &HeaderMap) -> bool {
    !live.config.tokens.is_empty() && token::bearer(headers).is_some()
}

async fn check_token<'l>(
    app: &App,
    live: &'l Live,
    asked: &Asked<'_>,
    secret: &str,
) -> Result<Presented<'l>, Error> {
    let config = &live.config;
    let failures = crate::failures::key(&app.key, asked.ip);
    // A store that does not answer does not stop a valid token.
    let failed = app.store.count(&failures).await.unwrap_or(0);
    if failed >= crate::failures::limit(config) {
        return Err(Error::TooManyRequests);
    }
    let name = match config.tokens.check(secret, now_unix()) {
        Check::Valid(t) => return Ok(Presented::Token(t)),
        Check::Expired(t) => Some(t.name.as_str()),
        Check::Unknown => None,
    };
    let _ = app.store.hit(&failures, config.login.ip_rate.window).await;
    let reason = match name {
        Some(n) => format!("token {n} expired"),
        None => "unknown token".to_string(),
    };
    app.audit.record(
        &Entry::new(Event::TokenRefused, Outcome::Failure)
            .request(RequestFacts {
                ip: asked.ip,
                request_id: asked.request_id,
                method: asked.method.as_str(),
                host: asked.host,
                path: asked.path,
                user_agent: crate::audit::user_agent(asked.headers),
            })
            .reason(&reason),
    );
    Err(Error::BadToken)
}

/// Whether a `Cookie` header names the share cookie (a byte search: this
/// runs on signed-in requests while share links are on).
fn has_share_cookie(asked: &Asked<'_>) -> bool {
    let name = crate::share::cookie_name(asked.https).as_bytes();
    asked
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .any(|v| memchr::memmem::find(v.as_bytes(), name).is_some())
}

/// The first share cookie that verifies, covers the request and is not
/// revoked.
async fn covering_share(app: &App, asked: &Asked<'_>) -> Result<Option<Grant>, Error> {
    let now = now_unix();
    for t in crate::share::presented(asked.headers, asked.https) {
        let Ok(grant) = Grant::verify(&app.key, t, now) else {
            continue;
        };
        if grant
            .covering(asked.host, asked.method, asked.path)
            .is_none()
        {
            continue;
        }
        if app
            .store
            .count(&crate::share::revoked_key(&grant.id))
            .await?
            > 0
        {
            continue;
        }
        return Ok(Some(grant));
    }
    Ok(None)
}
