//! The end of a successful sign-in: a taken attempt becomes a new session
//! (stored, cached, and set as the session cookie) and the browser is sent
//! to the attempt's `rd`. A session the browser already had is ended: one
//! browser, one session. Session cookies themselves are [`crate::session`]'s.

use http::header::HeaderMap;
use http::Response;

use super::browser::cookie_value;
use crate::address;
use crate::audit::{Event, Outcome};
use crate::body::{self, Body};
use crate::cookies::{self, Kind};
use crate::crypto;
use crate::error::Error;
use crate::metrics::SigninMethod;
use crate::session::{self, now_unix};
use crate::state::Ctx;
use crate::store::{Attempt, SessionRecord};

/// Starts a session for a taken attempt (never a decoy: its address is
/// not empty) and answers 303 to its `rd`.
pub(super) async fn start_session(
    cx: &Ctx<'_>,
    headers: &HeaderMap,
    attempt: Attempt,
    how: SigninMethod,
) -> Result<Response<Body>, Error> {
    start_session_as(cx, headers, attempt, how, how.as_str()).await
}

/// [`start_session`] with the method to record (`amr`): `oidc:NAME` or
/// `github:NAME` for a provider, kept in the session record and written
/// in the audit line.
pub(super) async fn start_session_as(
    cx: &Ctx<'_>,
    headers: &HeaderMap,
    attempt: Attempt,
    how: SigninMethod,
    amr: &str,
) -> Result<Response<Body>, Error> {
    let cfg = &cx.live.config.session;
    let now = now_unix();
    let record = SessionRecord {
        email: attempt.email.clone(),
        created_at: now,
        expires_at: now.saturating_add(cfg.lifetime.as_secs()),
        amr: Some(amr.to_string()),
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
    tracing::info!(to = %address::mask(&record.email), amr, "signed in");
    cx.app.metrics.signin(how, true);
    super::audit(
        cx,
        Event::SigninSucceeded,
        Outcome::Success,
        &record.email,
        Some(&crypto::hex(&new.tag)),
        amr,
    );
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
