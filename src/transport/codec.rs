//! The HTTP/1.1 wire pieces both directions share: a parsed head's headers
//! as [`Span`]s of the head (so header values share the head's bytes, no
//! copies), the one way such spans become a [`HeaderMap`], and the `Date`
//! value of answers the gateway writes itself.
//!
//! Both parsers are httparse (the one hyper uses): the own server loop
//! ([`crate::transport::downstream::h1`]) and the raw upstream client
//! ([`crate::transport::upstream::raw`]).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};

/// Where one header's name and value are in a head: start and end of each.
pub type Span = (u32, u32, u32, u32);

/// Where `part` (a slice of `head`, as httparse hands them out) starts and
/// ends in `head`. Heads are at most tens of kilobytes: the offsets fit.
pub fn offsets(head: &[u8], part: &[u8]) -> (u32, u32) {
    let start = (part.as_ptr() as usize).saturating_sub(head.as_ptr() as usize);
    (start as u32, (start + part.len()) as u32)
}

/// The [`Span`] of one parsed header of `head`.
pub fn span(head: &[u8], name: &[u8], value: &[u8]) -> Span {
    let (ns, ne) = offsets(head, name);
    let (vs, ve) = offsets(head, value);
    (ns, ne, vs, ve)
}

/// The headers at `spans` of `head`: names parsed, values slices of
/// `head` (no copies). `None` when `http` refuses a name or a value that
/// httparse took, or a span lies outside `head`.
pub fn map_from_spans(head: &Bytes, spans: &[Span]) -> Option<HeaderMap> {
    let mut headers = HeaderMap::with_capacity(spans.len());
    for &(ns, ne, vs, ve) in spans {
        let raw = head.get(ns as usize..ne as usize)?;
        let name = match common_name(raw) {
            Some(name) => name,
            None => HeaderName::from_bytes(raw).ok()?,
        };
        if vs > ve || ve as usize > head.len() {
            return None;
        }
        let value = HeaderValue::from_maybe_shared(head.slice(vs as usize..ve as usize)).ok()?;
        headers.append(name, value);
    }
    Some(headers)
}

/// The names browsers, nginx and most applications send, as they spell
/// them: one `match` on the bytes, where `HeaderName::from_bytes`
/// lowercases and looks up every name. Any other spelling goes there.
fn common_name(raw: &[u8]) -> Option<HeaderName> {
    use http::header::*;
    Some(match raw {
        b"Host" | b"host" => HOST,
        b"Cookie" | b"cookie" => COOKIE,
        b"Accept" | b"accept" => ACCEPT,
        b"User-Agent" | b"user-agent" => USER_AGENT,
        b"Accept-Encoding" | b"accept-encoding" => ACCEPT_ENCODING,
        b"Accept-Language" | b"accept-language" => ACCEPT_LANGUAGE,
        b"Referer" | b"referer" => REFERER,
        b"Connection" | b"connection" => CONNECTION,
        b"Cache-Control" | b"cache-control" => CACHE_CONTROL,
        b"Upgrade-Insecure-Requests" | b"upgrade-insecure-requests" => UPGRADE_INSECURE_REQUESTS,
        b"If-None-Match" | b"if-none-match" => IF_NONE_MATCH,
        b"If-Modified-Since" | b"if-modified-since" => IF_MODIFIED_SINCE,
        b"Origin" | b"origin" => ORIGIN,
        b"Authorization" | b"authorization" => AUTHORIZATION,
        b"Date" | b"date" => DATE,
        b"Server" | b"server" => SERVER,
        b"Content-Type" | b"content-type" => CONTENT_TYPE,
        b"Content-Length" | b"content-length" => CONTENT_LENGTH,
        b"Content-Encoding" | b"content-encoding" => CONTENT_ENCODING,
        b"Set-Cookie" | b"set-cookie" => SET_COOKIE,
        b"Location" | b"location" => LOCATION,
        b"Last-Modified" | b"last-modified" => LAST_MODIFIED,
        b"ETag" | b"etag" => ETAG,
        b"Vary" | b"vary" => VARY,
        b"Expires" | b"expires" => EXPIRES,
        b"Transfer-Encoding" | b"transfer-encoding" => TRANSFER_ENCODING,
        _ => return None,
    })
}

/// The `Date` value, formatted once a second per connection.
#[derive(Default)]
pub struct DateCache {
    second: u64,
    text: [u8; 29],
}

impl DateCache {
    pub fn now(&mut self) -> &[u8] {
        let now = SystemTime::now();
        let second = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if second != self.second || self.text[0] == 0 {
            let text = httpdate::fmt_http_date(now);
            if text.len() == self.text.len() {
                self.text.copy_from_slice(text.as_bytes());
                self.second = second;
            }
        }
        &self.text
    }
}

/// Whether a connection is open and silent: no byte readable and no end
/// of stream. For an idle upstream connection: A byte that arrives on a connection
/// between answers is the rest of an answer that was longer than its
/// framing said (a body on a `HEAD` answer or on a 204, a second answer):
/// sent with the next request, it would be read as that request's answer.
///
/// One `recv(MSG_PEEK)` on the socket itself: tokio's `try_read` answers
/// from the readiness it last saw, and on a busy worker that can be older
/// than the bytes that have arrived since.
pub fn quiet<S: std::os::fd::AsFd>(stream: &S) -> bool {
    let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    matches!(
        socket2::SockRef::from(stream).peek(&mut probe),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_names_are_what_http_makes_of_them() {
        let names = [
            "host",
            "cookie",
            "accept",
            "user-agent",
            "accept-encoding",
            "accept-language",
            "referer",
            "connection",
            "cache-control",
            "upgrade-insecure-requests",
            "if-none-match",
            "if-modified-since",
            "origin",
            "authorization",
            "date",
            "server",
            "content-type",
            "content-length",
            "content-encoding",
            "set-cookie",
            "location",
            "last-modified",
            "etag",
            "vary",
            "expires",
            "transfer-encoding",
        ];
        let mut known = 0;
        for name in names {
            let canonical = name
                .split('-')
                .map(|w| {
                    let mut w = w.to_string();
                    if let Some(first) = w.get_mut(..1) {
                        first.make_ascii_uppercase();
                    }
                    w
                })
                .collect::<Vec<_>>()
                .join("-");
            let canonical = if name == "etag" {
                "ETag".to_string()
            } else {
                canonical
            };
            for spelling in [name.to_string(), canonical] {
                let fast = common_name(spelling.as_bytes()).unwrap_or_else(|| panic!("{spelling}"));
                assert_eq!(fast, HeaderName::from_bytes(spelling.as_bytes()).unwrap());
                known += 1;
            }
        }
        assert_eq!(known, 2 * names.len());
        for other in ["HOST", "x-custom", "Hosts", ""] {
            assert_eq!(common_name(other.as_bytes()), None, "{other}");
        }
    }
}
