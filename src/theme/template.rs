//! The template language of the gateway's pages: `{{name}}` placeholders
//! and nothing else (no loops, conditions or expressions), the list of
//! templates with their placeholders, and the check of an operator's
//! override.
//!
//! Owns: parsing, rendering with escaping, [`SPECS`], [`check_override`].
//! Does not own: the page wording (the files in `assets/templates/`), the
//! values (`pages`), reading override files (config conversion).
//!
//! # Threat model
//!
//! Every value is HTML-escaped on the way in, except values the gateway
//! passes as `Value::Html` (fragments it built and escaped itself, see
//! [`FRAGMENTS`]). The template cannot choose: an override saying
//! `{{email}}` gets the escaped address like the built-in one. Parsing
//! never panics; a malformed template is an error, not a page.

use super::{escape, STYLESHEET_FILE};

/// Why a template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("\"{{{{\" at byte {0} is not closed by \"}}}}\"")]
    Unclosed(usize),
    #[error("{{{{{0}}}}} is not a placeholder name (lowercase letters and _)")]
    BadName(String),
    #[error("{template}: {{{{{name}}}}} is not one of its placeholders ({known})")]
    Unknown {
        template: String,
        name: String,
        known: String,
    },
    #[error("{template}: the required placeholder {{{{{name}}}}} is missing")]
    Missing { template: String, name: String },
    #[error("{0:?} is not the name of a template ({1})")]
    NotATemplate(String, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    Slot(String),
}

/// A parsed template: literal text and `{{name}}` slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template(pub(crate) Vec<Piece>);

/// A value for a slot: text is escaped, a fragment (built here) is not.
#[derive(Clone, Copy)]
pub(crate) enum Value<'a> {
    Text(&'a str),
    Html(&'a str),
}

impl Template {
    pub(crate) fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some((literal, after)) = rest.split_once("{{") {
            let at = text.len() - rest.len() + literal.len();
            let (name, tail) = after.split_once("}}").ok_or(TemplateError::Unclosed(at))?;
            let name = name.trim();
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                return Err(TemplateError::BadName(name.chars().take(40).collect()));
            }
            if !literal.is_empty() {
                pieces.push(Piece::Text(literal.to_string()));
            }
            pieces.push(Piece::Slot(name.to_string()));
            rest = tail;
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template(pieces))
    }

    fn slots(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            Piece::Slot(s) => Some(s.as_str()),
            Piece::Text(_) => None,
        })
    }

    /// Fills the slots; a slot without a value stays empty.
    pub(crate) fn render(&self, values: &[(&str, Value<'_>)]) -> String {
        let mut out = String::with_capacity(4096);
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Slot(name) => match values.iter().find(|(n, _)| n == name) {
                    Some((_, Value::Text(t))) => out.push_str(&escape(t)),
                    Some((_, Value::Html(h))) => out.push_str(h),
                    None => {}
                },
            }
        }
        out
    }
}

/// One template: its file name, built-in text and placeholders.
pub struct Spec {
    pub file: &'static str,
    pub(crate) builtin: &'static str,
    /// Without these the page does not work (form fields, the message).
    pub required: &'static [&'static str],
    pub optional: &'static [&'static str],
}

/// Placeholders every template may use.
pub const GLOBAL: &[&str] = &["site", "product"];
/// Placeholders filled with HTML the gateway built (not escaped again).
pub const FRAGMENTS: &[&str] = &[
    "content",
    "logo",
    "footer",
    "notice",
    "who",
    "address",
    "providers",
];

macro_rules! spec {
    ($file:literal, [$($r:literal),*], [$($o:literal),*]) => {
        Spec {
            file: $file,
            builtin: include_str!(concat!("../assets/templates/", $file)),
            required: &[$($r),*],
            optional: &[$($o),*],
        }
    };
}

/// Every template (the stylesheet, `style.css`, is not one).
pub const SPECS: [Spec; 13] = [
    spec!(
        "layout.html",
        ["content"],
        ["page_title", "stylesheet", "icon", "logo", "footer"]
    ),
    spec!("login.html", ["csrf", "rd", "notice"], ["providers"]),
    spec!("login_providers.html", ["providers"], ["notice"]),
    spec!(
        "check_email.html",
        ["csrf", "notice"],
        ["valid_for", "address", "resend_wait"]
    ),
    spec!("verify_confirm.html", ["csrf", "token"], ["email"]),
    spec!("verify_reveal.html", ["csrf", "token"], []),
    spec!(
        "verify_elsewhere.html",
        ["code"],
        ["asked_browser", "asked_ip", "asked_ago", "asked_at"]
    ),
    spec!("link_invalid.html", [], []),
    spec!("code_locked.html", [], []),
    spec!("forbidden.html", ["csrf", "email"], []),
    spec!("logout_confirm.html", ["csrf", "rd"], ["who"]),
    spec!("signed_out.html", [], []),
    spec!(
        "error.html",
        ["message"],
        ["heading", "advice", "status", "reason"]
    ),
];

pub(crate) fn spec(file: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.file == file)
}

/// Every file name an override folder may hold.
pub fn override_files() -> impl Iterator<Item = &'static str> {
    SPECS
        .iter()
        .map(|s| s.file)
        .chain(std::iter::once(STYLESHEET_FILE))
}

/// Checks an override of the template named `file`: it must parse, use
/// only that template's placeholders, and use every required one. The
/// stylesheet is plain CSS and always passes.
pub fn check_override(file: &str, text: &str) -> Result<(), TemplateError> {
    if file == STYLESHEET_FILE {
        return Ok(());
    }
    let spec = spec(file).ok_or_else(|| {
        TemplateError::NotATemplate(
            file.to_string(),
            override_files().collect::<Vec<_>>().join(", "),
        )
    })?;
    let template = Template::parse(text)?;
    let allowed = || {
        GLOBAL
            .iter()
            .chain(spec.required)
            .chain(spec.optional)
            .copied()
    };
    if let Some(name) = template.slots().find(|n| !allowed().any(|a| a == *n)) {
        return Err(TemplateError::Unknown {
            template: file.to_string(),
            name: name.to_string(),
            known: allowed().collect::<Vec<_>>().join(", "),
        });
    }
    if let Some(name) = spec
        .required
        .iter()
        .find(|r| !template.slots().any(|n| n == **r))
    {
        return Err(TemplateError::Missing {
            template: file.to_string(),
            name: name.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(text: &str) -> Vec<String> {
        Template::parse(text)
            .unwrap()
            .slots()
            .map(String::from)
            .collect()
    }

    #[test]
    fn parses_placeholders_with_optional_spaces() {
        assert_eq!(slots("a {{x}} b {{ y_z }}{{x}}"), ["x", "y_z", "x"]);
        assert_eq!(slots("no placeholders } { }}"), Vec::<String>::new());
        assert_eq!(
            Template::parse("a{{b}}c").unwrap(),
            Template(vec![
                Piece::Text("a".into()),
                Piece::Slot("b".into()),
                Piece::Text("c".into())
            ])
        );
    }

    #[test]
    fn malformed_templates_are_errors() {
        assert_eq!(Template::parse("ab {{x"), Err(TemplateError::Unclosed(3)));
        assert_eq!(
            Template::parse("{{X}}"),
            Err(TemplateError::BadName("X".into()))
        );
        assert_eq!(
            Template::parse("{{ }}"),
            Err(TemplateError::BadName("".into()))
        );
        assert_eq!(
            Template::parse("{{a.b}}"),
            Err(TemplateError::BadName("a.b".into()))
        );
        assert_eq!(
            Template::parse("{{{x}}}"),
            Err(TemplateError::BadName("{x".into()))
        );
    }

    #[test]
    fn text_is_escaped_and_fragments_are_not() {
        let t = Template::parse("<p title=\"{{a}}\">{{a}}</p>{{b}}{{missing}}").unwrap();
        let out = t.render(&[("a", Value::Text("\"<&'>")), ("b", Value::Html("<br>"))]);
        assert_eq!(
            out,
            "<p title=\"&quot;&lt;&amp;&#39;&gt;\">&quot;&lt;&amp;&#39;&gt;</p><br>"
        );
    }

    #[test]
    fn every_built_in_template_passes_its_own_check() {
        for spec in &SPECS {
            assert_eq!(
                check_override(spec.file, spec.builtin),
                Ok(()),
                "{}",
                spec.file
            );
            for name in spec.required.iter().chain(spec.optional) {
                assert!(
                    spec.builtin.contains(&format!("{{{{{name}}}}}")),
                    "{} does not use {{{{{name}}}}}",
                    spec.file
                );
            }
        }
        assert_eq!(override_files().count(), SPECS.len() + 1);
    }

    #[test]
    fn overrides_are_checked() {
        assert_eq!(
            check_override("login.html", "{{csrf}} {{rd}}"),
            Err(TemplateError::Missing {
                template: "login.html".into(),
                name: "notice".into()
            })
        );
        assert_eq!(
            check_override("verify_elsewhere.html", "{{code}} {{token}}"),
            Err(TemplateError::Unknown {
                template: "verify_elsewhere.html".into(),
                name: "token".into(),
                known: "site, product, code, asked_browser, asked_ip, asked_ago, asked_at".into()
            })
        );
        assert_eq!(
            check_override("signin.html", ""),
            Err(TemplateError::NotATemplate(
                "signin.html".into(),
                override_files().collect::<Vec<_>>().join(", ")
            ))
        );
        assert_eq!(
            check_override("login.html", "{{csrf"),
            Err(TemplateError::Unclosed(0))
        );
        assert_eq!(check_override("style.css", "a{{b"), Ok(()));
        assert_eq!(
            check_override("signed_out.html", "{{site}} {{product}}"),
            Ok(())
        );
    }

    #[test]
    fn errors_read_well() {
        let e = check_override("forbidden.html", "{{csrf}}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "forbidden.html: the required placeholder {{email}} is missing"
        );
        assert_eq!(
            TemplateError::Unclosed(7).to_string(),
            "\"{{\" at byte 7 is not closed by \"}}\""
        );
    }
}
