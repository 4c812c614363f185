//! The properties the fuzz targets check, shared with `tests/fuzz_corpus.rs`.
//!
//! # What this file owns
//!
//! One function per fuzz target, each taking the raw fuzz input and panicking
//! (through `assert!`) when a property of the gateway's parsers does not hold.
//! The fuzz targets in `fuzz_targets/` call these functions with what
//! libFuzzer generates; `tests/fuzz_corpus.rs` calls them with every
//! committed seed in `fuzz/corpus/<target>/`, so the checks run in ordinary
//! `cargo test` without a fuzzer. Both include this file with `#[path]`, so
//! there is exactly one copy of each property.
//!
//! # What it does not own
//!
//! The parsers themselves (`portcullis::{redirect, path, address, session,
//! headers, config}`) and the table-driven corpora of `tests/corpora.rs`,
//! which pin exact answers; here only properties that hold for *every*
//! input are checked.
//!
//! # Threat model
//!
//! Every parser here sees attacker-controlled text (the `rd` value, request
//! paths, email addresses, cookies) or operator-controlled text (the
//! configuration). A panic is a denial of service; a property violation is a
//! bypass (an open redirect, a path the router and the upstream read
//! differently, an address that means two mailboxes, a forgeable or
//! malleable session cookie, a cookie that survives stripping). The checks
//! compare each parser with an independent reading (the `url` crate, `lettre`,
//! a second parse of the output) rather than with itself where they can.

// Used by the fuzz crate and by an integration test: each uses a part.
#![allow(dead_code)]

use http::header::{HeaderMap, HeaderValue, COOKIE};
use portcullis::crypto::Key;
use portcullis::redirect::RedirectPolicy;
use url::{Host, Url};

/// Origins every redirect input is checked against.
pub const REDIRECT_ORIGINS: [&str; 3] = [
    "https://app.example.com",
    "http://localhost:8080",
    "https://login.example.com:8443",
];

/// The policy of `tests/corpus/redirects*.txt`: two route hosts and a cookie
/// domain covering `example.com` and its subdomains.
pub fn redirect_policy() -> RedirectPolicy {
    RedirectPolicy {
        allowed_hosts: vec!["app.example.com".into(), "foo.bar".into()],
        cookie_domain: Some("example.com".into()),
    }
}

/// Written independently of `RedirectPolicy::allows_host`.
fn host_allowed(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    host == "app.example.com"
        || host == "foo.bar"
        || host == "example.com"
        || (host.ends_with(".example.com") && host.len() > ".example.com".len())
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// One round of percent-decoding, malformed escapes kept, invalid UTF-8
/// replaced. Independent of the library's decoders on purpose.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn without_fragment(mut u: Url) -> Url {
    u.set_fragment(None);
    u
}

// === redirect ===

/// `redirect::check`: whatever it accepts, joined to the origin with the
/// `url` crate, is same-origin or an https URL on an allowed host; the
/// returned Location re-parses to the same URL as the input (fragment
/// aside), is accepted again unchanged, and never panics.
pub fn redirect(data: &[u8]) {
    let rd = text(data);
    let policy = redirect_policy();
    for origin in REDIRECT_ORIGINS {
        let Some(loc) = portcullis::redirect::check(&rd, origin, &policy) else {
            continue;
        };
        redirect_location(&rd, &loc, origin, &policy);
    }
}

fn redirect_location(rd: &str, loc: &str, origin: &str, policy: &RedirectPolicy) {
    let ctx = format!("rd {rd:?} on {origin} gave Location {loc:?}");
    assert!(!loc.is_empty(), "{ctx}");
    assert!(
        loc.len() <= portcullis::redirect::MAX_LEN,
        "{ctx}: too long"
    );
    assert!(
        loc.bytes().all(|b| b.is_ascii_graphic() && b != b'\\'),
        "{ctx}: not plain printable ASCII"
    );
    let base = Url::parse(origin).unwrap_or_else(|e| panic!("{origin}: {e}"));
    let target = base
        .join(loc)
        .unwrap_or_else(|e| panic!("{ctx}: the url crate cannot join it: {e}"));
    let from_rd = base
        .join(rd)
        .unwrap_or_else(|e| panic!("{ctx}: the url crate cannot join the input: {e}"));
    assert_eq!(
        without_fragment(target.clone()),
        without_fragment(from_rd),
        "{ctx}: Location and input lead to different places"
    );
    if loc.starts_with('/') {
        assert!(!loc.starts_with("//"), "{ctx}: scheme-relative");
        assert_eq!(target.origin(), base.origin(), "{ctx}: leaves the origin");
        let mut shown = target.path().to_string();
        if let Some(q) = target.query() {
            shown.push('?');
            shown.push_str(q);
        }
        assert_eq!(shown, loc, "{ctx}: does not re-parse to itself");
        // What a later decoding step (an app reading the Location, a
        // framework decoding `rd` again) could see.
        let mut stage = loc.to_string();
        for _ in 0..3 {
            stage = percent_decode(&stage);
            assert!(
                !stage.starts_with("//") && !stage.starts_with("/\\"),
                "{ctx}: decodes to a scheme-relative URL {stage:?}"
            );
            assert!(
                !stage.chars().any(char::is_control),
                "{ctx}: decodes to a control character"
            );
        }
    } else {
        assert_eq!(target.scheme(), "https", "{ctx}: not https");
        assert!(
            target.username().is_empty() && target.password().is_none(),
            "{ctx}: userinfo"
        );
        assert_eq!(target.port(), None, "{ctx}: explicit port");
        match target.host() {
            Some(Host::Domain(h)) => assert!(host_allowed(h), "{ctx}: host {h:?} not allowed"),
            other => panic!("{ctx}: host {other:?} is not an allowed DNS name"),
        }
        assert_eq!(target.as_str(), loc, "{ctx}: does not re-parse to itself");
        let reparsed = Url::parse(loc).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        assert_eq!(reparsed, target, "{ctx}: absolute parse differs from join");
    }
    assert_eq!(
        portcullis::redirect::check(loc, origin, policy).as_deref(),
        Some(loc),
        "{ctx}: the Location is not accepted again unchanged"
    );
}

// === path ===

/// `path::normalize`: never panics; the output re-normalises to itself, starts
/// with `/`, has no `//`, no `.`/`..` segment (raw or escaped), no segment
/// made only of dots and spaces once its `;parameters` are cut, no `\`, no
/// escaped separator, only ASCII, uppercase escapes of reserved bytes only,
/// and the `url` crate reads the same path from it. `path::matching_view`
/// of the output is what [`lenient_reading`] (written apart) makes of it,
/// is canonical and its own view, holds no `;`, `%3B`, empty or dot
/// segment nor a segment ending in a dot or `%20`, and is the output
/// itself when the output holds none of `;`, `%3B` or such endings.
pub fn path(data: &[u8]) {
    let raw = text(data);
    let Ok(out) = portcullis::path::normalize(&raw) else {
        return;
    };
    let ctx = format!("path {raw:?} gave {out:?}");
    assert_eq!(
        portcullis::path::normalize(&out).as_deref(),
        Ok(out.as_str()),
        "{ctx}: not idempotent"
    );
    assert!(out.starts_with('/'), "{ctx}: not absolute");
    assert!(out.len() <= portcullis::path::MAX_LEN, "{ctx}: too long");
    assert!(!out.contains("//"), "{ctx}: empty segment");
    assert!(
        out.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'\\' | b'#' | b'?')),
        "{ctx}: raw byte that should have been refused or encoded"
    );
    let segments: Vec<&str> = out.split('/').skip(1).collect();
    for seg in &segments {
        let decoded = percent_decode(seg);
        assert!(
            !matches!(decoded.as_str(), "." | ".."),
            "{ctx}: dot segment {seg:?}"
        );
        let name = decoded.split(';').next().unwrap_or("");
        assert!(
            name.is_empty() || !name.bytes().all(|b| b == b'.' || b == b' '),
            "{ctx}: segment {seg:?} is only dots and spaces once its parameters are cut"
        );
    }
    path_view(&out, &ctx);
    let b = out.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let esc = out.get(i + 1..i + 3).unwrap_or("");
            assert!(
                esc.len() == 2
                    && esc
                        .bytes()
                        .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c)),
                "{ctx}: escape {esc:?} is not two uppercase hex digits"
            );
            let value = u8::from_str_radix(esc, 16).unwrap_or(0);
            assert!(
                !(value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~')),
                "{ctx}: escape of an unreserved character"
            );
            assert!(
                !matches!(value, b'/' | b'\\' | 0 | b'#' | b'?') && value >= 0x20 && value != 0x7f,
                "{ctx}: escape %{esc} should have been refused"
            );
            i += 3;
        } else {
            i += 1;
        }
    }
    let base = Url::parse("http://upstream.test/").unwrap_or_else(|e| panic!("{e}"));
    let joined = base
        .join(&out)
        .unwrap_or_else(|e| panic!("{ctx}: the url crate cannot read it: {e}"));
    assert_eq!(
        joined.path(),
        out,
        "{ctx}: the url crate reads another path"
    );
}

/// The view's properties (see [`path`]) for one canonical path.
fn path_view(out: &str, ctx: &str) {
    let view = portcullis::path::matching_view(out);
    let view = view.as_ref();
    let ctx = format!("{ctx}, view {view:?}");
    assert_eq!(view, lenient_reading(out), "{ctx}: not the lenient reading");
    assert_eq!(
        portcullis::path::normalize(view).as_deref(),
        Ok(view),
        "{ctx}: view not canonical"
    );
    assert_eq!(
        portcullis::path::matching_view(view).as_ref(),
        view,
        "{ctx}: view not its own view"
    );
    assert!(
        view.starts_with('/') && !view.contains("//"),
        "{ctx}: empty segment"
    );
    assert!(
        !view.contains(';') && !view.to_ascii_uppercase().contains("%3B"),
        "{ctx}: parameter left"
    );
    for seg in view.split('/').skip(1).filter(|s| !s.is_empty()) {
        assert!(
            !seg.ends_with('.') && !seg.ends_with("%20"),
            "{ctx}: trailing dot or space in {seg:?}"
        );
    }
    let plain = !out.contains(';')
        && !out.contains("%3B")
        && out
            .split('/')
            .all(|s| !s.ends_with('.') && !s.ends_with("%20"));
    if plain {
        assert_eq!(view, out, "{ctx}: changed a path with nothing to cut");
    }
}

/// A canonical path as Tomcat/Spring (`;parameters` cut, raw or `%3B`) and
/// IIS (trailing dots and spaces trimmed) read it, empty segments merged
/// and a trailing `/` kept. Written apart from `path::matching_view`.
pub fn lenient_reading(path: &str) -> String {
    let mut out = String::new();
    let mut trailing = false;
    for segment in path.split('/').skip(1) {
        let cut = segment
            .find(';')
            .into_iter()
            .chain(segment.to_ascii_uppercase().find("%3B"))
            .min()
            .unwrap_or(segment.len());
        let mut name = &segment[..cut];
        while let Some(rest) = name.strip_suffix('.').or_else(|| name.strip_suffix("%20")) {
            name = rest;
        }
        trailing = name.is_empty();
        if !trailing {
            out.push('/');
            out.push_str(name);
        }
    }
    if trailing || out.is_empty() {
        out.push('/');
    }
    out
}

// === cookie ===

pub const COOKIE_KEY: &[u8] = b"fuzz-key-fuzz-key-fuzz-key-fuzz-key-0123";
/// Names looked up in fuzzed `Cookie` headers: the gateway's and a stranger's.
const LOOKUP: [&str; 4] = ["portcullis", "__Host-portcullis", "portcullis-csrf", "a"];

/// Session cookies and `Cookie` header parsing: never panics; a fuzzed value
/// verifies only if it is the canonical encoding of what it decodes to; a
/// cookie made by `new_session` verifies, and no single-byte change, no
/// extension and no truncation of it does; `kept_cookies` removes exactly
/// the gateway's cookies and keeps what `cookie()` reads for other names.
pub fn cookie(data: &[u8]) {
    let key = Key::new(COOKIE_KEY);
    let value = text(data);
    if let Some(tag) = portcullis::session::verify_cookie(&key, &value) {
        // Only reachable from a seed made with COOKIE_KEY: it must be canonical.
        let rest = value.strip_prefix("v1.").unwrap_or("");
        let (id, t) = rest.split_once('.').unwrap_or(("", ""));
        let id_bytes = portcullis::crypto::unb64(id).unwrap_or_default();
        let canonical = format!(
            "v1.{}.{}",
            portcullis::crypto::b64(&id_bytes),
            portcullis::crypto::b64(&tag)
        );
        assert_eq!(canonical, value, "a non-canonical cookie verifies");
        assert_eq!(t, portcullis::crypto::b64(&tag));
    }

    let made = portcullis::session::new_session(&key);
    assert_eq!(
        portcullis::session::verify_cookie(&key, &made.cookie),
        Some(made.tag),
        "a fresh cookie does not verify"
    );
    let bytes = made.cookie.as_bytes();
    for pair in data.chunks(2) {
        let (pos, byte) = match pair {
            [p, b] => (*p as usize % bytes.len(), *b),
            [p] => (*p as usize % bytes.len(), p.wrapping_add(1)),
            _ => continue,
        };
        if bytes[pos] == byte {
            continue;
        }
        let mut changed = bytes.to_vec();
        changed[pos] = byte;
        let changed = String::from_utf8_lossy(&changed).into_owned();
        assert_eq!(
            portcullis::session::verify_cookie(&key, &changed),
            None,
            "cookie with byte {pos} set to {byte:#04x} still verifies"
        );
    }
    if !data.is_empty() {
        let longer = format!("{}{}", made.cookie, value);
        assert_eq!(
            portcullis::session::verify_cookie(&key, &longer),
            None,
            "extended cookie verifies: {longer:?}"
        );
        let cut = made.cookie.len().saturating_sub(1 + data[0] as usize % 20);
        assert_eq!(
            portcullis::session::verify_cookie(&key, made.cookie.get(..cut).unwrap_or("")),
            None,
            "truncated cookie verifies"
        );
    }

    cookie_headers(data);
}

/// The input split at 0xFF bytes into `Cookie` header values (invalid ones skipped).
fn cookie_headers(data: &[u8]) {
    let mut headers = HeaderMap::new();
    for piece in data.split(|b| *b == 0xff).take(4) {
        if let Ok(v) = HeaderValue::from_bytes(piece) {
            headers.append(COOKIE, v);
        }
    }
    let all_visible = headers.get_all(COOKIE).iter().all(|v| v.to_str().is_ok());
    let before: Vec<Option<String>> = LOOKUP
        .iter()
        .map(|n| portcullis::cookie_header::cookie(&headers, n).map(String::from))
        .collect();
    let joined: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    for (name, found) in LOOKUP.iter().zip(&before) {
        if let Some(v) = found {
            assert!(!v.contains(';'), "{name} read as {v:?} from {joined:?}");
            assert!(
                joined.iter().any(|h| h.contains(v.as_str())),
                "{name} read as {v:?}, not in {joined:?}"
            );
        }
    }
    let ours = &LOOKUP[..3];
    // The `Cookie` the upstream would get (`cookie_header::kept_cookies`).
    let mut stripped = HeaderMap::new();
    if let Some(kept) = portcullis::cookie_header::kept_cookies(&headers, ours) {
        let kept = HeaderValue::from_bytes(&kept)
            .unwrap_or_else(|e| panic!("kept cookies of {joined:?} are no header value: {e}"));
        stripped.append(COOKIE, kept);
    }
    for name in ours {
        assert_eq!(
            portcullis::cookie_header::cookie(&stripped, name),
            None,
            "{name} survives kept_cookies of {joined:?}"
        );
    }
    assert!(stripped.get_all(COOKIE).iter().count() <= 1);
    if all_visible {
        let after = portcullis::cookie_header::cookie(&stripped, "a").map(String::from);
        assert_eq!(
            after, before[3],
            "kept_cookies changed the stranger cookie in {joined:?}"
        );
    }
}

// === address ===

/// `address::parse`: never panics; an accepted address re-parses to itself,
/// is lowercase ASCII without whitespace, has exactly one `@`, respects the
/// length limits, has an LDH domain of two or more labels that the `url`
/// crate keeps as is, and `lettre` (which sends the mail) accepts it too.
/// `mask` never panics and prints only printable ASCII.
pub fn address(data: &[u8]) {
    let input = text(data);
    let masked = portcullis::address::mask(&input);
    assert!(
        masked.bytes().all(|b| b.is_ascii_graphic()),
        "mask({input:?}) = {masked:?}"
    );
    let Ok(a) = portcullis::address::parse(&input) else {
        return;
    };
    let ctx = format!("address {input:?} gave {a:?}");
    assert_eq!(
        portcullis::address::parse(&a).as_deref(),
        Ok(a.as_str()),
        "{ctx}: not idempotent"
    );
    assert!(a.is_ascii(), "{ctx}: not ASCII");
    assert_eq!(a, a.to_ascii_lowercase(), "{ctx}: not lowercase");
    assert!(
        a.bytes().all(|b| b.is_ascii_graphic()),
        "{ctx}: whitespace or control"
    );
    assert_eq!(a.matches('@').count(), 1, "{ctx}: not exactly one @");
    assert!(
        a.len() <= portcullis::address::MAX_ADDRESS_LEN,
        "{ctx}: too long"
    );
    let (local, domain) = a.split_once('@').unwrap_or(("", ""));
    assert!(
        !local.is_empty() && local.len() <= portcullis::address::MAX_LOCAL_LEN,
        "{ctx}: local part length"
    );
    assert_eq!(portcullis::address::domain(&a), domain, "{ctx}");
    let labels: Vec<&str> = domain.split('.').collect();
    assert!(labels.len() >= 2, "{ctx}: one label");
    for label in &labels {
        assert!(
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "{ctx}: label {label:?}"
        );
    }
    match Host::parse(domain) {
        Ok(Host::Domain(d)) => assert_eq!(d, domain, "{ctx}: url crate changes the domain"),
        other => panic!("{ctx}: url crate reads the domain as {other:?}"),
    }
    if let Err(e) = a.parse::<lettre::Address>() {
        panic!("{ctx}: lettre refuses it: {e}");
    }
    assert_eq!(
        portcullis::address::mask(&a),
        format!("{}***@{domain}", &local[..1]),
        "{ctx}: mask"
    );
}

// === config ===

/// Environment the fuzzed configuration may name.
pub const CONFIG_ENV: [(&str, &str); 3] = [
    ("X", "y"),
    (
        "PORTCULLIS_SECRET",
        "fuzz-secret-fuzz-secret-fuzz-secret-0123",
    ),
    ("SMTP_PASSWORD", "password"),
];

/// `Config::from_toml_str`: never panics on any text; an error names the
/// file; an accepted configuration yields a usable public origin, route
/// table, link origins that the `url` crate parses back to the same host,
/// pages, and a session cookie that can actually be set.
pub fn config(data: &[u8]) {
    use portcullis::config::{Config, Scheme};
    use portcullis::cookies::{self, Kind};
    let toml = text(data);
    let config = match Config::from_toml_str(&toml, "fuzz.toml", &CONFIG_ENV) {
        Ok(c) => c,
        Err(e) => {
            let shown = e.to_string();
            assert!(
                shown.contains("fuzz.toml"),
                "error without the file: {shown}"
            );
            return;
        }
    };
    let public = config.server.public_url.origin();
    let parsed = Url::parse(&public).unwrap_or_else(|e| panic!("public origin {public:?}: {e}"));
    assert_eq!(
        parsed.origin().ascii_serialization(),
        public,
        "public origin is not canonical"
    );
    let table = portcullis::routes::RouteTable::new(&config.routes);
    let hosts = config.route_hosts();
    for host in &hosts {
        let origin = config.server.public_url.origin_for(host);
        let u = Url::parse(&origin).unwrap_or_else(|e| panic!("link origin {origin:?}: {e}"));
        let seen = u.host_str().unwrap_or("");
        assert_eq!(
            seen,
            host.as_str(),
            "link origin {origin:?} names another host"
        );
        let _ = table.find(host, Scheme::Https, "/");
    }
    for scheme in [Scheme::Http, Scheme::Https] {
        let _ = table.find("anything.test", scheme, "/x");
    }
    let pages = portcullis::pages::Pages::new(&config.ui);
    let _ = pages.login("/", "csrf", None);
    let domain = config.session.cookie_domain.as_deref();
    for https in [false, true] {
        let set = cookies::set(
            Kind::Session,
            "v1.x.y",
            https,
            domain,
            Some(config.session.lifetime),
        );
        assert!(
            set.is_some(),
            "no Set-Cookie possible for cookie_domain {domain:?}"
        );
    }
}

/// The CL+TE watch on client bytes (`framing::Scanner`): never panics; the
/// verdict does not depend on how the stream is cut into reads (the whole
/// input at once, one byte at a time, and cut at every `\n`); and a stream
/// is called ambiguous only if both header names occur in it.
pub fn framing(data: &[u8]) {
    use portcullis::transport::downstream::framing::Scanner;
    let verdict = |s: &Scanner| (s.ambiguous(), s.watching());
    let mut whole = Scanner::default();
    whole.feed(data);
    let mut bytes = Scanner::default();
    for b in data {
        bytes.feed(std::slice::from_ref(b));
    }
    assert_eq!(verdict(&bytes), verdict(&whole), "byte at a time");
    let mut lines = Scanner::default();
    for part in data.split_inclusive(|b| *b == b'\n') {
        lines.feed(part);
    }
    assert_eq!(verdict(&lines), verdict(&whole), "line at a time");
    if whole.ambiguous() {
        let lower = data.to_ascii_lowercase();
        let has = |n: &[u8]| lower.windows(n.len()).any(|w| w == n);
        assert!(has(b"content-length") && has(b"transfer-encoding"));
    }
}

/// The requests `h1_server` serves itself (`take_request`): never
/// panics; a request taken carries none of the headers that send a head
/// to hyper (`Transfer-Encoding`, upgrades, `Expect`), is HTTP/1.1 and
/// not CONNECT; it has at most one `Content-Length`, a plain decimal of at
/// most `MAX_STREAMED`; a body of at most `MAX_BODY` bytes all in the input
/// comes whole (exactly that many bytes, the ones right after the head),
/// any other is streamed (its feed says its length, and the buffer keeps
/// everything after the head for the pump); what is left in the buffer is
/// exactly the input after what was taken; and no shorter prefix of the
/// input is taken as a request with a whole body (a request is never
/// served before its head is whole).
pub fn h1_request(data: &[u8]) {
    use bytes::BytesMut;
    use portcullis::body::RequestBody;
    use portcullis::transport::downstream::h1::{
        take_request, Taken, MAX_BODY, MAX_HEADERS, MAX_STREAMED,
    };
    let mut buf = BytesMut::from(data);
    let Taken::Request(req, _, feed) = take_request(&mut buf, MAX_HEADERS) else {
        assert_eq!(&buf[..], data, "the buffer changed for a request not taken");
        return;
    };
    assert_eq!(req.version(), http::Version::HTTP_11);
    assert_ne!(req.method(), http::Method::CONNECT);
    for name in ["transfer-encoding", "upgrade", "expect"] {
        assert!(!req.headers().contains_key(name), "{name} taken");
    }
    let lengths: Vec<_> = req.headers().get_all("content-length").iter().collect();
    assert!(lengths.len() <= 1, "several Content-Length taken");
    let declared = lengths.first().map_or(0, |v| {
        let text = v.to_str().expect("a Content-Length taken is ASCII");
        assert!(
            text == "0" || (!text.starts_with('0') && text.bytes().all(|b| b.is_ascii_digit())),
            "Content-Length {text:?} taken"
        );
        text.parse::<u64>()
            .expect("a Content-Length taken is a number")
    });
    assert!(declared <= MAX_STREAMED);
    let body = match (req.body(), feed) {
        (RequestBody::Whole(b), None) => b.clone(),
        (RequestBody::Empty, None) => bytes::Bytes::new(),
        (RequestBody::Streamed(_), Some(feed)) => {
            assert_eq!(feed.left, declared, "the feed's length");
            let head_len = data.len() - buf.len();
            assert!(
                declared > MAX_BODY as u64 || ((data.len() - head_len) as u64) < declared,
                "a small body all here was streamed"
            );
            assert!(data[..head_len].ends_with(b"\n\n") || data[..head_len].ends_with(b"\n\r\n"));
            return;
        }
        (RequestBody::Hyper(_), _) => panic!("hyper's body from the own loop"),
        _ => panic!("a body that does not fit its feed"),
    };
    let declared = declared as usize;
    assert!(declared <= MAX_BODY);
    assert_eq!(body.len(), declared, "body length against Content-Length");
    let taken = data.len() - buf.len();
    let head_len = taken - declared;
    assert_eq!(&buf[..], &data[taken..], "bytes after the request");
    assert_eq!(
        &body[..],
        &data[head_len..taken],
        "the body is what follows the head"
    );
    assert!(data[..head_len].ends_with(b"\n\n") || data[..head_len].ends_with(b"\n\r\n"));
    for cut in [
        head_len / 2,
        head_len.saturating_sub(1),
        taken.saturating_sub(1),
    ] {
        if cut >= taken {
            continue;
        }
        let mut prefix = BytesMut::from(&data[..cut]);
        // A prefix holding the whole head may be taken, its body then
        // streamed; a shorter one never.
        match take_request(&mut prefix, MAX_HEADERS) {
            Taken::Request(_, _, Some(_)) if cut >= head_len => {}
            Taken::Request(..) => panic!("a request taken from the first {cut} of {taken} bytes"),
            _ => {}
        }
    }
}

/// The raw upstream client's reading of one answer and its reuse verdict
/// (`h1::read_answer`: the state machine `h1`'s socket code runs, fed a
/// list of reads). Input: byte 0 holds flags (bit 0: the request was a
/// `HEAD`; bit 1: the upstream closed after the last byte), byte 1 a read
/// size, the rest is what the upstream sent. The answer (status, body,
/// trailers) and the verdict are the same whether the bytes arrive at
/// once, one at a time, in reads of the given size, or a line at a time;
/// and a connection is reused only if its answer ended exactly at the last
/// byte: one byte fewer leaves it waiting, one byte more (in the same read
/// or a later one) or a close after it means the connection is closed.
/// Returns whether the connection was reused (for the property test's
/// count).
pub fn h1_answer(data: &[u8]) -> bool {
    use portcullis::transport::upstream::raw::{read_answer, Verdict};
    let (Some(&flags), Some(&step)) = (data.first(), data.get(1)) else {
        return false;
    };
    let bytes = &data[2..];
    let method = if flags & 1 == 1 {
        http::Method::HEAD
    } else {
        http::Method::GET
    };
    let closed = flags & 2 == 2;
    let whole = read_answer(&method, &[bytes], closed);
    let size = usize::from(step % 17) + 1;
    let splits: [(&str, Vec<&[u8]>); 3] = [
        ("a byte at a time", bytes.chunks(1).collect()),
        ("in reads of the given size", bytes.chunks(size).collect()),
        (
            "a line at a time",
            bytes.split_inclusive(|b| *b == b'\n').collect(),
        ),
    ];
    for (how, reads) in &splits {
        assert_eq!(
            read_answer(&method, reads, closed),
            whole,
            "{how} (size {size})"
        );
    }
    if whole.verdict != Verdict::Reuse {
        return false;
    }
    assert!(!closed, "reused after the upstream closed");
    let Some((_, short)) = bytes.split_last() else {
        panic!("reused with no answer at all");
    };
    assert_eq!(
        read_answer(&method, &[short], false).verdict,
        Verdict::Waiting,
        "the answer ended before the last byte"
    );
    let mut more = bytes.to_vec();
    more.push(b'H');
    for (how, reads) in [
        ("a byte more in the same read", vec![&more[..]]),
        ("a byte more in a later read", vec![bytes, b"H"]),
    ] {
        assert_eq!(
            read_answer(&method, &reads, false).verdict,
            Verdict::Close,
            "{how}"
        );
    }
    assert_eq!(
        read_answer(&method, &[bytes], true).verdict,
        Verdict::Close,
        "closed after the answer"
    );
    true
}

/// `host`: [`portcullis::routes::valid_host`], the check on every Host,
/// `:authority`, absolute-form authority and trusted `X-Forwarded-Host`.
/// An accepted host is read the same way by the `url` crate (WHATWG, as
/// browsers and most upstream frameworks read it) and by `http`'s
/// `Authority` (as hyper reads it): the same name as the router keeps
/// (lowercase, no trailing dot; the same address for IPv6), the same port.
/// A host one of them reads otherwise (an IPv4 address in octal or hex, a
/// port out of range) must be refused.
pub fn host(data: &[u8]) {
    let raw = text(data);
    if !portcullis::routes::valid_host(&raw) {
        return;
    }
    let ctx = format!("host {raw:?}");
    assert!(
        raw.bytes().all(|b| b.is_ascii_graphic()),
        "{ctx}: accepted a byte outside printable ASCII"
    );
    let authority: http::uri::Authority = raw
        .parse()
        .unwrap_or_else(|e| panic!("{ctx}: accepted, but http's Authority refuses it: {e}"));
    let url = Url::parse(&format!("http://{raw}/"))
        .unwrap_or_else(|e| panic!("{ctx}: accepted, but the url crate refuses it: {e}"));
    let (name, port) =
        portcullis::routes::normalize_request_host(&raw, portcullis::config::Scheme::Http);
    assert_eq!(
        url.port_or_known_default(),
        Some(port.unwrap_or(80)),
        "{ctx}: the url crate reads another port"
    );
    assert_eq!(
        authority.port_u16().or(Some(80)),
        Some(port.unwrap_or(80)),
        "{ctx}: http reads another port"
    );
    match url.host() {
        Some(Host::Ipv6(a)) => {
            let inner = name.trim_start_matches('[').trim_end_matches(']');
            assert_eq!(
                inner.parse::<std::net::Ipv6Addr>().ok(),
                Some(a),
                "{ctx}: another IPv6 address"
            );
        }
        Some(h) => {
            let seen = h.to_string();
            let seen = seen.strip_suffix('.').unwrap_or(&seen);
            assert_eq!(seen, name, "{ctx}: the url crate reads another name");
        }
        None => panic!("{ctx}: no host in the url crate's reading"),
    }
}
