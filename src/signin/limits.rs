//! The limit on failed link and code checks per client (the budget of
//! [`crate::failures`], shared with share links and machine tokens): a
//! client over it is refused before any lookup.
//!
//! Not here: the admission limits of `POST /login` (the store applies
//! them in one call, see `request`) and the wrong-code count of one
//! attempt (`code_entry`).

use http::Response;

use super::shared_pages::invalid_link;
use crate::body::Body;
use crate::error::Error;
use crate::metrics::SigninMethod;
use crate::state::Ctx;

fn failure_limit(cx: &Ctx<'_>) -> u64 {
    crate::failures::limit(&cx.live.config)
}

pub(super) fn failure_key(cx: &Ctx<'_>) -> String {
    crate::failures::key(&cx.app.key, cx.client.ip)
}

/// The keyed hash of the client's rate bucket
/// ([`crate::failures::bucket`]).
pub(super) fn client_bucket_hash(cx: &Ctx<'_>) -> String {
    cx.app
        .key
        .hash_hex("ip", crate::failures::bucket(cx.client.ip).as_bytes())
}

/// Refuses a client that has failed too many checks, before any lookup.
pub(super) async fn refuse_if_failing(cx: &Ctx<'_>) -> Result<(), Error> {
    if cx.app.store.count(&failure_key(cx)).await? >= failure_limit(cx) {
        return Err(Error::TooManyRequests);
    }
    Ok(())
}

/// Counts one failed check and answers with the invalid-link page.
pub(super) async fn failed_check(
    cx: &Ctx<'_>,
    method: SigninMethod,
) -> Result<Response<Body>, Error> {
    let window = cx.live.config.login.ip_rate.window;
    cx.app.store.hit(&failure_key(cx), window).await?;
    cx.app.metrics.signin(method, false);
    super::audit(
        cx,
        crate::audit::Event::SigninFailed,
        crate::audit::Outcome::Failure,
        "",
        None,
        "unknown, used or expired link or code",
    );
    Ok(invalid_link(cx))
}
