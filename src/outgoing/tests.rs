use std::collections::BTreeMap;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::Authority;
use http::Method;

use super::{each, head, map, Added};
use crate::config::Scheme;
use crate::forwarded::{self, ClientInfo};
use crate::headers::{
    self, FORWARDED_EMAIL, FORWARDED_FOR, FORWARDED_HOST, FORWARDED_PROTO, FORWARDED_USER,
};

fn headers_of(pairs: &[(&str, &[u8])]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_bytes(v).unwrap(),
        );
    }
    h
}

fn client(forwarded_for: &str, forwarded_host: Option<&str>, scheme: Scheme) -> ClientInfo {
    let ip = "192.0.2.1".parse().unwrap();
    ClientInfo {
        ip,
        peer: ip,
        scheme,
        forwarded_for: forwarded_for.into(),
        forwarded_host: forwarded_host.map(String::from),
    }
}

/// The rules as they were written before this module, one step after
/// another on a copy of the client's header map: the oracle the one-pass
/// version must agree with.
fn reference(
    client_headers: &HeaderMap,
    authority: Option<&Authority>,
    added: &Added<'_>,
) -> HeaderMap {
    let mut h = client_headers.clone();
    let host = h
        .get(header::HOST)
        .cloned()
        .or_else(|| authority.and_then(|a| HeaderValue::from_str(a.as_str()).ok()));
    headers::remove_hop_by_hop(&mut h, added.websocket);
    headers::remove_where(&mut h, |n| headers::is_identity_header(n.as_str()));
    let kept =
        crate::cookie_header::kept_cookies(&h, added.gateway_cookies).map(|c| c.into_owned());
    h.remove(header::COOKIE);
    if let Some(Ok(v)) = kept.map(|k| HeaderValue::from_bytes(&k)) {
        h.insert(header::COOKIE, v);
    }
    headers::remove_where(&mut h, forwarded::from_client);
    headers::remove_where(&mut h, |n| {
        let folded = n.as_str().replace('_', "-");
        added.strip.contains(&folded)
    });
    let info = added.client;
    if let Ok(v) = HeaderValue::from_str(&info.forwarded_for) {
        h.insert(FORWARDED_FOR, v);
    }
    h.insert(
        FORWARDED_PROTO,
        HeaderValue::from_static(info.scheme.as_str()),
    );
    if let Some(Ok(v)) = info.forwarded_host.as_deref().map(HeaderValue::from_str) {
        h.insert(FORWARDED_HOST, v);
    }
    if let Some(host) = host {
        h.insert(header::HOST, host);
    }
    if let Some(Ok(v)) = added.identity.map(HeaderValue::from_str) {
        h.insert(FORWARDED_EMAIL, v.clone());
        h.insert(FORWARDED_USER, v);
    }
    h
}

/// Every name with its values in order: what a server can tell apart.
fn grouped<'a>(pairs: impl Iterator<Item = (&'a str, &'a [u8])>) -> BTreeMap<String, Vec<Vec<u8>>> {
    let mut out: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for (name, value) in pairs {
        out.entry(name.to_ascii_lowercase())
            .or_default()
            .push(value.to_vec());
    }
    out
}

fn grouped_map(h: &HeaderMap) -> BTreeMap<String, Vec<Vec<u8>>> {
    grouped(h.iter().map(|(k, v)| (k.as_str(), v.as_bytes())))
}

/// Parses a head written by [`head`]: its request line and its headers.
fn parse_head(bytes: &[u8]) -> (String, String, BTreeMap<String, Vec<Vec<u8>>>) {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut slots);
    let len = match req.parse(bytes).unwrap() {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => panic!("incomplete head"),
    };
    assert_eq!(len, bytes.len(), "bytes after the head");
    assert_eq!(req.version, Some(1));
    let headers = grouped(req.headers.iter().map(|h| (h.name, h.value)));
    (
        req.method.unwrap().into(),
        req.path.unwrap().into(),
        headers,
    )
}

/// Client headers for the differential test: hostile and ordinary ones.
const POOL: &[(&str, &[u8])] = &[
    ("host", b"app.test"),
    ("host", b"evil.test"),
    ("cookie", b"a=1; portcullis=v1.x.y; b=2"),
    ("cookie", b"portcullis=only"),
    ("cookie", b"c=3"),
    ("cookie", b"caf\xc3\xa9=1; portcullis-csrf=x; d=4"),
    ("cookie", b""),
    ("connection", b"close, X-Forwarded-For, x-custom"),
    ("connection", b"keep-alive, Upgrade"),
    ("connection", b"Cookie"),
    ("connection", b"host, X-Forwarded-Email, accept"),
    ("connection", b" , ,"),
    ("x-custom", b"1"),
    ("keep-alive", b"timeout=5"),
    ("te", b"trailers"),
    ("upgrade", b"websocket"),
    ("proxy-authorization", b"Basic eDp5"),
    ("http2-settings", b"AAMAAABkAAQAoAAAAAIAAAAA"),
    ("x-forwarded-email", b"ceo@corp.example"),
    ("x_forwarded_user", b"ceo"),
    ("X-Forwarded_Email", b"cfo@corp.example"),
    ("remote-user", b"root"),
    ("x-auth-request-email", b"a@b.example"),
    ("x-forwarded-for", b"6.6.6.6"),
    ("x-forwarded-proto", b"https"),
    ("x-forwarded-host", b"admin.internal"),
    ("forwarded", b"for=1.2.3.4"),
    ("x-real-ip", b"1.1.1.1"),
    ("x-forwarded-prefix", b"/admin"),
    ("x-original-url", b"/admin"),
    ("X_Rewrite_URL", b"/admin"),
    ("x-webauth-user", b"admin"),
    ("X_WebAuth_User", b"admin"),
    ("accept", b"text/html"),
    ("accept", b"*/*"),
    ("user-agent", b"test\tagent \x80"),
    ("authorization", b"Bearer upstream-token"),
];

/// A small deterministic generator: the same cases on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn one_pass_agrees_with_the_step_by_step_rules() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let authorities = [None, Some(Authority::from_static("h2.test:8443"))];
    let clients = [
        client("192.0.2.1", Some("app.test"), Scheme::Http),
        client("1.1.1.1, 198.51.100.7, 10.0.0.2", None, Scheme::Https),
        client("192.0.2.1", Some("bad\nhost"), Scheme::Http),
    ];
    let identities = [None, Some("user@example.com"), Some("bad\r\nx-evil: 1")];
    let cookies = ["portcullis", "portcullis-csrf"];
    let strips = [vec![], vec!["x-webauth-user".to_string()]];
    for case in 0..3000 {
        let n = rng.next(9);
        let pairs: Vec<(&str, &[u8])> = (0..n).map(|_| POOL[rng.next(POOL.len())]).collect();
        let client_headers = headers_of(&pairs);
        let added = Added {
            client: &clients[rng.next(clients.len())],
            identity: identities[rng.next(identities.len())],
            groups: None,
            gateway_cookies: &cookies,
            websocket: rng.next(4) == 0,
            strip: &strips[rng.next(strips.len())],
            request_id: None,
            assertion: None,
            via: None,
            rules: None,
            host: None,
            prefix: None,
        };
        let authority = authorities[rng.next(authorities.len())].as_ref();
        let want = grouped_map(&reference(&client_headers, authority, &added));
        let got = map(&client_headers, authority, &added);
        assert_eq!(grouped_map(&got), want, "case {case}: {pairs:?}");
        let bytes = head(&Method::GET, "/a/b?c=d", &client_headers, authority, &added);
        let (method, target, from_bytes) = parse_head(&bytes);
        assert_eq!((method.as_str(), target.as_str()), ("GET", "/a/b?c=d"));
        assert_eq!(from_bytes, want, "case {case}: {pairs:?}");
    }
}

#[test]
fn the_head_is_origin_form_with_host_first_and_ours_last() {
    let client_headers = headers_of(&[
        ("accept", b"text/html"),
        ("host", b"app.test"),
        ("x-forwarded-for", b"1.2.3.4"),
        ("accept", b"*/*"),
        ("cookie", b"a=1; portcullis=v1.x.y"),
    ]);
    let info = client("192.0.2.1", Some("app.test"), Scheme::Https);
    let added = Added {
        client: &info,
        identity: Some("user@example.com"),
        groups: None,
        gateway_cookies: &["portcullis"],
        websocket: false,
        strip: &[],
        request_id: None,
        assertion: None,
        via: None,
        rules: None,
        host: None,
        prefix: None,
    };
    let bytes = head(&Method::GET, "/a/b?c=d", &client_headers, None, &added);
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        "GET /a/b?c=d HTTP/1.1\r\n\
         host: app.test\r\n\
         accept: text/html\r\n\
         accept: */*\r\n\
         cookie: a=1\r\n\
         x-forwarded-for: 192.0.2.1\r\n\
         x-forwarded-proto: https\r\n\
         x-forwarded-host: app.test\r\n\
         x-forwarded-email: user@example.com\r\n\
         x-forwarded-user: user@example.com\r\n\
         \r\n"
    );
}

#[test]
fn every_incoming_copy_of_ours_is_replaced() {
    let client_headers = headers_of(&[
        ("x-forwarded-for", b"6.6.6.6"),
        ("x-forwarded-for", b"7.7.7.7"),
        ("x-forwarded-prefix", b"https://evil"),
        ("x-forwarded-uri", b"/public"),
        ("x-forwarded-email", b"ceo@corp.example"),
        ("x_forwarded_email", b"cfo@corp.example"),
        ("connection", b"X-Forwarded-For, X-Forwarded-Email"),
    ]);
    let info = client("192.0.2.1", None, Scheme::Https);
    let mut seen = Vec::new();
    let added = Added {
        client: &info,
        identity: Some("user@example.com"),
        groups: None,
        gateway_cookies: &["portcullis"],
        websocket: false,
        strip: &[],
        request_id: None,
        assertion: None,
        via: None,
        rules: None,
        host: None,
        prefix: None,
    };
    each(&client_headers, None, &added, |name, value| {
        seen.push(format!("{name}: {}", String::from_utf8_lossy(value)));
    });
    assert_eq!(
        seen,
        [
            "x-forwarded-for: 192.0.2.1",
            "x-forwarded-proto: https",
            "x-forwarded-email: user@example.com",
            "x-forwarded-user: user@example.com",
        ]
    );
}

#[test]
fn a_websocket_upgrade_gets_the_pair_and_nothing_else_hop_by_hop() {
    let client_headers = headers_of(&[
        ("host", b"app.test"),
        ("connection", b"keep-alive, Upgrade, X-Secret"),
        ("upgrade", b"websocket"),
        ("x-secret", b"1"),
        ("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    ]);
    let info = client("192.0.2.1", None, Scheme::Http);
    let added = Added {
        client: &info,
        identity: None,
        groups: None,
        gateway_cookies: &["portcullis"],
        websocket: true,
        strip: &[],
        request_id: None,
        assertion: None,
        via: None,
        rules: None,
        host: None,
        prefix: None,
    };
    let got = map(&client_headers, None, &added);
    assert_eq!(
        got.get_all("connection").iter().collect::<Vec<_>>(),
        ["upgrade"]
    );
    assert_eq!(
        got.get_all("upgrade").iter().collect::<Vec<_>>(),
        ["websocket"]
    );
    assert!(!got.contains_key("x-secret"));
    assert_eq!(got["sec-websocket-key"], "dGhlIHNhbXBsZSBub25jZQ==");
}

#[test]
fn host_comes_from_the_target_when_the_client_sent_none() {
    let info = client("192.0.2.1", None, Scheme::Http);
    let added = Added {
        client: &info,
        identity: None,
        groups: None,
        gateway_cookies: &["portcullis"],
        websocket: false,
        strip: &[],
        request_id: None,
        assertion: None,
        via: None,
        rules: None,
        host: None,
        prefix: None,
    };
    let authority = Authority::from_static("app.test:8443");
    let got = map(&HeaderMap::new(), Some(&authority), &added);
    assert_eq!(got["host"], "app.test:8443");
    assert!(!map(&HeaderMap::new(), None, &added).contains_key("host"));
}
