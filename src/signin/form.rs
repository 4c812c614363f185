//! What a sign-in request says: its form body (`read_form`, with the type,
//! size and time limits) and its query parameters. A field or parameter
//! sent twice never counts as one value.

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::Request;
use http_body_util::{BodyExt, Limited};

use crate::body::RequestBody;
use crate::error::Error;
use crate::state::Ctx;

/// A parsed `application/x-www-form-urlencoded` body.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(bytes: &[u8]) -> Form {
        Form(
            url::form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The one value of `name`; a field sent twice is an error.
    pub fn one(&self, name: &str) -> Result<Option<&str>, Error> {
        let mut values = self.0.iter().filter(|(k, _)| k == name);
        let first = values.next().map(|(_, v)| v.as_str());
        if values.next().is_some() {
            return Err(Error::BadRequest("A form field was sent more than once."));
        }
        Ok(first)
    }

    /// `email[]`, `email[0]` and the like: an attempt to send a list.
    pub(super) fn has_other_email_fields(&self) -> bool {
        self.0
            .iter()
            .any(|(k, _)| k != "email" && k.starts_with("email"))
    }
}

/// The one value of a query parameter; none when it is sent twice.
pub(super) fn query_param(req: &Request<RequestBody>, name: &str) -> Option<String> {
    let query = req.uri().query()?;
    let mut found = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k == name {
            if found.is_some() {
                return None;
            }
            found = Some(v.into_owned());
        }
    }
    found
}

/// The request's headers and its form body, read within the body size
/// limit and the header read timeout.
pub(super) async fn read_form(
    cx: &Ctx<'_>,
    req: Request<RequestBody>,
) -> Result<(HeaderMap, Form), Error> {
    let limit = cx.live.config.server.limits.max_body_bytes;
    let (parts, incoming) = req.into_parts();
    let form_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(Error::BadRequest(
            "Send the form as application/x-www-form-urlencoded.",
        ));
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Error::BodyTooLarge);
    }
    let wait = cx.live.config.server.limits.header_read_timeout;
    let collected = tokio::time::timeout(wait, Limited::new(incoming, limit).collect())
        .await
        .map_err(|_| Error::RequestTimeout)?;
    let bytes: Bytes = match collected {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(Error::BodyTooLarge),
        Err(_) => return Err(Error::BadRequest("The request body could not be read.")),
    };
    Ok((parts.headers, Form::parse(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_once() {
        let f = Form::parse(b"email=a%40b.c&rd=%2Fx&csrf=t");
        assert_eq!(f.one("email").unwrap(), Some("a@b.c"));
        assert_eq!(f.one("rd").unwrap(), Some("/x"));
        assert_eq!(f.one("nope").unwrap(), None);
        let twice = Form::parse(b"email=a%40b.c&email=c%40d.e");
        assert!(matches!(twice.one("email"), Err(Error::BadRequest(_))));
        assert!(Form::parse(b"email%5B%5D=a%40b.c&email=x%40y.z").has_other_email_fields());
    }
}
