//! Table-driven checks of the pure parsers against the corpus files in
//! `tests/corpus/`.
//!
//! - `redirects.txt`: every input must be rejected by `redirect::check`, both
//!   as written and after one round of percent-decoding.
//! - `redirects_ok.txt`: `input<TAB>expected Location`; each must be accepted
//!   with exactly that Location, and the Location must stay in bounds.
//! - `paths.txt`: `input<TAB>expected`, expected being `400` (any
//!   `PathError`) or the canonical path; accepted outputs must be fixed points.
//!
//! Corpus syntax: lines starting with `#` and empty lines are skipped; the
//! tokens `<TAB> <LF> <CR> <VT> <NUL> <SP>` stand for those bytes and `<A:n>`
//! for `n` letters `a` (for very long inputs).

// Test code: a malformed corpus file should fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use portcullis::path::normalize;
use portcullis::redirect::{check, RedirectPolicy};
use url::{Host, Url};

const ORIGIN: &str = "https://app.example.com";

/// The policy every corpus line is checked against. It is deliberately
/// generous (two route hosts plus a cookie domain covering `example.com` and
/// all its subdomains) so that the rejections in `redirects.txt` come from
/// the shape of the input (http:, ports, userinfo, scheme-relative forms,
/// encodings, chained destinations...) and not from a narrow allow-list. With
/// this policy every line of `redirects.txt` must be rejected.
fn policy() -> RedirectPolicy {
    RedirectPolicy {
        allowed_hosts: vec!["app.example.com".into(), "foo.bar".into()],
        cookie_domain: Some("example.com".into()),
    }
}

fn corpus(name: &str) -> Vec<(usize, String)> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "corpus", name]
        .iter()
        .collect();
    let text = std::fs::read_to_string(&path).unwrap();
    text.split('\n')
        .enumerate()
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(i, line)| (i + 1, line.to_string()))
        .collect()
}

/// Expand the corpus tokens.
fn expand(line: &str) -> String {
    let mut out = line
        .replace("<TAB>", "\t")
        .replace("<LF>", "\n")
        .replace("<CR>", "\r")
        .replace("<VT>", "\x0b")
        .replace("<NUL>", "\0")
        .replace("<SP>", " ");
    while let Some(start) = out.find("<A:") {
        let end = start + out[start..].find('>').unwrap();
        let n: usize = out[start + 3..end].parse().unwrap();
        out.replace_range(start..=end, &"a".repeat(n));
    }
    out
}

/// One round of percent-decoding (bad escapes kept, invalid UTF-8 lossy).
/// Written independently of the library's own decoder on purpose.
fn percent_decode_once(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a Location, resolved against the origin, stays in bounds.
fn in_bounds(location: &str) -> bool {
    let base = Url::parse(ORIGIN).unwrap();
    let Ok(url) = base.join(location) else {
        return false;
    };
    if url.origin() == base.origin() {
        return true;
    }
    let host_ok = match url.host() {
        Some(Host::Domain(host)) => {
            let host = host.trim_end_matches('.');
            host == "app.example.com"
                || host == "foo.bar"
                || host == "example.com"
                || host.ends_with(".example.com")
        }
        _ => false,
    };
    url.scheme() == "https" && url.port().is_none() && url.username().is_empty() && host_ok
}

#[test]
fn token_expansion_and_decoding_helpers() {
    assert_eq!(expand("/<TAB><LF><CR><VT><NUL><SP>x"), "/\t\n\r\x0b\0 x");
    assert_eq!(expand("/<A:3>/<A:2>"), "/aaa/aa");
    assert_eq!(percent_decode_once("%2f%2F%41%zz%4"), "//A%zz%4");
    assert_eq!(percent_decode_once("%2525"), "%25");
    assert_eq!(percent_decode_once("%"), "%");
}

#[test]
fn every_redirect_bypass_is_rejected_raw_and_decoded() {
    let lines = corpus("redirects.txt");
    assert!(lines.len() >= 56 + 50, "only {} corpus lines", lines.len());
    let policy = policy();
    let mut failures = Vec::new();
    for (number, line) in &lines {
        let raw = expand(line);
        let decoded = percent_decode_once(&raw);
        for (form, input) in [("raw", &raw), ("decoded", &decoded)] {
            if let Some(location) = check(input, ORIGIN, &policy) {
                failures.push(format!(
                    "line {number} ({form}) {input:?} accepted as {location:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_good_redirect_is_accepted_exactly() {
    let lines = corpus("redirects_ok.txt");
    assert!(lines.len() >= 30, "only {} corpus lines", lines.len());
    let policy = policy();
    let mut failures = Vec::new();
    for (number, line) in &lines {
        let (input, expected) = line.split_once('\t').unwrap();
        let (input, expected) = (expand(input), expand(expected));
        let got = check(&input, ORIGIN, &policy);
        if got.as_deref() != Some(expected.as_str()) {
            failures.push(format!(
                "line {number} {input:?}: expected {expected:?}, got {got:?}"
            ));
        } else if !in_bounds(&expected) {
            failures.push(format!("line {number} {expected:?} is out of bounds"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_path_normalises_as_expected() {
    let lines = corpus("paths.txt");
    assert!(lines.len() >= 28 + 30, "only {} corpus lines", lines.len());
    let mut failures = Vec::new();
    for (number, line) in &lines {
        let (input, expected) = line.split_once('\t').unwrap();
        let (input, expected) = (expand(input), expand(expected));
        let got = normalize(&input);
        match (expected.as_str(), &got) {
            ("400", Err(_)) => {}
            ("400", Ok(out)) => failures.push(format!(
                "line {number} {input:?}: expected 400, got {out:?}"
            )),
            (want, Ok(out)) if want == out => {
                if normalize(out).as_deref() != Ok(out.as_str()) {
                    failures.push(format!("line {number} {out:?} is not a fixed point"));
                }
                if out.contains("//") || out.contains('\\') || out.contains("%2F") {
                    failures.push(format!("line {number} {out:?} breaks an invariant"));
                }
            }
            (want, got) => failures.push(format!(
                "line {number} {input:?}: expected {want:?}, got {got:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
