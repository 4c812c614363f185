//! Request-path normalisation: the one canonical path that the router matches
//! and that is forwarded upstream.
//!
//! # What this module owns
//!
//! [`normalize`] turns the path part of a request target (the caller has
//! already split off the query at the first `?`) into a single canonical
//! string, or refuses it with a [`PathError`]. The caller answers `400` to any
//! error. That string is sent to the upstream. [`matching_view`] derives from
//! it the path as the most lenient common upstream reads it (Tomcat, Jetty
//! and Spring drop `;parameters` from each segment, IIS trims trailing dots
//! and spaces): the router matches that view as well as the canonical path,
//! so no spelling of a protected path reaches a route it should not.
//!
//! # What it does not own
//!
//! - Splitting the request target, `*` (OPTIONS) and absolute-form targets:
//!   the caller handles those before calling.
//! - Case policy: case is preserved; whether routes match case-insensitively
//!   is the router's business.
//! - The query string: never seen here.
//!
//! # Threat model
//!
//! An attacker sends paths crafted so that the proxy's access decision is made
//! on one path while the upstream serves another (path-confusion bypasses:
//! `/public/..;/admin`, `/public%2F..%2Fadmin`, `/%2e%2e/admin`, `//admin`,
//! `\`-as-separator, NUL truncation, `#`/`?` smuggled in escapes, overlong or
//! invalid UTF-8, `/admin;x/panel`, `/admin%3B/panel`, `/admin./panel`,
//! `/admin%20/panel`). The defence is threefold: everything whose meaning
//! differs between common servers and frameworks is rejected outright
//! (encoded `/`, `\`, NUL, `#`, `?`, control bytes, segments made only of
//! dots and spaces once their `;parameters` are cut, such as `..;x`, `...`,
//! `. `, raw `\`, raw `#`, bad escapes, invalid UTF-8), the router also
//! matches the [`matching_view`], and everything else is reduced to one form
//! (escapes of unreserved characters decoded exactly once, other escapes in
//! uppercase hex, characters not allowed raw in a path percent-encoded,
//! repeated `/` merged, `.` and `..` resolved) so that the output re-normalises
//! to itself and contains no `//`, no dot segment, no `\` and no `%2F`.
//!
//! The function is pure and bounded: inputs over [`MAX_LEN`] bytes are refused
//! before any work is done, and the work is linear in the input length.

/// Longest path (input or output) accepted, in bytes.
pub const MAX_LEN: usize = 8192;

/// Why a path was refused. The caller answers `400 Bad Request` to all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/` (this includes the empty path).
    #[error("path does not start with '/'")]
    NotAbsolute,
    /// `%2F`: an encoded `/` would be a separator to some servers and not to others.
    #[error("path contains an encoded '/'")]
    EncodedSlash,
    /// `%5C`: an encoded `\`, a separator on some servers.
    #[error("path contains an encoded '\\'")]
    EncodedBackslash,
    /// `%00`: NUL truncates paths in some upstreams.
    #[error("path contains an encoded NUL")]
    EncodedNul,
    /// A `#`, encoded as `%23` or raw (a raw `#` in a request target is a
    /// fragment that no client should send).
    #[error("path contains '#' (raw or encoded)")]
    EncodedHash,
    /// A `?`, encoded as `%3F` or raw (a raw `?` means the caller did not split
    /// off the query, which this module refuses to guess about).
    #[error("path contains '?' (raw or encoded)")]
    EncodedQuestion,
    /// A raw `\`.
    #[error("path contains a raw '\\'")]
    RawBackslash,
    /// A `%` not followed by two hex digits.
    #[error("path contains a malformed percent-escape")]
    BadPercent,
    /// The bytes (raw and percent-decoded together) are not valid UTF-8.
    #[error("path is not valid UTF-8 once decoded")]
    InvalidUtf8,
    /// A control byte (below 0x20, or 0x7F), raw or percent-encoded.
    #[error("path contains a control character")]
    ControlChar,
    /// A segment made only of dots and spaces once its `;parameters` are cut
    /// (`..;x`, `.;`, `...`, `.%20`, `%20`): Tomcat reads `..;x` as `..`,
    /// IIS trims `...` and `.. ` to nothing or a dot segment.
    #[error("path contains a segment of only dots and spaces (like '..;', '...', '. ')")]
    AmbiguousDotSegment,
    /// Longer than [`MAX_LEN`] bytes.
    #[error("path is too long")]
    TooLong,
}

/// Normalise the path part of a request target.
///
/// Input: the path part of the request target (no query; the caller splits
/// at the first `?`). Output: the one canonical path that the router matches
/// and that is forwarded upstream.
///
/// The steps, in order:
/// 1. refuse inputs over [`MAX_LEN`] bytes and inputs not starting with `/`;
/// 2. scan once: refuse raw `\`, `#`, `?` and control bytes; check every
///    escape (`%` + two hex digits) and refuse escapes of `/`, `\`, NUL, `#`,
///    `?` and control bytes; decode escapes of unreserved characters
///    (`A-Z a-z 0-9 - . _ ~`) exactly once; keep other escapes with uppercase
///    hex; percent-encode raw bytes that RFC 3986 does not allow raw in a path
///    (space, `"`, `<`, `>`, `[`, `]`, `^`, `` ` ``, `{`, `|`, `}` and all
///    non-ASCII bytes), so that `/café` and `/caf%c3%a9` give the same output;
/// 3. refuse the path if its bytes, with every escape decoded, are not UTF-8;
/// 4. merge repeated `/`, refuse segments made only of dots and spaces
///    once their `;parameters` are cut (`..;`, `.%3B`, `...`, `. `, a lone
///    space; [`PathError::AmbiguousDotSegment`]), resolve `.` and `..` (RFC
///    3986 §5.2.4, `..` never climbs above the root) and keep a trailing `/`
///    when the input had one or ended in a dot segment.
///
/// `normalize(&normalize(x)?) == normalize(x)` for every `x`.
pub fn normalize(raw: &str) -> Result<String, PathError> {
    if raw.len() > MAX_LEN {
        return Err(PathError::TooLong);
    }
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if already_normal(raw.as_bytes()) {
        return Ok(raw.to_string());
    }
    let canonical = canonical_bytes(raw.as_bytes())?;
    let resolved = resolve_segments(&canonical)?;
    if resolved.len() > MAX_LEN {
        return Err(PathError::TooLong);
    }
    Ok(resolved)
}

/// The common case, which the steps would return unchanged: only
/// unreserved characters and `/` (nothing to decode or escape), and no
/// empty, `.` or `..` segment (a trailing `/` is kept as it is). Checked
/// against the full steps in the tests.
fn already_normal(raw: &[u8]) -> bool {
    let Some((b'/', rest)) = raw.split_first() else {
        return false;
    };
    let plain = rest
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/'));
    if !plain {
        return false;
    }
    let mut segments = rest.split(|&b| b == b'/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match segment {
            b"" if last => {}
            // Empty, `.`, `..`, and `...` and longer (refused).
            s if s.iter().all(|&b| b == b'.') => return false,
            _ => {}
        }
    }
    true
}

/// Step 2 and 3: one pass over the bytes, producing the path with canonical
/// escapes (still with `.`/`..`/empty segments).
fn canonical_bytes(raw: &[u8]) -> Result<String, PathError> {
    let mut out = String::with_capacity(raw.len());
    // Every byte the path stands for, escapes decoded, for the UTF-8 check.
    let mut decoded: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b == b'%' {
            let value = match (raw.get(i + 1), raw.get(i + 2)) {
                (Some(&h), Some(&l)) => match (hex_value(h), hex_value(l)) {
                    (Some(h), Some(l)) => (h << 4) | l,
                    _ => return Err(PathError::BadPercent),
                },
                _ => return Err(PathError::BadPercent),
            };
            check_escaped(value)?;
            if is_unreserved(value) {
                out.push(char::from(value));
            } else {
                push_escape(&mut out, value);
            }
            decoded.push(value);
            i += 3;
            continue;
        }
        check_raw(b)?;
        if is_allowed_raw(b) {
            out.push(char::from(b));
        } else {
            push_escape(&mut out, b);
        }
        decoded.push(b);
        i += 1;
    }
    if std::str::from_utf8(&decoded).is_err() {
        return Err(PathError::InvalidUtf8);
    }
    Ok(out)
}

/// Refusals for a byte that appeared raw in the input.
fn check_raw(b: u8) -> Result<(), PathError> {
    match b {
        b'\\' => Err(PathError::RawBackslash),
        b'#' => Err(PathError::EncodedHash),
        b'?' => Err(PathError::EncodedQuestion),
        b if is_control(b) => Err(PathError::ControlChar),
        _ => Ok(()),
    }
}

/// Refusals for a byte that appeared as a percent-escape.
fn check_escaped(value: u8) -> Result<(), PathError> {
    match value {
        b'/' => Err(PathError::EncodedSlash),
        b'\\' => Err(PathError::EncodedBackslash),
        0 => Err(PathError::EncodedNul),
        b'#' => Err(PathError::EncodedHash),
        b'?' => Err(PathError::EncodedQuestion),
        v if is_control(v) => Err(PathError::ControlChar),
        _ => Ok(()),
    }
}

/// Step 4: merge `/`, resolve dot segments, keep the trailing slash.
fn resolve_segments(path: &str) -> Result<String, PathError> {
    let mut stack: Vec<&str> = Vec::new();
    // Whether the output ends with '/' after the last kept segment.
    let mut trailing = false;
    for segment in path.split('/') {
        if is_ambiguous_dot(segment) {
            return Err(PathError::AmbiguousDotSegment);
        }
        match segment {
            // Empty segments come from the leading '/', from '//' and from a
            // trailing '/'; they are merged away but remember the slash.
            "" | "." => trailing = true,
            ".." => {
                stack.pop();
                trailing = true;
            }
            name => {
                stack.push(name);
                trailing = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for name in &stack {
        out.push('/');
        out.push_str(name);
    }
    if trailing || out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// A segment (canonical escapes) that is not exactly `.` or `..` but is
/// made only of dots and spaces once its parameters are cut: `.;x`, `..;`,
/// `.%3B`, `...`, `.%20`, `%20..`, `%20`. A segment that is only
/// parameters (`;jsessionid=1`) is not: its name is empty, as for `//`.
fn is_ambiguous_dot(segment: &str) -> bool {
    if segment == "." || segment == ".." {
        return false;
    }
    let name = segment_name(segment);
    !name.is_empty() && trim_dots_and_spaces(name).is_empty()
}

/// The segment without its `;parameters` (cut at the first `;` or `%3B`).
fn segment_name(segment: &str) -> &str {
    let b = segment.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b';' || (c == b'%' && is_escaped_semicolon(b.get(i + 1..i + 3))) {
            return segment.get(..i).unwrap_or(segment);
        }
        i += 1;
    }
    segment
}

fn is_escaped_semicolon(hex: Option<&[u8]>) -> bool {
    matches!(hex, Some([b'3', b'B' | b'b']))
}

/// `name` without its trailing dots and spaces (raw or `%20`).
fn trim_dots_and_spaces(mut name: &str) -> &str {
    loop {
        if let Some(rest) = name.strip_suffix('.').or_else(|| name.strip_suffix(' ')) {
            name = rest;
        } else if let Some(rest) = name
            .strip_suffix("%20")
            .or_else(|| name.strip_suffix("%2E"))
            .or_else(|| name.strip_suffix("%2e"))
        {
            name = rest;
        } else {
            return name;
        }
    }
}

/// The path as the most lenient common upstream reads it, for matching
/// routes: in each segment of the canonical path `canonical` (an output of
/// [`normalize`]) the `;parameters` are cut (`;` raw or `%3B`, as Tomcat,
/// Jetty and Spring do) and trailing dots and spaces (`.`, `%20`) trimmed
/// (as IIS does); a segment left empty is merged away as `//` is. The
/// result is itself canonical, holds no `;` or `%3B` and no segment ending
/// in a dot or space, and is `canonical` itself (borrowed) in the common
/// case where nothing is cut. [`normalize`] refuses the segments this
/// would turn into dot segments, so the view never climbs.
pub fn matching_view(canonical: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    if !needs_view(canonical.as_bytes()) {
        return Cow::Borrowed(canonical);
    }
    let mut out = String::with_capacity(canonical.len());
    let mut trailing = false;
    for segment in canonical.split('/').skip(1) {
        let name = trim_dots_and_spaces(segment_name(segment));
        if name.is_empty() {
            trailing = true;
        } else {
            out.push('/');
            out.push_str(name);
            trailing = false;
        }
    }
    if trailing || out.is_empty() {
        out.push('/');
    }
    Cow::Owned(out)
}

/// Whether [`matching_view`] could differ from the path: it holds a `;`,
/// a `%3B`, or a segment that ends in a dot or `%20`.
fn needs_view(b: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let next = b.get(i + 1).copied();
        match c {
            b';' => return true,
            b'%' if is_escaped_semicolon(b.get(i + 1..i + 3)) => return true,
            b'%' if matches!(b.get(i + 1..i + 3), Some(b"20" | b"2E" | b"2e"))
                && matches!(b.get(i + 3), None | Some(b'/')) =>
            {
                return true
            }
            b'.' | b' ' if matches!(next, None | Some(b'/')) => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

fn push_escape(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0F)]));
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7F
}

/// RFC 3986 unreserved: decoded when escaped.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Bytes kept raw in the output: RFC 3986 `pchar` (minus `%`, handled as
/// escapes) plus the `/` separator. Everything else is percent-encoded.
fn is_allowed_raw(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
        )
}

#[cfg(test)]
mod tests {

    /// The shortcut for paths already in normal form gives exactly what
    /// the full steps give, for every path of up to six characters over an
    /// alphabet with the characters that matter.
    #[test]
    fn already_normal_agrees_with_the_full_steps() {
        let alphabet = [b'a', b'Z', b'0', b'.', b'/', b'-', b'~', b'_', b'%', b';'];
        let mut checked = 0;
        for len in 0..=6u32 {
            for n in 0..alphabet.len().pow(len) {
                let mut path = vec![b'/'];
                let mut k = n;
                for _ in 0..len {
                    path.push(alphabet[k % alphabet.len()]);
                    k /= alphabet.len();
                }
                if already_normal(&path) {
                    let text = std::str::from_utf8(&path).unwrap();
                    let full = canonical_bytes(&path).and_then(|c| resolve_segments(&c));
                    assert_eq!(full.as_deref(), Ok(text), "{text}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    use super::*;

    fn ok(input: &str, expected: &str) {
        assert_eq!(
            normalize(input),
            Ok(expected.to_string()),
            "input {input:?}"
        );
        assert_eq!(
            normalize(expected),
            Ok(expected.to_string()),
            "not idempotent for {input:?}"
        );
    }

    fn err(input: &str, expected: PathError) {
        assert_eq!(normalize(input), Err(expected), "input {input:?}");
    }

    #[test]
    fn plain_paths_are_unchanged() {
        ok("/", "/");
        ok("/a", "/a");
        ok("/a/b/c", "/a/b/c");
        ok("/a/b/", "/a/b/");
        ok("/ADMIN", "/ADMIN");
        ok("/admin.", "/admin.");
        ok("/api../admin", "/api../admin");
        ok("/a;b=c/d", "/a;b=c/d");
        ok("/a:b@c!$&'()*+,;=", "/a:b@c!$&'()*+,;=");
        ok("/~user/-_.", "/~user/-_.");
        ok("/.a/..b/a./b..", "/.a/..b/a./b..");
    }

    #[test]
    fn not_absolute() {
        err("", PathError::NotAbsolute);
        err("a/b", PathError::NotAbsolute);
        err("*", PathError::NotAbsolute);
        err("%2F", PathError::NotAbsolute);
        err("http://x/", PathError::NotAbsolute);
        err(" /a", PathError::NotAbsolute);
    }

    #[test]
    fn repeated_slashes_merge() {
        ok("//admin", "/admin");
        ok("/echo//foo//bar", "/echo/foo/bar");
        ok("///", "/");
        ok("/a///b////", "/a/b/");
    }

    #[test]
    fn dot_segments_resolve() {
        ok("/bypass/../a/longer/rule/abc", "/a/longer/rule/abc");
        ok("/bypass/..//a/longer/rule/abc", "/a/longer/rule/abc");
        ok("/service/sub-path/../other-path", "/service/other-path");
        ok("/a/./b", "/a/b");
        ok("/a/.", "/a/");
        ok("/a/..", "/");
        ok("/a/b/..", "/a/");
        ok("/..", "/");
        ok("/.", "/");
        ok("/../../..", "/");
        ok("/../a", "/a");
        ok("/a/../../b/./c/..", "/b/");
        ok("/a/b/../../../../c", "/c");
    }

    #[test]
    fn encoded_dots_are_decoded_then_resolved() {
        ok("/%2e%2e/secret", "/secret");
        ok("/%2E%2E/secret", "/secret");
        ok("/.%2e/secret", "/secret");
        ok("/bypass/%2e%2e/a/longer/rule/abc", "/a/longer/rule/abc");
        ok("/public/%2e%2e/admin", "/admin");
        ok("/api%2e%2e/admin", "/api../admin");
        ok("/a/%2e", "/a/");
        ok("/a/%2e/b", "/a/b");
    }

    #[test]
    fn unreserved_escapes_decode_exactly_once() {
        ok("/%61dmin", "/admin");
        ok("/%41%5a%30%39%2d%5f%7e", "/AZ09-_~");
        ok("/%2561dmin", "/%2561dmin");
        ok("/%252e%252e/x", "/%252e%252e/x");
        ok("/%25", "/%25");
    }

    #[test]
    fn other_escapes_become_uppercase() {
        ok("/public%3B/admin", "/public%3B/admin");
        ok("/public%3b/admin", "/public%3B/admin");
        ok("/admin%20", "/admin%20");
        ok("/a%2cb", "/a%2Cb");
        ok("/caf%c3%a9", "/caf%C3%A9");
        ok("/caf%C3%A9", "/caf%C3%A9");
        ok("/%40", "/%40");
    }

    #[test]
    fn raw_bytes_outside_pchar_are_encoded() {
        ok("/café", "/caf%C3%A9");
        ok("/a b", "/a%20b");
        ok("/a\"<>`{|}^[]", "/a%22%3C%3E%60%7B%7C%7D%5E%5B%5D");
        ok("/日本", "/%E6%97%A5%E6%9C%AC");
    }

    #[test]
    fn forbidden_escapes() {
        err("/bypass/..%2f/a/longer/rule/abc", PathError::EncodedSlash);
        err("/bypass/%2e%2e%2f/a", PathError::EncodedSlash);
        err("/foo%2f..%2fbar", PathError::EncodedSlash);
        err("/echo/an%2Fexample", PathError::EncodedSlash);
        err("/echo/an%5Cexample", PathError::EncodedBackslash);
        err("/echo/an%5cexample", PathError::EncodedBackslash);
        err("/public%00/admin", PathError::EncodedNul);
        err("/public%23/admin", PathError::EncodedHash);
        err("/public%3F/admin", PathError::EncodedQuestion);
        err("/public%3f/admin", PathError::EncodedQuestion);
        err("/a%09b", PathError::ControlChar);
        err("/a%0a", PathError::ControlChar);
        err("/a%0D", PathError::ControlChar);
        err("/a%1f", PathError::ControlChar);
        err("/a%7f", PathError::ControlChar);
    }

    #[test]
    fn forbidden_raw_bytes() {
        err("/a\\b", PathError::RawBackslash);
        err("/\\", PathError::RawBackslash);
        err("/a#b", PathError::EncodedHash);
        err("/a?b", PathError::EncodedQuestion);
        err("/a\tb", PathError::ControlChar);
        err("/a\nb", PathError::ControlChar);
        err("/a\rb", PathError::ControlChar);
        err("/a\0b", PathError::ControlChar);
        err("/a\x7fb", PathError::ControlChar);
    }

    #[test]
    fn bad_percent() {
        err("/%", PathError::BadPercent);
        err("/%4", PathError::BadPercent);
        err("/%4g", PathError::BadPercent);
        err("/%g4", PathError::BadPercent);
        err("/%%41", PathError::BadPercent);
        err("/a%-1", PathError::BadPercent);
        err("/a%é9", PathError::BadPercent);
    }

    #[test]
    fn utf8_of_decoded_bytes() {
        err("/%FF", PathError::InvalidUtf8);
        err("/%C3", PathError::InvalidUtf8);
        err("/%C3%28", PathError::InvalidUtf8);
        err("/%C0%AE", PathError::InvalidUtf8); // overlong '.'
        err("/%E0%80%AF", PathError::InvalidUtf8); // overlong '/'
        err("/%ED%A0%80", PathError::InvalidUtf8); // surrogate
                                                   // A raw lead byte cannot be completed by an escape, since raw input is
                                                   // a &str; but an escaped lead byte followed by a raw ASCII byte is checked.
        err("/%E6a", PathError::InvalidUtf8);
        ok("/%E6%97%A5", "/%E6%97%A5");
    }

    #[test]
    fn tomcat_path_parameters_on_dot_segments() {
        err("/public/..;/admin", PathError::AmbiguousDotSegment);
        err("/public/.;/admin", PathError::AmbiguousDotSegment);
        err("/public/..;x=1/admin", PathError::AmbiguousDotSegment);
        err("/public/.;x", PathError::AmbiguousDotSegment);
        err("/..;", PathError::AmbiguousDotSegment);
        err("/public/%2e%2e;/admin", PathError::AmbiguousDotSegment);
        err("/public/..%3b/admin", PathError::AmbiguousDotSegment);
        err("/public/.%3B/admin", PathError::AmbiguousDotSegment);
        // Not dot segments: a name that merely contains dots and ';'.
        ok("/public/a..;/admin", "/public/a..;/admin");
        err("/public/...;/admin", PathError::AmbiguousDotSegment);
        ok("/public;/admin", "/public;/admin");
    }

    /// Segments made only of dots and spaces, once their parameters are
    /// cut, are read as `.`, `..` or nothing by some upstream: refused in
    /// every spelling, at any depth and at the end.
    #[test]
    fn segments_of_only_dots_and_spaces_are_refused() {
        for segment in [
            "...",
            "....",
            ".%20",
            ". ",
            "..%20",
            "%20..",
            "%20",
            " ",
            "%20%20",
            ".;x",
            "..;",
            "...;x",
            ". ;x",
            "%20;",
            "%2e%2e%2e",
            "%2E%20",
            "..%3b",
            ".%3Bx",
        ] {
            for path in [
                format!("/{segment}"),
                format!("/{segment}/"),
                format!("/a/{segment}/b"),
                format!("/a/b/{segment}"),
            ] {
                err(&path, PathError::AmbiguousDotSegment);
            }
        }
        // Names with dots or spaces in them, and parameters alone, are kept.
        ok("/a./b%20/.c/%20d/;x/e;y", "/a./b%20/.c/%20d/;x/e;y");
        ok("/;jsessionid=1", "/;jsessionid=1");
    }

    fn view(canonical: &str) -> String {
        matching_view(canonical).into_owned()
    }

    #[test]
    fn matching_view_cuts_parameters_and_trailing_dots_and_spaces() {
        for (canonical, want) in [
            ("/admin;x/panel", "/admin/panel"),
            ("/admin;/panel", "/admin/panel"),
            ("/ADMIN;x/panel", "/ADMIN/panel"),
            ("/admin%3B/panel", "/admin/panel"),
            ("/admin%3Bx=1/panel", "/admin/panel"),
            ("/admin./panel", "/admin/panel"),
            ("/admin%20/panel", "/admin/panel"),
            ("/admin.%20.;x/panel", "/admin/panel"),
            ("/admin;x.", "/admin"),
            ("/admin;x/", "/admin/"),
            ("/admin/;x", "/admin/"),
            ("/;x/admin", "/admin"),
            ("/;jsessionid=1", "/"),
            ("/a/b/c.", "/a/b/c"),
            ("/a/b;x/c", "/a/b/c"),
            ("/a%20b/c", "/a%20b/c"),
            ("/.a/%20b", "/.a/%20b"),
        ] {
            assert_eq!(view(canonical), want, "{canonical}");
            assert_eq!(normalize(want).as_deref(), Ok(want), "{want} is canonical");
            assert_eq!(view(want), want, "idempotent: {want}");
        }
        // Nothing to cut: the path itself, not a copy.
        for plain in ["/", "/admin/panel", "/a.b/c", "/a%20b", "/.x"] {
            assert!(matches!(
                matching_view(plain),
                std::borrow::Cow::Borrowed(p) if p == plain
            ));
        }
    }

    #[test]
    fn length_limit() {
        let at_limit = format!("/{}", "a".repeat(MAX_LEN - 1));
        ok(&at_limit, &at_limit);
        let over = format!("/{}", "a".repeat(MAX_LEN));
        err(&over, PathError::TooLong);
        // Short input that grows past the limit once non-ASCII is encoded.
        let grows = format!("/{}", "é".repeat(MAX_LEN / 4));
        assert!(grows.len() <= MAX_LEN);
        err(&grows, PathError::TooLong);
        // Long input that shrinks below the limit is still refused.
        let shrinks = format!("/{}", "/".repeat(MAX_LEN));
        err(&shrinks, PathError::TooLong);
    }

    #[test]
    fn output_invariants_hold_for_a_mixed_corpus() {
        let inputs = [
            "/",
            "//",
            "/./",
            "/../",
            "/a/%2e/%2E%2e/b//c/./",
            "/x/%2561/%41/..//y",
            "/é/ü/../%C3%A9",
            "/a;b/.x./x./;c",
            "/%7e%2D%5F%2e",
            "/a%20b/%3b/%3B/%40/@",
            "/a/b/c/../../../../../../d/",
        ];
        for input in inputs {
            let out = normalize(input).unwrap();
            assert!(out.starts_with('/'), "{out}");
            assert!(!out.contains("//"), "{out}");
            assert!(!out.contains('\\'), "{out}");
            assert!(!out.to_ascii_uppercase().contains("%2F"), "{out}");
            for segment in out.split('/') {
                assert!(segment != "." && segment != "..", "{out}");
            }
            assert_eq!(normalize(&out), Ok(out.clone()), "idempotence of {input:?}");
        }
    }

    #[test]
    fn idempotent_over_generated_inputs() {
        // Every path of up to 4 pieces drawn from a small alphabet of tricky
        // pieces: whatever is accepted must normalise to itself again.
        let pieces = [
            "/", "a", ".", "..", "%2e", "%2E", "%25", "%61", ";", "%3B", "é", "%C3%A9", " ", "~",
        ];
        let mut count = 0;
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    for d in pieces {
                        let input = format!("/{a}{b}{c}{d}");
                        if let Ok(out) = normalize(&input) {
                            count += 1;
                            assert_eq!(normalize(&out), Ok(out.clone()), "input {input:?}");
                            assert!(!out.contains("//"), "{input:?} -> {out}");
                            for segment in out.split('/') {
                                assert!(segment != "." && segment != "..", "{out}");
                            }
                        }
                    }
                }
            }
        }
        assert!(count > 1000, "only {count} accepted");
    }
}
