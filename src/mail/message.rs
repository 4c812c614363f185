//! The sign-in email itself: subject, plain-text part and HTML part.
//!
//! Owns: turning a [`LoginMail`] into a lettre [`Message`] (RFC 5322,
//! `multipart/alternative` with a text and an HTML part), HTML escaping, and
//! the human wording ("valid for 15 minutes", the code as `XXXX-XXXX`).
//!
//! Does not own: sending, queueing, retrying (see `worker` and `transport`),
//! nor validating the recipient address (the caller hands over an address
//! that `address` already accepted; we still parse it as a lettre `Mailbox`
//! and refuse it if that fails).
//!
//! # Threat model
//!
//! - Header injection: the only value from a user that reaches a header is
//!   the `To` address, and it goes in as a parsed `Mailbox`, never as text.
//!   The subject holds the configured site name, with control characters
//!   replaced so a bad config cannot add header lines either.
//! - HTML injection: everything inserted into the HTML part (site name, link,
//!   code, duration) is escaped; the link must be an absolute `http`/`https`
//!   URL so a `javascript:` link can never be rendered as a button.
//! - Tracking / remote content: the HTML uses inline styles only and loads
//!   nothing (no images, fonts or style sheets).
//! - Secrets: this module holds the link and the code in memory only; it never
//!   logs. [`MailError`] values built here never contain the link, the code or
//!   the full recipient address.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::Message;
use rand::RngExt;

use super::{mask_email, LoginMail, MailError};
use crate::theme::escape;

/// The three texts a sign-in email is made of (before MIME encoding).
pub(crate) struct Rendered {
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) html: String,
}

/// Builds the sign-in email for `mail`, sent from `from`
/// (e.g. `"Portcullis <login@example.com>"`).
///
/// Errors: [`MailError::BadFrom`] if `from` is not a mailbox,
/// [`MailError::BadRecipient`] if `mail.to` is not one (masked in the error),
/// [`MailError::BadLink`] if the link is not an absolute http(s) URL,
/// [`MailError::Build`] if lettre refuses the message.
pub fn render(mail: &LoginMail, from: &str) -> Result<Message, MailError> {
    let from = parse_from(from)?;
    render_with(mail, &from).map(|(message, _)| message)
}

/// Parses the configured sender.
pub(crate) fn parse_from(from: &str) -> Result<Mailbox, MailError> {
    from.parse::<Mailbox>()
        .map_err(|_| MailError::BadFrom(from.to_owned()))
}

/// Like [`render`] with an already parsed sender; also returns the readable
/// texts (the console transport prints the plain text as is).
pub(crate) fn render_with(
    mail: &LoginMail,
    from: &Mailbox,
) -> Result<(Message, Rendered), MailError> {
    let to = mail
        .to
        .parse::<Mailbox>()
        .map_err(|_| MailError::BadRecipient(mask_email(&mail.to)))?;
    check_link(&mail.link)?;
    let rendered = texts(mail);
    let message_id = format!(
        "<{:016x}{:016x}@{}>",
        rand::rng().random::<u64>(),
        rand::rng().random::<u64>(),
        from.email.domain()
    );
    let message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(rendered.subject.clone())
        .message_id(Some(message_id))
        .multipart(MultiPart::alternative_plain_html(
            rendered.text.clone(),
            rendered.html.clone(),
        ))
        .map_err(|e| MailError::Build(e.to_string()))?;
    Ok((message, rendered))
}

/// The link must be an absolute http(s) URL; anything else (notably
/// `javascript:`) is refused. The error never repeats the link.
fn check_link(link: &str) -> Result<(), MailError> {
    match url::Url::parse(link) {
        Ok(u) if u.scheme() == "https" || u.scheme() == "http" => Ok(()),
        Ok(_) => Err(MailError::BadLink("scheme is not http or https")),
        Err(_) => Err(MailError::BadLink("not an absolute URL")),
    }
}

/// Colours of the HTML part (the pages' default palette; every text
/// colour reaches WCAG AA on its background).
const ACCENT: &str = "#1f5fbf";
const INK: &str = "#1b1f24";
const MUTED: &str = "#525b66";
const LINE: &str = "#d8dee4";
const PAGE: &str = "#f3f5f8";
const FONT: &str = "-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif";
const MONO: &str = "'SFMono-Regular',Menlo,Consolas,'Liberation Mono',monospace";

/// Both parts say the same things in the same order: what this is, the
/// link (as a button and as text), the code, how long both last, and what
/// to do if the mail was not expected.
fn texts(mail: &LoginMail) -> Rendered {
    let site = one_line(&mail.site_name);
    let code = format_code(&mail.code);
    let valid = format_duration(mail.valid_for);
    let subject = format!("Your sign-in link for {site}");

    let text = format!(
        "Sign in to {site}\n\
         \n\
         Open this link to sign in:\n\
         \n\
         {link}\n\
         \n\
         Or type this code on the sign-in page:\n\
         \n\
         {code}\n\
         \n\
         The link and the code are valid for {valid} and can be used once.\n\
         \n\
         If you did not ask for this, ignore this email. Nobody can sign in \
         with your address without the link or the code.\n",
        link = mail.link,
    );

    let site_h = escape(&site);
    let link_h = escape(&mail.link);
    let code_h = escape(&code);
    let valid_h = escape(&valid);
    let html = format!(
        "<!DOCTYPE html>\n\
<html lang=\"en\">\n\
<head>\n\
<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta name=\"color-scheme\" content=\"light\">\n\
<title>Sign in to {site_h}</title>\n\
</head>\n\
<body style=\"margin:0;padding:0;background-color:{PAGE};\">\n\
<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" \
style=\"background-color:{PAGE};\"><tr><td align=\"center\" style=\"padding:32px 12px;\">\n\
<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" \
style=\"max-width:480px;font-family:{FONT};font-size:16px;line-height:1.5;color:{INK};\">\n\
<tr><td style=\"padding:0 4px 16px 4px;font-size:18px;font-weight:bold;text-align:center;\">{site_h}</td></tr>\n\
<tr><td style=\"background-color:#ffffff;border:1px solid {LINE};border-radius:12px;padding:32px 28px;\">\n\
<h1 style=\"margin:0 0 12px 0;font-size:22px;line-height:1.3;\">Sign in to {site_h}</h1>\n\
<p style=\"margin:0 0 24px 0;\">Open this link to sign in:</p>\n\
<p style=\"margin:0 0 24px 0;text-align:center;\">\
<a href=\"{link_h}\" style=\"display:inline-block;padding:12px 28px;background-color:{ACCENT};\
color:#ffffff;text-decoration:none;border-radius:8px;font-weight:bold;\">Sign in</a></p>\n\
<p style=\"margin:0 0 4px 0;font-size:14px;color:{MUTED};\">Or copy this link into your browser:</p>\n\
<p style=\"margin:0 0 24px 0;font-size:14px;word-break:break-all;\">\
<a href=\"{link_h}\" style=\"color:{ACCENT};\">{link_h}</a></p>\n\
<p style=\"margin:0 0 8px 0;\">Or type this code on the sign-in page:</p>\n\
<p style=\"margin:0 0 24px 0;padding:12px;text-align:center;font-family:{MONO};font-size:28px;\
font-weight:bold;letter-spacing:3px;background-color:{PAGE};border:1px dashed {LINE};border-radius:8px;\">{code_h}</p>\n\
<p style=\"margin:0 0 16px 0;font-size:14px;color:{MUTED};\">The link and the code are valid for \
{valid_h} and can be used once.</p>\n\
<p style=\"margin:0;font-size:14px;color:{MUTED};\">If you did not ask for this, ignore this email. \
Nobody can sign in with your address without the link or the code.</p>\n\
</td></tr>\n\
</table>\n\
</td></tr></table>\n\
</body>\n\
</html>\n"
    );

    Rendered {
        subject,
        text,
        html,
    }
}

/// Replaces control characters (CR, LF, TAB, …) with spaces so the value can
/// only ever make one header line or one line of text.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Shows the code in groups of four: `ABCD1234` and `ABCD-1234` both become
/// `ABCD-1234`. Spaces and dashes in the input are dropped before grouping.
pub(crate) fn format_code(code: &str) -> String {
    let chars: Vec<char> = code
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .collect();
    chars
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// "15 minutes", "1 minute", "2 hours", "45 seconds". Rounds down to whole
/// minutes below two hours, to whole minutes again if not a whole number of
/// hours.
pub(crate) fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs < 60 {
        (secs, "second")
    } else if secs >= 7200 && secs % 3600 == 0 {
        (secs / 3600, "hour")
    } else {
        (secs / 60, "minute")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_grouped_in_fours() {
        assert_eq!(format_code("ABCD1234"), "ABCD-1234");
        assert_eq!(format_code("abcd-1234"), "abcd-1234");
        assert_eq!(format_code(" AB CD12 34 "), "ABCD-1234");
        assert_eq!(format_code("ABCDEF"), "ABCD-EF");
        assert_eq!(format_code(""), "");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_secs(900)), "15 minutes");
        assert_eq!(format_duration(Duration::from_secs(60)), "1 minute");
        assert_eq!(format_duration(Duration::from_secs(90)), "1 minute");
        assert_eq!(format_duration(Duration::from_secs(45)), "45 seconds");
        assert_eq!(format_duration(Duration::from_secs(1)), "1 second");
        assert_eq!(format_duration(Duration::from_secs(3600)), "60 minutes");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2 hours");
        assert_eq!(format_duration(Duration::from_secs(7260)), "121 minutes");
    }

    #[test]
    fn escapes_all_five() {
        assert_eq!(
            escape(r#"<a href="x" title='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn both_parts_say_the_same_things() {
        let mail = LoginMail {
            to: "a@example.com".into(),
            link: "https://login.example.com/.portcullis/verify?token=abc&x=1".into(),
            code: "AB12QX9M".into(),
            valid_for: Duration::from_secs(900),
            deadline: tokio::time::Instant::now(),
            site_name: "Acme Wiki".into(),
        };
        let r = texts(&mail);
        for (part, link) in [
            (&r.text, mail.link.clone()),
            (&r.html, mail.link.replace('&', "&amp;")),
        ] {
            for expected in [
                "Sign in to Acme Wiki",
                link.as_str(),
                "Or type this code on the sign-in page:",
                "AB12-QX9M",
                "valid for 15 minutes and can be used once.",
                "If you did not ask for this, ignore this email.",
            ] {
                assert!(part.contains(expected), "{expected:?} in:\n{part}");
            }
        }
        assert!(r.html.contains(&format!(
            "<a href=\"{}\" style=\"display:inline-block",
            mail.link.replace('&', "&amp;")
        )));
    }

    #[test]
    fn the_html_part_is_readable() {
        use crate::pages::{contrast, Rgb};
        let c = |s: &str| Rgb::parse(s).unwrap();
        let white = c("#ffffff");
        assert!(contrast(c(ACCENT), white) >= 4.5, "button and link");
        assert!(contrast(c(MUTED), white) >= 4.5, "small print");
        assert!(contrast(c(INK), c(PAGE)) >= 4.5, "site name and code box");
    }

    #[test]
    fn control_characters_cannot_break_lines() {
        assert_eq!(
            one_line("Acme\r\nBcc: x@evil.test"),
            "Acme  Bcc: x@evil.test"
        );
    }
}
