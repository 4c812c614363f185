//! `portcullis link --email E [--rd URL]`: a sign-in link for support
//! staff to hand to a person (who cannot get the mail, say), audited
//! without the link.
//!
//! The flow binds a link to the browser that asked for it; a link made
//! here has no asking browser. It is stored as an attempt whose browser
//! is `any:` and random hex ([`crate::signin::browser::ANY_BROWSER`]):
//! whichever browser opens it gets the same page as the asking browser
//! would, one "Sign in" button, and the first to press it is signed in
//! (the cross-device case, completed where the link is opened). Opening
//! it still changes nothing, so a chat or mail scanner cannot use it up;
//! it works once and for `[login] link_ttl`. It needs the Redis store
//! (the running gateway must see the attempt).

use std::path::Path;

use super::CliError;
use crate::audit::{Entry, Event, Outcome};
use crate::store::Attempt;
use crate::{code, crypto};

/// Runs `portcullis link`; the text to print (the link first).
pub async fn run(config: Option<&Path>, email: &str, rd: Option<&str>) -> Result<String, CliError> {
    let config = super::load(config)?;
    let email = crate::address::parse(email)
        .map_err(|e| CliError(format!("--email {email:?} is not one address ({e})")))?;
    if !config.login.allow.allows(&email, None) {
        return Err(CliError(format!(
            "{email} may not sign in: the [login] allow lists do not name it"
        )));
    }
    let key = super::key(&config, "link")?;
    let live = crate::state::Live::new(config);
    let config = &live.config;
    let public = &config.server.public_url;
    // The link opens on the host of `rd` when a route names it (so the
    // session cookie lands where `rd` is), else on public_url.
    let public_origin = public.origin();
    let rd = match rd {
        None => "/".to_string(),
        Some(rd) => crate::redirect::check(rd, &public_origin, &live.redirect).ok_or_else(|| {
            CliError(format!(
                "--rd {rd:?} is not a place this gateway sends people to (a path, or an https URL on a route's host)"
            ))
        })?,
    };
    let origin = match url::Url::parse(&rd)
        .ok()
        .and_then(|u| u.host_str().map(String::from))
    {
        Some(host) => live.link_origin(&host, public.scheme),
        None => public_origin,
    };
    let store = super::redis(config, "link").await?;
    let token = crypto::random_token();
    let token_hash = key.hash_hex("token", token.as_bytes());
    let the_code = code::derive(&key, &token);
    let attempt = Attempt {
        email: email.clone(),
        rd,
        code_hash: key.hash_hex("code", the_code.as_bytes()),
        browser: format!(
            "{}{}",
            crate::signin::browser::ANY_BROWSER,
            crypto::hex(&crypto::random_bytes::<16>())
        ),
        created_at: crate::session::now_unix(),
        asked_agent: "portcullis link (command line)".into(),
        asked_ip: String::new(),
    };
    let ttl = config.login.link_ttl;
    store
        .put_attempt(&token_hash, &attempt, ttl)
        .await
        .map_err(|e| CliError(format!("store: {e}")))?;
    let reason = format!("support link, valid {}s, once", ttl.as_secs());
    super::audit(config)?.record(
        &Entry::new(Event::LinkIssued, Outcome::Success)
            .email(&email)
            .reason(&reason),
    );
    Ok(format!(
        "{origin}/.portcullis/verify?token={token}\n\
         # for {email}: works once, for {}s; the first browser to press Sign in on it is signed in\n",
        ttl.as_secs()
    ))
}
