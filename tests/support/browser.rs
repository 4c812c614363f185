//! A browser as the gateway sees one: a cookie jar carried by hand (per
//! host, like a real browser, ports ignored), `Accept: text/html` on
//! navigations, and `Origin` on form posts.

use std::collections::BTreeMap;

use reqwest::header::{HeaderMap, HeaderValue};

#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }
    pub fn location(&self) -> String {
        self.header("location").unwrap_or_default()
    }
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }
    /// The body with the address that "check your email" repeats (the one
    /// typed, `address`) made one placeholder, so the answers for
    /// different addresses compare byte for byte. Fails if the page does
    /// not repeat it.
    pub fn body_without_address(&self, address: &str) -> String {
        let shown = format!("<strong class=\"address\">{address}</strong>");
        assert!(
            self.body.contains(&shown),
            "the page does not repeat {address}:\n{}",
            self.body
        );
        self.body
            .replace(&shown, "<strong class=\"address\">ADDRESS</strong>")
    }
    /// The value of a hidden field in the page.
    pub fn field(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('"')? + start;
        Some(
            self.body[start..end]
                .replace("&amp;", "&")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">"),
        )
    }
}

#[derive(Clone)]
pub struct Browser {
    client: reqwest::Client,
    pub jar: BTreeMap<String, String>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        Browser::with_client(super::client::http())
    }

    /// A browser on `client` (e.g. one that resolves test host names).
    pub fn with_client(client: reqwest::Client) -> Browser {
        Browser {
            client,
            jar: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> Option<HeaderValue> {
        if self.jar.is_empty() {
            return None;
        }
        let s: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        Some(HeaderValue::from_str(&s.join("; ")).unwrap())
    }

    fn absorb(&mut self, headers: &HeaderMap) {
        for v in headers.get_all("set-cookie") {
            let s = v.to_str().unwrap();
            let first = s.split(';').next().unwrap();
            let (name, value) = first.split_once('=').unwrap();
            let expired = s.contains("Max-Age=0");
            if expired || value.is_empty() {
                self.jar.remove(name.trim());
            } else {
                self.jar.insert(name.trim().to_string(), value.to_string());
            }
        }
    }

    async fn finish(&mut self, resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        self.absorb(&headers);
        let body = resp.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    /// A navigation (Accept: text/html).
    pub async fn get(&mut self, url: &str) -> Page {
        let mut req = self.client.get(url).header("accept", "text/html,*/*;q=0.8");
        if let Some(c) = self.cookie_header() {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        self.finish(resp).await
    }

    /// A fetch that does not ask for HTML.
    pub async fn fetch(&mut self, url: &str) -> Page {
        let mut req = self.client.get(url).header("accept", "application/json");
        if let Some(c) = self.cookie_header() {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        self.finish(resp).await
    }

    /// Same-origin form post.
    pub async fn post(&mut self, origin: &str, path: &str, fields: &[(&str, &str)]) -> Page {
        self.post_with(origin, path, fields, &[("origin", origin)])
            .await
    }

    pub async fn post_with(
        &mut self,
        origin: &str,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut req = self
            .client
            .post(format!("{origin}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "text/html")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(c) = self.cookie_header() {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        self.finish(resp).await
    }
}
