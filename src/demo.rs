//! The built-in demo app (`upstream = "demo"`): answered in process, after
//! the same header rewrite a real upstream gets, so it shows exactly what
//! an app behind the gateway would receive.
//!
//! The page is the first thing a newcomer lands on after signing in, often
//! on a phone: who the gateway says you are comes first (the identity
//! headers), then every other header, each name above its value so values
//! get the card's whole width and wrap only where they must.

use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};

use crate::body::{self, Body};
use crate::headers::{FORWARDED_EMAIL, FORWARDED_USER};
use crate::pages::escape;

pub fn respond<B>(req: &Request<B>) -> Response<Body> {
    // The headers that say who is signed in, shown first, in this order.
    let identity_names = [FORWARDED_EMAIL, FORWARDED_USER];
    let headers = req.headers();
    let email = headers.get(&FORWARDED_EMAIL).and_then(|v| v.to_str().ok());
    let who = match email {
        Some(e) => format!(
            "<p>Signed in as <strong id=\"email\">{}</strong>.</p>",
            escape(e)
        ),
        None => "<p>Nobody is signed in (this route is public).</p>".to_string(),
    };
    let identity: Vec<&HeaderName> = identity_names
        .iter()
        .filter(|n| headers.contains_key(*n))
        .collect();
    let identity_list = match identity.is_empty() {
        true => String::new(),
        false => format!(
            "<h2>Who the gateway says you are</h2>\n<dl class=\"headers identity\">\n{}</dl>\n",
            rows(headers, identity.iter().copied())
        ),
    };
    let mut others: Vec<&HeaderName> = headers
        .keys()
        .filter(|k| !identity_names.contains(k))
        .collect();
    others.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Demo app · Portcullis</title><link rel=\"stylesheet\" href=\"/.portcullis/style.css\"></head>\
<body><header class=\"brand\"><span>Demo app</span></header><main><h1>Hello from the app</h1>\n{who}\n\
{identity_list}<h2>Everything else this app received</h2>\n\
<p class=\"lead\"><code>{} {}</code></p>\n<dl class=\"headers\">\n{}</dl>\n\
<a href=\"/.portcullis/logout\">Sign out</a></main>\
<footer><p class=\"product\">Behind Portcullis</p></footer></body></html>\n",
        escape(req.method().as_str()),
        escape(
            &req.uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default()
        ),
        rows(headers, others.into_iter()),
    );
    let mut resp = Response::new(body::full(page));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// One `<div><dt>name</dt><dd>value</dd></div>` per value of each name;
/// the cookie's value is not shown.
fn rows<'a>(headers: &http::HeaderMap, names: impl Iterator<Item = &'a HeaderName>) -> String {
    let mut out = String::new();
    for name in names {
        for v in headers.get_all(name) {
            let shown = if *name == header::COOKIE {
                "(hidden)".to_string()
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            // A line may break after a comma or a semicolon (lists such
            // as Accept), before it has to break inside a word.
            let value = escape(&shown).replace(',', ",<wbr>").replace(';', ";<wbr>");
            out.push_str(&format!(
                "<div><dt>{}</dt><dd>{value}</dd></div>\n",
                escape(name.as_str()),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(headers: &[(&str, &str)]) -> String {
        let mut req = Request::builder().uri("/inbox?folder=2");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = respond(&req.body(()).unwrap());
        let body = resp.into_body();
        let bytes = futures_util::FutureExt::now_or_never(http_body_util::BodyExt::collect(body))
            .unwrap()
            .unwrap()
            .to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn the_identity_comes_first_then_the_other_headers_sorted() {
        let p = page(&[
            ("accept", "text/html"),
            ("x-forwarded-user", "alice"),
            ("cookie", "secret=1"),
            ("x-forwarded-email", "alice@example.com"),
            ("x-forwarded-for", "192.0.2.1"),
        ]);
        let at = |s: &str| p.find(s).unwrap_or_else(|| panic!("{s} not in {p}"));
        assert!(at("<strong id=\"email\">alice@example.com</strong>") < at("<h2>Who"));
        assert!(
            at("<dt>x-forwarded-email</dt><dd>alice@example.com</dd>")
                < at("<dt>x-forwarded-user</dt><dd>alice</dd>")
        );
        assert!(at("<dt>x-forwarded-user</dt>") < at("<h2>Everything else"));
        assert!(at("<h2>Everything else") < at("<dt>accept</dt>"));
        assert!(at("<dt>accept</dt>") < at("<dt>cookie</dt><dd>(hidden)</dd>"));
        assert!(at("<dt>cookie</dt>") < at("<dt>x-forwarded-for</dt>"));
        assert_eq!(p.matches("<dt>x-forwarded-email</dt>").count(), 1);
        assert!(p.contains("<code>GET /inbox?folder=2</code>"));
        assert!(!p.contains("secret=1"));
        let lists = page(&[("accept", "text/html,application/xml;q=0.9")]);
        assert!(
            lists.contains("<dd>text/html,<wbr>application/xml;<wbr>q=0.9</dd>"),
            "{lists}"
        );
    }

    #[test]
    fn a_public_route_says_nobody_is_signed_in() {
        let p = page(&[("accept", "text/html")]);
        assert!(p.contains("Nobody is signed in"));
        assert!(!p.contains("<h2>Who"));
    }
}
