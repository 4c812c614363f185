//! The one authorization decision: may this request, on this route, with
//! this session, reach the application? Used by the proxy path
//! ([`crate::app`]) and by forward-auth (`/.portcullis/auth`) alike, so the
//! two can never disagree (Pomerium's `authorize` makes the same single
//! binary decision).
//!
//! A request is public only when every reading of its path falls on a
//! public route with the exact case ([`Match::public`]); otherwise it needs
//! a session, and its address must pass the global allow lists
//! (`[login] allow_*`) and those of the route of every reading of the path
//! ([`Match::allows`]). Reading the session is the caller's (it is the
//! store's, and async); [`needs_identity`] says whether to.

use crate::config::Config;
use crate::routes::Match;
use crate::session::Identity;

/// What [`authorize`] decided.
#[derive(Debug)]
pub enum Decision<'a> {
    /// Pass; with the identity to send upstream (`None` on a public route,
    /// which never gets identity headers).
    Allow(Option<&'a Identity>),
    /// No valid session: sign in first (303 to the sign-in page or 401).
    Unauthenticated,
    /// Signed in, but this address may not open this route (403).
    Forbidden(&'a Identity),
}

/// Whether the decision depends on a session (else there is no need to
/// read one).
pub fn needs_identity(m: &Match) -> bool {
    !m.public()
}

/// The decision for a request that fell on `m`, with the session read from
/// it (`None`: no valid session).
pub fn authorize<'a>(config: &Config, m: &Match, identity: Option<&'a Identity>) -> Decision<'a> {
    if m.public() {
        return Decision::Allow(None);
    }
    let Some(identity) = identity else {
        return Decision::Unauthenticated;
    };
    if config.login.allow.allows(&identity.email) && m.allows(&identity.email) {
        Decision::Allow(Some(identity))
    } else {
        Decision::Forbidden(identity)
    }
}
