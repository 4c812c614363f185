//! The gateway's own HTML pages and their stylesheet.
//!
//! Owns: filling the built-in templates (compiled in from
//! `assets/templates/`) or the operator's overrides (`[ui] templates`) for
//! each page, the stylesheet served at [`STYLESHEET_PATH`], and HTML
//! escaping. Two parts live in their own files: the template language and
//! the list of templates ([`template`]), and the colours derived from
//! `[ui] accent`, with their WCAG contrast ([`palette`]).
//!
//! Beside this file in `pages/`: how a moment reads ([`when`]) and how a
//! length of time reads (`duration`), what an error page says for each
//! status (`error_words`), the mark and the favicon (`mark`), and the
//! tests of the rendered pages (`tests`).
//!
//! Does not own: which page is shown when, status codes and cookies
//! (`login`, `app`), response headers such as the CSP (`body`), reading the
//! override folder (config conversion reads it and calls
//! [`check_override`], so `portcullis check` reports a bad template).
//!
//! The pages are documented for operators in `docs/pages.md`.
//!
//! # Threat model
//!
//! - HTML injection: addresses, `rd`, codes, tokens, the title, the footer
//!   and the logo URL are untrusted text and always escaped (for element
//!   content and quoted attributes alike). Only fragments built in this
//!   module are passed unescaped ([`FRAGMENTS`]); a template cannot choose.
//! - Scripts and remote content: the built-in pages have no scripts, no
//!   inline styles and no external resources (the CSP forbids all three);
//!   forms work without JavaScript. An override is the operator's own
//!   HTML and is bound by the same CSP.
//! - A broken override must not take pages down: it is rejected at load
//!   (config error naming `ui.templates`), and should one ever fail to
//!   parse here, the built-in template is used instead. Nothing panics.

use std::time::Duration;

use crate::config::UiConfig;

mod duration;
mod error_words;
mod mark;
pub mod when;

pub use crate::theme::palette::{contrast, Palette, Rgb};
pub use crate::theme::template::{
    check_override, override_files, Spec, TemplateError, FRAGMENTS, GLOBAL, SPECS,
};
use crate::theme::template::{spec, Piece, Template, Value};
pub use crate::theme::{escape, DEFAULT_ACCENT, STYLESHEET_FILE};
use duration::{minutes, span};
use error_words::error_words;
use mark::{icon, mark};

/// The built-in stylesheet, with the default palette (`:root`) first.
pub const STYLESHEET: &str = include_str!("assets/style.css");
pub const STYLESHEET_PATH: &str = "/.portcullis/style.css";
/// The product's own name, shown small in the footer.
pub const PRODUCT: &str = "Portcullis";

// === the pages ===

/// The parsed templates, one field per entry of [`SPECS`].
#[derive(Debug, Clone)]
struct Set {
    layout: Template,
    login: Template,
    login_providers: Template,
    check_email: Template,
    verify_confirm: Template,
    verify_reveal: Template,
    verify_elsewhere: Template,
    link_invalid: Template,
    code_locked: Template,
    forbidden: Template,
    logout_confirm: Template,
    signed_out: Template,
    error: Template,
}

/// The gateway's pages for one configuration (branding from `[ui]`).
#[derive(Debug, Clone)]
pub struct Pages {
    title: String,
    logo: String,
    footer: String,
    icon: String,
    stylesheet: String,
    /// `[[provider]]` buttons: name and label, in the file's order.
    providers: Vec<(String, String)>,
    /// `[login] email`: whether the email form is shown.
    email: bool,
    t: Set,
}

impl Pages {
    pub fn new(ui: &UiConfig) -> Pages {
        let pick = |file: &str| -> Template {
            let builtin = || {
                let text = spec(file).map(|s| s.builtin).unwrap_or("");
                Template::parse(text).unwrap_or_else(|_| Template(vec![Piece::Text(text.into())]))
            };
            match ui.templates.get(file) {
                Some(text) if check_override(file, text).is_ok() => {
                    Template::parse(text).unwrap_or_else(|_| builtin())
                }
                _ => builtin(),
            }
        };
        let palette = Palette::for_accent(&ui.accent);
        let base = ui
            .templates
            .get(STYLESHEET_FILE)
            .map(String::as_str)
            .unwrap_or(STYLESHEET);
        let logo = match &ui.logo {
            Some(src) => format!("<img class=\"logo\" src=\"{}\" alt=\"\">", escape(src)),
            None => mark(),
        };
        Pages {
            title: ui.title.clone(),
            logo,
            footer: match &ui.footer {
                Some(f) => format!("<p>{}</p>\n", escape(f)),
                None => String::new(),
            },
            icon: icon(&palette),
            stylesheet: format!("{base}\n/* [ui] accent */\n{}", palette.css()),
            providers: Vec::new(),
            email: true,
            t: Set {
                layout: pick("layout.html"),
                login: pick("login.html"),
                login_providers: pick("login_providers.html"),
                check_email: pick("check_email.html"),
                verify_confirm: pick("verify_confirm.html"),
                verify_reveal: pick("verify_reveal.html"),
                verify_elsewhere: pick("verify_elsewhere.html"),
                link_invalid: pick("link_invalid.html"),
                code_locked: pick("code_locked.html"),
                forbidden: pick("forbidden.html"),
                logout_confirm: pick("logout_confirm.html"),
                signed_out: pick("signed_out.html"),
                error: pick("error.html"),
            },
        }
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    /// The stylesheet to serve at [`STYLESHEET_PATH`]: the built-in one (or
    /// the override) followed by the palette for `[ui] accent`.
    pub fn stylesheet(&self) -> String {
        self.stylesheet.clone()
    }

    /// Renders `page` with `values` inside the layout.
    fn page(&self, page: &Template, page_title: &str, values: &[(&str, Value<'_>)]) -> String {
        let globals = [
            ("site", Value::Text(&self.title)),
            ("product", Value::Text(PRODUCT)),
        ];
        let mut all: Vec<(&str, Value<'_>)> = values.to_vec();
        all.extend(globals);
        let content = page.render(&all);
        let mut layout: Vec<(&str, Value<'_>)> = vec![
            ("content", Value::Html(&content)),
            ("page_title", Value::Text(page_title)),
            ("stylesheet", Value::Text(STYLESHEET_PATH)),
            ("icon", Value::Text(&self.icon)),
            ("logo", Value::Html(&self.logo)),
            ("footer", Value::Html(&self.footer)),
        ];
        layout.extend(globals);
        self.t.layout.render(&layout)
    }

    /// The provider buttons (name, label) and whether the email form is
    /// shown on the sign-in page.
    pub fn with_providers(mut self, providers: Vec<(String, String)>, email: bool) -> Pages {
        self.providers = providers;
        self.email = email;
        self
    }

    /// One link per provider, styled as a button (a link, not a form: the
    /// CSP's `form-action 'self'` would stop a form's redirect to the
    /// provider), each carrying `rd`; with the email form below, a line
    /// saying "or".
    fn provider_buttons(&self, rd: &str) -> String {
        if self.providers.is_empty() {
            return String::new();
        }
        let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        let mut html = String::from("<div class=\"providers\">\n");
        for (name, label) in &self.providers {
            let href = format!(
                "/.portcullis/oidc/start?provider={}&rd={}",
                enc(name),
                enc(rd)
            );
            // Beside the email form the buttons are secondary; alone, the
            // page's main action.
            let class = if self.email {
                "button secondary provider"
            } else {
                "button provider"
            };
            html.push_str(&format!(
                "<a class=\"{class}\" href=\"{}\">{}</a>\n",
                escape(&href),
                escape(label)
            ));
        }
        html.push_str("</div>\n");
        if self.email {
            html.push_str("<p class=\"or\">or with your email</p>\n");
        }
        html
    }

    pub fn login(&self, rd: &str, csrf: &str, message: Option<&str>) -> String {
        let notice = notice(message);
        let providers = self.provider_buttons(rd);
        if !self.email {
            return self.page(
                &self.t.login_providers,
                "Sign in",
                &[
                    ("providers", Value::Html(&providers)),
                    ("notice", Value::Html(&notice)),
                ],
            );
        }
        self.page(
            &self.t.login,
            "Sign in",
            &[
                ("rd", Value::Text(rd)),
                ("csrf", Value::Text(csrf)),
                ("notice", Value::Html(&notice)),
                ("providers", Value::Html(&providers)),
            ],
        )
    }

    /// The answer to every sign-in request, whatever the address: it must
    /// not say anything about the address. It repeats the address typed
    /// (which the person knows), and says how long a link lives and when a
    /// new one can be sent.
    pub fn check_email(&self, page: &CheckEmail<'_>) -> String {
        let notice = notice(page.notice);
        let valid_for = minutes(page.link_ttl.as_secs().div_ceil(60));
        let address = match page.address {
            Some(a) => format!("<strong class=\"address\">{}</strong>", escape(a)),
            None => "this address".to_string(),
        };
        let resend_wait = if page.resend_delay.is_zero() {
            "at once".to_string()
        } else {
            format!("{} after the last", span(page.resend_delay))
        };
        self.page(
            &self.t.check_email,
            "Check your email",
            &[
                ("csrf", Value::Text(page.csrf)),
                ("address", Value::Html(&address)),
                ("valid_for", Value::Text(&valid_for)),
                ("resend_wait", Value::Text(&resend_wait)),
                ("notice", Value::Html(&notice)),
            ],
        )
    }

    /// The link's landing page in the browser that asked: one button.
    pub fn verify_confirm(&self, token: &str, csrf: &str, masked_email: &str) -> String {
        self.page(
            &self.t.verify_confirm,
            "Finish signing in",
            &[
                ("token", Value::Text(token)),
                ("csrf", Value::Text(csrf)),
                ("email", Value::Text(masked_email)),
            ],
        )
    }

    /// The link's landing page anywhere else (another device, a mail
    /// scanner): nothing happens, and nothing on it completes a sign-in;
    /// one button (a POST) shows the code.
    pub fn verify_reveal(&self, token: &str, csrf: &str) -> String {
        self.page(
            &self.t.verify_reveal,
            "Show the sign-in code",
            &[("token", Value::Text(token)), ("csrf", Value::Text(csrf))],
        )
    }

    /// After that button: the code to type in the browser that asked,
    /// with where and when the sign-in was asked for, so that a person
    /// can tell it was not them.
    pub fn verify_elsewhere(&self, code: &str, asked: &Asked<'_>) -> String {
        fn or_unknown(s: &str) -> &str {
            if s.is_empty() {
                "unknown"
            } else {
                s
            }
        }
        let ago = when::ago(asked.now.saturating_sub(asked.at));
        let at = when::utc(asked.at);
        self.page(
            &self.t.verify_elsewhere,
            "Type the code",
            &[
                ("code", Value::Text(code)),
                ("asked_browser", Value::Text(or_unknown(asked.browser))),
                ("asked_ip", Value::Text(or_unknown(asked.ip))),
                ("asked_ago", Value::Text(&ago)),
                ("asked_at", Value::Text(&at)),
            ],
        )
    }

    /// Used, expired and unknown links all get this page.
    pub fn link_invalid(&self) -> String {
        self.page(&self.t.link_invalid, "Link no longer valid", &[])
    }

    pub fn code_locked(&self) -> String {
        self.page(&self.t.code_locked, "Too many wrong codes", &[])
    }

    pub fn forbidden(&self, email: &str, csrf: &str) -> String {
        self.page(
            &self.t.forbidden,
            "No access",
            &[("email", Value::Text(email)), ("csrf", Value::Text(csrf))],
        )
    }

    pub fn logout_confirm(&self, csrf: &str, rd: &str, email: Option<&str>) -> String {
        let who = match email {
            Some(e) => format!(
                "<p>You are signed in as <strong>{}</strong>.</p>\n",
                escape(e)
            ),
            None => String::new(),
        };
        self.page(
            &self.t.logout_confirm,
            "Sign out",
            &[
                ("csrf", Value::Text(csrf)),
                ("rd", Value::Text(rd)),
                ("who", Value::Html(&who)),
            ],
        )
    }

    pub fn signed_out(&self) -> String {
        self.page(&self.t.signed_out, "Signed out", &[])
    }

    /// 4xx/5xx pages: a plain heading, the message, what to do, and the
    /// status for whoever gets asked for help.
    pub fn error(&self, status: u16, reason: &str, message: &str) -> String {
        let (heading, advice) = error_words(status);
        let status_text = status.to_string();
        self.page(
            &self.t.error,
            heading,
            &[
                ("heading", Value::Text(heading)),
                ("message", Value::Text(message)),
                ("advice", Value::Text(advice)),
                ("status", Value::Text(&status_text)),
                ("reason", Value::Text(reason)),
            ],
        )
    }
}

/// What [`Pages::check_email`] says.
pub struct CheckEmail<'a> {
    pub csrf: &'a str,
    /// The address asked for (normalised), on the answer to the request;
    /// `None` after a wrong code (the page then says "this address").
    pub address: Option<&'a str>,
    /// `[login] link_ttl`.
    pub link_ttl: Duration,
    /// `[login] resend_delay`.
    pub resend_delay: Duration,
    /// A notice above the code form (after a wrong code).
    pub notice: Option<&'a str>,
}

/// Where a sign-in was asked from, for [`Pages::verify_elsewhere`].
pub struct Asked<'a> {
    /// Browser family ("Firefox on Windows"); empty if not known.
    pub browser: &'a str,
    /// The client's IP as the gateway saw it; empty if not known.
    pub ip: &'a str,
    /// When it was asked, unix seconds.
    pub at: u64,
    /// Now, unix seconds.
    pub now: u64,
}

fn notice(message: Option<&str>) -> String {
    match message {
        Some(m) => format!("<p class=\"notice\" role=\"alert\">{}</p>\n", escape(m)),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
