//! `[ui]`: raw → [`UiConfig`]. Checks the title, the accent colour and the
//! logo, inlines `logo_file` as a `data:` URL, and reads and checks the
//! `templates` override folder, so that `portcullis check` reports a bad
//! template before any page is served.
//!
//! Does not own: what the templates may contain ([`crate::theme::template::check_override`])
//! or how pages are drawn (`pages`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::Problems;
use super::raw::RawUi;
use super::UiConfig;

pub(super) fn ui_config(raw: RawUi, p: &mut Problems) -> Option<UiConfig> {
    let RawUi {
        title,
        accent,
        logo,
        logo_file,
        footer,
        templates,
    } = raw;
    let title = title.unwrap_or_else(|| "Portcullis".into());
    if title.trim().is_empty() || title.chars().count() > 100 {
        p.add("ui.title", "must be 1 to 100 characters");
    }
    let accent = accent.unwrap_or_else(|| crate::theme::DEFAULT_ACCENT.into());
    if crate::theme::palette::Rgb::parse(&accent).is_none() {
        p.add(
            "ui.accent",
            format!("{accent:?} is not a colour like \"#1f5fbf\""),
        );
    }
    if let Some(logo) = &logo {
        let path_here = logo.starts_with('/')
            && !logo.starts_with("//")
            && !logo.contains('\\')
            && !logo.chars().any(|c| c.is_whitespace() || c.is_control());
        if !path_here && !logo.starts_with("data:image/") {
            p.add(
                "ui.logo",
                format!("{logo:?} is not a path on this site like \"/static/logo.svg\" (the pages load images from their own site only); for a file on this machine use ui.logo_file"),
            );
        }
        if logo_file.is_some() {
            p.add(
                "ui.logo_file",
                "set either ui.logo or ui.logo_file, not both",
            );
        }
    }
    let logo = match logo_file {
        Some(path) => logo_data_url(&path, p),
        None => logo,
    };
    let (templates_dir, templates) = match templates {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            let found = template_overrides(&dir, p);
            (Some(dir), found)
        }
        None => (None, BTreeMap::new()),
    };
    Some(UiConfig {
        title,
        accent,
        logo,
        footer,
        templates_dir,
        templates,
    })
}

/// Largest logo file taken into the pages.
const MAX_LOGO_BYTES: usize = 100 * 1024;
/// Largest template file.
const MAX_TEMPLATE_BYTES: u64 = 256 * 1024;

/// `ui.logo_file` as a `data:` URL (allowed by the pages' CSP, and served
/// without asking the app, which may want a session for every path).
fn logo_data_url(path: &str, p: &mut Problems) -> Option<String> {
    let extension = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let mime = match extension.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("svg") => "image/svg+xml",
        _ => {
            p.add(
                "ui.logo_file",
                format!("{path:?} is not a .png, .jpg, .gif, .webp or .svg file"),
            );
            return None;
        }
    };
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() > MAX_LOGO_BYTES => {
            p.add(
                "ui.logo_file",
                format!(
                    "{path:?} is {} bytes; the limit is {MAX_LOGO_BYTES}",
                    bytes.len()
                ),
            );
            None
        }
        Ok(bytes) => {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            Some(format!("data:{mime};base64,{b64}"))
        }
        Err(e) => {
            p.add("ui.logo_file", format!("cannot read {path:?}: {e}"));
            None
        }
    }
}

/// Reads the `[ui] templates` folder: every file named like a built-in
/// template replaces it, after [`crate::theme::template::check_override`]. Other
/// `.html` and `.css` files are reported (a misspelt name would otherwise
/// be ignored without a word); other files are left alone.
fn template_overrides(dir: &Path, p: &mut Problems) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            p.add(
                "ui.templates",
                format!("cannot read the folder {}: {e}", dir.display()),
            );
            return found;
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        if !crate::theme::template::override_files().any(|f| f == name) {
            if name.ends_with(".html") || name.ends_with(".css") {
                let known: Vec<&str> = crate::theme::template::override_files().collect();
                p.add(
                    "ui.templates",
                    format!(
                        "{} is not the name of a template (known: {})",
                        path.display(),
                        known.join(", ")
                    ),
                );
            }
            continue;
        }
        let text = match std::fs::metadata(&path) {
            Ok(m) if m.len() > MAX_TEMPLATE_BYTES => Err(format!(
                "is {} bytes; the limit is {MAX_TEMPLATE_BYTES}",
                m.len()
            )),
            _ => std::fs::read_to_string(&path).map_err(|e| format!("cannot be read: {e}")),
        };
        match text {
            Ok(text) => match crate::theme::template::check_override(&name, &text) {
                Ok(()) => {
                    found.insert(name, text);
                }
                Err(e) => p.add("ui.templates", format!("{}: {e}", path.display())),
            },
            Err(m) => p.add("ui.templates", format!("{} {m}", path.display())),
        }
    }
    found
}
