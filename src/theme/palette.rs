//! Colours of the gateway's pages: the fixed ones, and those derived from
//! `[ui] accent`, with WCAG 2 contrast computed rather than hoped for.
//!
//! Owns: [`Palette::for_accent`] (button, button text, hover, border, link
//! colours) and the `:root` block of CSS custom properties.
//! Does not own: the stylesheet's layout rules (`assets/style.css`).
//!
//! Rules: text reaches AA (4.5:1) against its background; input borders,
//! button edges and focus rings reach 3:1 against the card. An accent that
//! fails with white text gets a darker shade (mid tones) or dark text
//! (light accents); links and focus rings use the accent darkened until
//! it passes against the page.

use super::DEFAULT_ACCENT;

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

pub const WHITE: Rgb = Rgb(0xff, 0xff, 0xff);
pub const BLACK: Rgb = Rgb(0, 0, 0);
/// Body text.
pub const INK: Rgb = Rgb(0x1b, 0x1f, 0x24);
/// Secondary text.
pub const MUTED: Rgb = Rgb(0x52, 0x5b, 0x66);
/// Card borders and rules (decoration only).
pub const LINE: Rgb = Rgb(0xd8, 0xde, 0xe4);
/// Input borders: at least 3:1 against the card (WCAG 1.4.11).
pub const FIELD: Rgb = Rgb(0x6e, 0x77, 0x81);
/// The page behind the card.
pub const BG: Rgb = Rgb(0xf3, 0xf5, 0xf8);
pub const CARD: Rgb = WHITE;
pub const DANGER: Rgb = Rgb(0xb4, 0x23, 0x18);
pub const DANGER_BG: Rgb = Rgb(0xfe, 0xf3, 0xf2);

impl Rgb {
    /// `#rgb` or `#rrggbb`.
    pub fn parse(text: &str) -> Option<Rgb> {
        let hex = text.strip_prefix('#')?;
        let digit = |c: char| c.to_digit(16).and_then(|d| u8::try_from(d).ok());
        let d: Vec<u8> = hex.chars().map(digit).collect::<Option<_>>()?;
        match d.as_slice() {
            [r, g, b] => Some(Rgb(r * 17, g * 17, b * 17)),
            [r1, r2, g1, g2, b1, b2] => Some(Rgb(r1 * 16 + r2, g1 * 16 + g2, b1 * 16 + b2)),
            _ => None,
        }
    }

    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// WCAG relative luminance.
    pub fn luminance(self) -> f64 {
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.040_45 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(self.0) + 0.7152 * lin(self.1) + 0.0722 * lin(self.2)
    }

    /// `self` moved a fraction `t` (0..=1) of the way towards `other`.
    pub fn mix(self, other: Rgb, t: f64) -> Rgb {
        let m = |a: u8, b: u8| {
            let v = f64::from(a) + (f64::from(b) - f64::from(a)) * t.clamp(0.0, 1.0);
            v.round().clamp(0.0, 255.0) as u8
        };
        Rgb(m(self.0, other.0), m(self.1, other.1), m(self.2, other.2))
    }
}

/// WCAG contrast ratio, 1 to 21.
pub fn contrast(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (a.luminance(), b.luminance());
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// WCAG AA for normal text.
pub const AA_TEXT: f64 = 4.5;
/// WCAG AA for UI component boundaries and focus indicators.
pub const AA_UI: f64 = 3.0;

/// The first shade of `c`, going towards black, with `min` contrast
/// against `against` (black always has it against a light colour).
fn darken_until(c: Rgb, against: Rgb, min: f64) -> Rgb {
    (0..=50)
        .map(|step| c.mix(BLACK, f64::from(step) / 50.0))
        .find(|s| contrast(*s, against) >= min)
        .unwrap_or(BLACK)
}

/// The colours that depend on `[ui] accent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    /// Button background: the accent, or a darker shade of it.
    pub button: Rgb,
    /// Button text: white, or dark text on a light accent.
    pub on_button: Rgb,
    /// Button background on hover (contrast with `on_button` kept).
    pub hover: Rgb,
    /// Button border: `button`, or `link` when `button` is too light to
    /// stand out from the card.
    pub edge: Rgb,
    /// Links and focus rings: the accent darkened to AA against the page.
    pub link: Rgb,
}

impl Palette {
    /// The palette for an accent (`#rgb`/`#rrggbb`; anything else gets the
    /// default accent).
    pub fn for_accent(accent: &str) -> Palette {
        let accent = Rgb::parse(accent)
            .or_else(|| Rgb::parse(DEFAULT_ACCENT))
            .unwrap_or(Rgb(0x1f, 0x5f, 0xbf));
        let white_on = contrast(accent, WHITE);
        let (button, on_button) = if white_on >= AA_TEXT {
            (accent, WHITE)
        } else if white_on >= AA_UI {
            // A mid tone: keep white text on a slightly darker shade.
            (darken_until(accent, WHITE, AA_TEXT), WHITE)
        } else if contrast(accent, INK) >= AA_TEXT {
            (accent, INK)
        } else {
            (accent, BLACK)
        };
        let hover = if on_button == WHITE {
            button.mix(BLACK, 0.15)
        } else {
            button.mix(WHITE, 0.25)
        };
        let link = darken_until(accent, BG, AA_TEXT);
        let edge = if contrast(button, CARD) >= AA_UI {
            button
        } else {
            link
        };
        Palette {
            button,
            on_button,
            hover,
            edge,
            link,
        }
    }

    /// The `:root` block of custom properties the stylesheet uses.
    pub fn css(&self) -> String {
        let vars = [
            ("accent", self.button),
            ("on-accent", self.on_button),
            ("accent-hover", self.hover),
            ("accent-edge", self.edge),
            ("accent-text", self.link),
            ("ink", INK),
            ("muted", MUTED),
            ("line", LINE),
            ("field", FIELD),
            ("bg", BG),
            ("card", CARD),
            ("danger", DANGER),
            ("danger-bg", DANGER_BG),
        ];
        let mut css = String::from(":root {\n");
        for (name, colour) in vars {
            css.push_str(&format!("  --{name}: {};\n", colour.hex()));
        }
        css.push_str("}\n");
        css
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_short_hex() -> impl Iterator<Item = String> {
        (0..4096u32).map(|n| format!("#{n:03x}"))
    }

    #[test]
    fn parses_short_and_long_hex_only() {
        assert_eq!(Rgb::parse("#1f5fbf"), Some(Rgb(0x1f, 0x5f, 0xbf)));
        assert_eq!(Rgb::parse("#FFF"), Some(WHITE));
        assert_eq!(Rgb::parse("#abc"), Some(Rgb(0xaa, 0xbb, 0xcc)));
        for bad in [
            "1f5fbf",
            "#1f5fb",
            "#1f5fbfa",
            "#ggg",
            "blue",
            "#",
            "",
            "#１２３",
        ] {
            assert_eq!(Rgb::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Rgb(1, 2, 255).hex(), "#0102ff");
    }

    #[test]
    fn contrast_matches_wcag_reference_values() {
        assert!((contrast(WHITE, BLACK) - 21.0).abs() < 1e-9);
        assert!((contrast(WHITE, WHITE) - 1.0).abs() < 1e-9);
        // WebAIM's checker: #777777 on white is 4.48:1, #767676 is 4.54:1.
        assert!((contrast(Rgb(0x77, 0x77, 0x77), WHITE) - 4.48).abs() < 0.01);
        assert!((contrast(Rgb(0x76, 0x76, 0x76), WHITE) - 4.54).abs() < 0.01);
    }

    #[test]
    fn fixed_colours_meet_aa() {
        for (name, fg, bg) in [
            ("ink on card", INK, CARD),
            ("ink on page", INK, BG),
            ("muted on card", MUTED, CARD),
            ("muted on page", MUTED, BG),
            ("ink on notice", INK, DANGER_BG),
            ("danger icon on its circle", DANGER, DANGER_BG),
        ] {
            let c = contrast(fg, bg);
            assert!(c >= AA_TEXT, "{name}: {c:.2}");
        }
        assert!(contrast(FIELD, CARD) >= AA_UI, "input border");
        assert!(contrast(DANGER, DANGER_BG) >= AA_UI, "notice bar");
    }

    #[test]
    fn the_default_accent_keeps_white_text() {
        let p = Palette::for_accent(DEFAULT_ACCENT);
        assert_eq!(p.button, Rgb(0x1f, 0x5f, 0xbf));
        assert_eq!(p.on_button, WHITE);
        assert_eq!(p.edge, p.button);
        assert_eq!(p.link, p.button);
    }

    #[test]
    fn light_accents_get_dark_text() {
        let p = Palette::for_accent("#ffd400");
        assert_eq!(p.button, Rgb(0xff, 0xd4, 0x00), "the accent itself is kept");
        assert_eq!(p.on_button, INK);
        assert_ne!(p.edge, p.button, "a yellow button gets a visible edge");
        assert!(contrast(p.link, BG) >= AA_TEXT);
    }

    #[test]
    fn mid_accents_get_a_darker_shade_with_white_text() {
        // #2e9e4f: 3.4:1 with white.
        let accent = Rgb(0x2e, 0x9e, 0x4f);
        assert!(contrast(accent, WHITE) < AA_TEXT && contrast(accent, WHITE) >= AA_UI);
        let p = Palette::for_accent("#2e9e4f");
        assert_eq!(p.on_button, WHITE);
        assert_ne!(p.button, accent);
        assert!(contrast(p.button, WHITE) >= AA_TEXT);
        assert!(p.button.luminance() < accent.luminance());
    }

    #[test]
    fn every_accent_gives_an_accessible_palette() {
        for accent in all_short_hex() {
            let p = Palette::for_accent(&accent);
            let checks = [
                ("button text", contrast(p.on_button, p.button), AA_TEXT),
                (
                    "button text on hover",
                    contrast(p.on_button, p.hover),
                    AA_TEXT,
                ),
                ("links on the card", contrast(p.link, CARD), AA_TEXT),
                ("links on the page", contrast(p.link, BG), AA_TEXT),
                ("button edge", contrast(p.edge, CARD), AA_UI),
                ("focus ring", contrast(p.link, CARD), AA_UI),
            ];
            for (what, got, min) in checks {
                assert!(got >= min, "{accent}: {what} is {got:.2}:1, needs {min}");
            }
        }
    }

    #[test]
    fn a_bad_accent_falls_back_to_the_default() {
        assert_eq!(
            Palette::for_accent("nope"),
            Palette::for_accent(DEFAULT_ACCENT)
        );
    }

    #[test]
    fn css_names_every_colour() {
        let css = Palette::for_accent(DEFAULT_ACCENT).css();
        assert!(css.starts_with(":root {\n  --accent: #1f5fbf;\n"), "{css}");
        for var in [
            "--on-accent",
            "--accent-text",
            "--accent-hover",
            "--muted",
            "--field",
        ] {
            assert!(css.contains(var), "{var}");
        }
        println!("{css}");
    }
}
