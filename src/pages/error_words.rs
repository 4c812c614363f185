//! What an error page says for each status: its heading and the advice
//! below the message.
//!
//! Owns: [`error_words`], the plain words of [`super::Pages::error`].

/// The heading and the advice for an error status.
pub(super) fn error_words(status: u16) -> (&'static str, &'static str) {
    match status {
        403 => (
            "This form has expired",
            "Go back, reload the page and try again.",
        ),
        404 => (
            "There is nothing here",
            "Check the address, or start again from the start page.",
        ),
        405 => (
            "That cannot be done here",
            "Start again from the start page.",
        ),
        413 | 414 | 431 => (
            "That request is too large",
            "Start again from the start page. If it keeps happening, clear this site's cookies.",
        ),
        429 => ("Too many tries", "Wait a few minutes, then try again."),
        400..=499 => (
            "That request could not be handled",
            "Check the address, or start again from the start page.",
        ),
        502 => (
            "The application is not answering",
            "Reload this page in a minute. If it keeps happening, tell the people who run this site.",
        ),
        503 => (
            "Sign-in is unavailable for a moment",
            "Reload this page in a few seconds.",
        ),
        504 => (
            "The application is taking too long",
            "Reload this page in a minute. If it keeps happening, tell the people who run this site.",
        ),
        _ => (
            "Something went wrong",
            "Reload this page in a minute. If it keeps happening, tell the people who run this site.",
        ),
    }
}
