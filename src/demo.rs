//! The built-in demo app (`upstream = "demo"`): answered in process, after
//! the same header rewrite a real upstream gets, so it shows exactly what
//! an app behind the gateway would receive.

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};

use crate::body::{self, Body};
use crate::pages::escape;

pub fn respond<B>(req: &Request<B>) -> Response<Body> {
    let email = req
        .headers()
        .get("x-forwarded-email")
        .and_then(|v| v.to_str().ok());
    let mut rows = String::new();
    let mut names: Vec<&str> = req.headers().keys().map(|k| k.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        for v in req.headers().get_all(name) {
            let shown = if name == "cookie" {
                "(hidden)".to_string()
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            rows.push_str(&format!(
                "<tr><th scope=\"row\">{}</th><td>{}</td></tr>\n",
                escape(name),
                escape(&shown)
            ));
        }
    }
    let who = match email {
        Some(e) => format!(
            "<p>Signed in as <strong id=\"email\">{}</strong>.</p>",
            escape(e)
        ),
        None => "<p>Nobody is signed in (this route is public).</p>".to_string(),
    };
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Portcullis demo app</title><link rel=\"stylesheet\" href=\"/.portcullis/style.css\"></head>\
<body><main><div class=\"brand\"><span>Demo app</span></div><h1>Hello from the app</h1>{who}\
<p class=\"muted\">{} {}</p>\
<p class=\"muted\">These are the request headers this app received from the gateway:</p>\
<table>{rows}</table><hr><a href=\"/.portcullis/logout\">Sign out</a></main></body></html>\n",
        escape(req.method().as_str()),
        escape(
            &req.uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default()
        ),
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
