//! The one CSRF defence of the gateway's forms: a double-submit cookie.
//!
//! The browser keeps a random CSRF cookie (43 characters, 30 days); every
//! form the gateway renders carries a field that is the keyed tag of that
//! cookie ([`token`] mints both). A POST passes [`check`] only when it says
//! it comes from this origin (`Sec-Fetch-Site`, `Origin` or `Referer`) and
//! its field is the tag of the cookie it sent. The cookie proves nothing
//! about who the user is; it only binds a form to the browser it was
//! rendered for. Every sign-in page and the 403 page's sign-out form use it.

use http::header::{self, HeaderMap, HeaderValue};

use super::browser::{plausible_token, BROWSER_COOKIE_AGE};
use super::form::Form;
use crate::cookies::{self, Kind};
use crate::crypto::{self, Key};
use crate::error::Error;
use crate::state::Ctx;

/// The CSRF field for a form, and the `Set-Cookie` value to send when the
/// browser has no usable CSRF cookie yet (`None` when it has one).
///
/// The cookie is `cookies::name(Kind::Csrf, https, None)`; a value is
/// reused when it has the shape of a token (43 URL-safe base64
/// characters), else a new random one is set for 30 days. The field is
/// the cookie value's keyed tag (`"csrf"`) in URL-safe base64.
pub fn token(key: &Key, headers: &HeaderMap, https: bool) -> (String, Option<HeaderValue>) {
    let (value, set) = match cookie(headers, https).filter(|v| plausible_token(v)) {
        Some(v) => (v.to_string(), None),
        None => {
            let v = crypto::random_token();
            let set = cookies::set(Kind::Csrf, &v, https, None, Some(BROWSER_COOKIE_AGE));
            (v, set)
        }
    };
    (field_for(key, &value), set)
}

/// Refuses a POST that is cross-site, or whose `csrf` field is not the tag
/// of the CSRF cookie it carries.
pub(super) fn check(cx: &Ctx<'_>, headers: &HeaderMap, form: &Form) -> Result<(), Error> {
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
    let cookie = cookie(headers, cx.https).ok_or(Error::Csrf("no cookie"))?;
    let field = form.one("csrf")?.ok_or(Error::Csrf("no field"))?;
    let expected = field_for(&cx.app.key, cookie);
    if crypto::ct_eq(expected.as_bytes(), field.as_bytes()) {
        Ok(())
    } else {
        Err(Error::Csrf("token"))
    }
}

/// The form field that goes with a CSRF cookie value.
fn field_for(key: &Key, cookie: &str) -> String {
    crypto::b64(&key.tag("csrf", cookie.as_bytes()))
}

/// The browser's CSRF cookie, when it sent a non-empty one. Its name never
/// depends on `session.cookie_domain`.
fn cookie(headers: &HeaderMap, https: bool) -> Option<&str> {
    crate::cookie_header::cookie(headers, cookies::name(Kind::Csrf, https, None))
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = HeaderValue::from_str(&format!("{name}={value}")).unwrap();
        h.insert(header::COOKIE, v);
        h
    }

    #[test]
    fn mints_a_30_day_cookie_then_reuses_it() {
        let key = Key::new(b"test key");
        for (https, name) in [(false, "portcullis-csrf"), (true, "__Host-portcullis-csrf")] {
            let (field, set) = token(&key, &HeaderMap::new(), https);
            let set = set.unwrap();
            let set = set.to_str().unwrap();
            assert!(set.contains("Max-Age=2592000"), "{set}");
            let value = set
                .split(';')
                .next()
                .and_then(|p| p.strip_prefix(&format!("{name}=")))
                .unwrap();
            assert_eq!(value.len(), 43);
            assert_eq!(field, field_for(&key, value));

            let (again, none) = token(&key, &with_cookie(name, value), https);
            assert_eq!(again, field);
            assert!(none.is_none());
        }
    }

    #[test]
    fn a_cookie_not_shaped_like_a_token_is_replaced() {
        let key = Key::new(b"test key");
        for bad in [String::from("short"), "!".repeat(43), "a".repeat(44)] {
            let (_, set) = token(&key, &with_cookie("portcullis-csrf", &bad), false);
            assert!(set.is_some(), "{bad}");
        }
    }
}
