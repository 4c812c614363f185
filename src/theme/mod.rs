//! What the pages may look like, checked before any page is built: the
//! template language and the list of templates with their placeholders
//! ([`template`]), the colours derived from `[ui] accent` ([`palette`]),
//! and HTML escaping. A leaf: the configuration checks an operator's
//! overrides and accent with it, and [`crate::pages`] renders with it.

pub mod palette;
pub mod template;

/// File name of the stylesheet in an override folder.
pub const STYLESHEET_FILE: &str = "style.css";
/// `[ui] accent` when none is configured.
pub const DEFAULT_ACCENT: &str = "#1f5fbf";

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
