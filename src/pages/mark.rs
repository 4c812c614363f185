//! The portcullis mark: drawn in the page header when `[ui] logo` is not
//! set, and as the favicon, a `data:` URL in the colours of the accent.
//!
//! Owns: [`mark`] and [`icon`], and the one path both draw.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::theme::palette::Palette;

/// A portcullis: an arch with bars, drawn in 32×32.
const MARK_PATH: &str = "M9 25V13a7 7 0 0 1 14 0v12M13 25V7.5M16 25V6M19 25V7.5M9 17h14M9 21h14";

/// The mark shown when no logo is configured: a gate, in the accent.
pub(super) fn mark() -> String {
    format!(
        "<svg class=\"mark\" viewBox=\"0 0 32 32\" width=\"32\" height=\"32\" aria-hidden=\"true\">\
<rect width=\"32\" height=\"32\" rx=\"8\" class=\"mark-bg\"/>\
<path d=\"{MARK_PATH}\" class=\"mark-fg\"/></svg>"
    )
}

/// The favicon, as a `data:` URL (so the browser asks nothing of the app).
pub(super) fn icon(palette: &Palette) -> String {
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\"><rect width=\"32\" height=\"32\" rx=\"8\" fill=\"{}\"/>\
<path d=\"{MARK_PATH}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/></svg>",
        palette.button.hex(),
        palette.on_button.hex()
    );
    format!("data:image/svg+xml;base64,{}", STANDARD.encode(svg))
}
