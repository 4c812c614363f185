//! The gateway's own HTML pages. Each function returns the page as a
//! string; nothing here decides anything. Every inserted value is escaped;
//! pages use only the gateway's stylesheet (no scripts, nothing external),
//! and forms work without JavaScript.

use std::fmt::Write as _;

use crate::config::UiConfig;

pub const STYLESHEET: &str = include_str!("assets/style.css");
pub const STYLESHEET_PATH: &str = "/.portcullis/style.css";

/// HTML-escapes text for element content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The gateway's pages for one configuration (branding from `[ui]`).
#[derive(Debug, Clone)]
pub struct Pages {
    ui: UiConfig,
}

impl Pages {
    pub fn new(ui: &UiConfig) -> Pages {
        Pages { ui: ui.clone() }
    }

    pub fn title(&self) -> &str {
        &self.ui.title
    }
}

fn layout(ui: &UiConfig, title: &str, body: &str) -> String {
    let mut page = String::with_capacity(2048 + body.len());
    let site = escape(&ui.title);
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta name=\"robots\" content=\"noindex, nofollow\">\n\
<title>{} · {site}</title>\n<link rel=\"stylesheet\" href=\"{STYLESHEET_PATH}\">\n</head>\n<body>\n<main>\n<div class=\"brand\">",
        escape(title)
    );
    if let Some(logo) = &ui.logo {
        let _ = write!(page, "<img src=\"{}\" alt=\"\">", escape(logo));
    }
    let _ = write!(page, "<span>{site}</span></div>\n{body}</main>\n");
    if let Some(footer) = &ui.footer {
        let _ = writeln!(page, "<footer>{}</footer>", escape(footer));
    }
    page.push_str("</body>\n</html>\n");
    page
}

fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(csrf)
    )
}

fn notice(message: Option<&str>) -> String {
    match message {
        Some(m) => format!("<p class=\"notice\" role=\"alert\">{}</p>\n", escape(m)),
        None => String::new(),
    }
}

fn login_page(ui: &UiConfig, rd: &str, csrf: &str, message: Option<&str>) -> String {
    let body = format!(
        "<h1>Sign in</h1>\n<p class=\"muted\">Enter your email address. We will send you a link and a code to sign in. No password needed.</p>\n{}\
<form method=\"post\" action=\"/.portcullis/login\">\n{}\n<input type=\"hidden\" name=\"rd\" value=\"{}\">\n\
<label for=\"email\">Email address</label>\n<input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\" required autofocus inputmode=\"email\" maxlength=\"254\">\n\
<button type=\"submit\">Email me a sign-in link</button>\n</form>\n",
        notice(message),
        csrf_field(csrf),
        escape(rd)
    );
    layout(ui, "Sign in", &body)
}

/// The answer to every sign-in request, whatever the address: it must not
/// say anything about the address.
fn check_email_page(ui: &UiConfig, csrf: &str, ttl_minutes: u64, message: Option<&str>) -> String {
    let body = format!(
        "<h1>Check your email</h1>\n<p>If this address may sign in, a message with a sign-in link and a code is on its way. The link and the code are valid for {ttl_minutes} minutes.</p>\n\
<p class=\"muted\">Open the link on this device, or type the code from the message here.</p>\n{}\
<form method=\"post\" action=\"/.portcullis/code\">\n{}\n\
<label for=\"code\">Code from the email</label>\n<input id=\"code\" class=\"code\" name=\"code\" type=\"text\" autocomplete=\"one-time-code\" required maxlength=\"12\" placeholder=\"XXXX-XXXX\" autocapitalize=\"characters\" spellcheck=\"false\">\n\
<button type=\"submit\">Sign in with the code</button>\n</form>\n<hr>\n<p class=\"muted\">No message after a few minutes? Check your spam folder, or <a href=\"/.portcullis/login\">ask again</a>.</p>\n",
        notice(message),
        csrf_field(csrf)
    );
    layout(ui, "Check your email", &body)
}

/// The link's landing page in the browser that asked: one button.
fn verify_confirm_page(ui: &UiConfig, token: &str, csrf: &str, masked_email: &str) -> String {
    let body = format!(
        "<h1>Sign in</h1>\n<p>Sign in to {} as <strong>{}</strong>?</p>\n\
<form method=\"post\" action=\"/.portcullis/verify\">\n{}\n<input type=\"hidden\" name=\"token\" value=\"{}\">\n\
<button type=\"submit\">Sign in</button>\n</form>\n<p class=\"muted\">If you did not ask to sign in, close this page.</p>\n",
        escape(&ui.title),
        escape(masked_email),
        csrf_field(csrf),
        escape(token)
    );
    layout(ui, "Sign in", &body)
}

/// The link's landing page anywhere else (another device, a mail scanner):
/// nothing happens; the code is shown to type where sign-in was asked.
fn verify_elsewhere_page(ui: &UiConfig, code: &str) -> String {
    let body = format!(
        "<h1>Finish signing in on the device you started on</h1>\n\
<p>This link was asked for in another browser. To sign in there, type this code on its \"Check your email\" page:</p>\n\
<p class=\"code-box\" aria-label=\"sign-in code\">{}</p>\n\
<p class=\"muted\">Nothing has changed on this device. If you did not ask to sign in, ignore this page.</p>\n\
<p class=\"muted\">Want to sign in here instead? <a href=\"/.portcullis/login\">Ask for a new link on this device</a>.</p>\n",
        escape(code)
    );
    layout(ui, "Type the code", &body)
}

/// Used, expired and unknown links all get this page.
fn link_invalid_page(ui: &UiConfig) -> String {
    let body = "<h1>This link can no longer be used</h1>\n\
<p>Sign-in links work once and only for a short time. This one has been used, has expired, or was replaced by a newer one.</p>\n\
<a class=\"button\" href=\"/.portcullis/login\">Ask for a new link</a>\n";
    layout(ui, "Link expired", body)
}

fn code_locked_page(ui: &UiConfig) -> String {
    let body = "<h1>Too many wrong codes</h1>\n\
<p>For your safety this sign-in attempt has ended. Ask for a new link to try again.</p>\n\
<a class=\"button\" href=\"/.portcullis/login\">Ask for a new link</a>\n";
    layout(ui, "Too many wrong codes", body)
}

fn forbidden_page(ui: &UiConfig, email: &str, csrf: &str) -> String {
    let body = format!(
        "<h1>You do not have access</h1>\n<p>You are signed in as <strong>{}</strong>, and this address may not open this page.</p>\n\
<p class=\"muted\">If you have another address that may, sign out and sign in with it.</p>\n\
<form method=\"post\" action=\"/.portcullis/logout\">\n{}\n<button type=\"submit\" class=\"secondary\">Sign out</button>\n</form>\n",
        escape(email),
        csrf_field(csrf)
    );
    layout(ui, "No access", &body)
}

fn logout_confirm_page(ui: &UiConfig, csrf: &str, rd: &str, email: Option<&str>) -> String {
    let who = match email {
        Some(e) => format!(
            "<p>You are signed in as <strong>{}</strong>.</p>\n",
            escape(e)
        ),
        None => String::new(),
    };
    let body = format!(
        "<h1>Sign out?</h1>\n{who}<form method=\"post\" action=\"/.portcullis/logout\">\n{}\n<input type=\"hidden\" name=\"rd\" value=\"{}\">\n\
<button type=\"submit\">Sign out</button>\n</form>\n",
        csrf_field(csrf),
        escape(rd)
    );
    layout(ui, "Sign out", &body)
}

fn signed_out_page(ui: &UiConfig) -> String {
    let body = "<h1>You are signed out</h1>\n<p>Your session has ended on this device.</p>\n\
<a class=\"button\" href=\"/.portcullis/login\">Sign in again</a>\n";
    layout(ui, "Signed out", body)
}

/// 4xx/5xx pages: the status, one plain sentence, and a way on.
fn error_page(ui: &UiConfig, status: u16, reason: &str, message: &str) -> String {
    let body = format!(
        "<h1>{} {}</h1>\n<p>{}</p>\n<p class=\"muted\"><a href=\"/\">Go to the start page</a></p>\n",
        status,
        escape(reason),
        escape(message)
    );
    layout(ui, reason, &body)
}

impl Pages {
    pub fn login(&self, rd: &str, csrf: &str, message: Option<&str>) -> String {
        login_page(&self.ui, rd, csrf, message)
    }

    pub fn check_email(&self, csrf: &str, ttl_minutes: u64, message: Option<&str>) -> String {
        check_email_page(&self.ui, csrf, ttl_minutes, message)
    }

    pub fn verify_confirm(&self, token: &str, csrf: &str, masked_email: &str) -> String {
        verify_confirm_page(&self.ui, token, csrf, masked_email)
    }

    pub fn verify_elsewhere(&self, code: &str) -> String {
        verify_elsewhere_page(&self.ui, code)
    }

    pub fn link_invalid(&self) -> String {
        link_invalid_page(&self.ui)
    }

    pub fn code_locked(&self) -> String {
        code_locked_page(&self.ui)
    }

    pub fn forbidden(&self, email: &str, csrf: &str) -> String {
        forbidden_page(&self.ui, email, csrf)
    }

    pub fn logout_confirm(&self, csrf: &str, rd: &str, email: Option<&str>) -> String {
        logout_confirm_page(&self.ui, csrf, rd, email)
    }

    pub fn signed_out(&self) -> String {
        signed_out_page(&self.ui)
    }

    pub fn error(&self, status: u16, reason: &str, message: &str) -> String {
        error_page(&self.ui, status, reason, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ui() -> UiConfig {
        UiConfig {
            title: "Acme <Tools>".into(),
            accent: "#123456".into(),
            logo: None,
            footer: Some("\"footer\"".into()),
        }
    }

    #[test]
    fn everything_inserted_is_escaped() {
        let page = Pages::new(&ui()).login("/x\"><script>", "c\"s", Some("<b>"));
        assert!(!page.contains("<script>"));
        assert!(!page.contains("<b>"));
        assert!(page.contains("Acme &lt;Tools&gt;"));
        assert!(page.contains("&quot;footer&quot;"));
        assert!(page.contains("value=\"/x&quot;&gt;&lt;script&gt;\""));
    }

    #[test]
    fn pages_have_no_scripts_or_external_resources() {
        let u = ui();
        for page in [
            Pages::new(&u).login("/", "c", None),
            Pages::new(&u).check_email("c", 15, None),
            Pages::new(&u).verify_confirm("t", "c", "a***@b.c"),
            Pages::new(&u).verify_elsewhere("ABCD-EFGH"),
            Pages::new(&u).link_invalid(),
            Pages::new(&u).code_locked(),
            Pages::new(&u).forbidden("a@b.c", "c"),
            Pages::new(&u).logout_confirm("c", "/", None),
            Pages::new(&u).signed_out(),
            Pages::new(&u).error(502, "Bad Gateway", "x"),
        ] {
            assert!(!page.contains("<script"), "{page}");
            assert!(
                !page.contains("http://") && !page.contains("https://"),
                "{page}"
            );
            assert!(page.contains(STYLESHEET_PATH));
        }
    }
}
