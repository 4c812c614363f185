//! A short label for the browser that sent a request, from its
//! `User-Agent`: "Firefox on Windows", "Safari on iPhone".
//!
//! Owns: [`label`]. The label is stored with a pending sign-in and shown,
//! next to the IP and the time, to a person who opens the sign-in link in
//! another browser, so they can tell whether the sign-in was theirs.
//!
//! # Threat model
//!
//! The `User-Agent` is whatever the client sent: it is only looked at for
//! a few known tokens, and the label is built from this file's fixed words
//! only, never from the header's text, so it holds nothing the client
//! chose and is never longer than [`MAX_LABEL`] bytes. It is a hint for a
//! person, not evidence: anyone can send any `User-Agent`.

/// The longest label, in bytes.
pub const MAX_LABEL: usize = 64;

/// What a missing or unrecognised `User-Agent` is called.
pub const UNKNOWN: &str = "Unknown browser";

/// Browsers, most specific first: Edge, Opera and Samsung Internet also
/// say `Chrome/`, and Chrome says `Safari/`.
const BROWSERS: &[(&str, &str)] = &[
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("OPR/", "Opera"),
    ("OPiOS/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("YaBrowser/", "Yandex Browser"),
    ("Vivaldi/", "Vivaldi"),
    ("FxiOS/", "Firefox"),
    ("Firefox/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("HeadlessChrome/", "Headless Chrome"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("MSIE ", "Internet Explorer"),
    ("Trident/", "Internet Explorer"),
    ("curl/", "curl"),
    ("Wget/", "Wget"),
    ("python-requests/", "Python requests"),
];

/// Systems, most specific first: iPhones say `like Mac OS X`, Android
/// says `Linux`.
const SYSTEMS: &[(&str, &str)] = &[
    ("Windows Phone", "Windows Phone"),
    ("Windows", "Windows"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Macintosh", "macOS"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
];

/// "Firefox on Windows", "Chrome", "Unknown browser on Linux" or
/// "Unknown browser", from a `User-Agent` value.
pub fn label(user_agent: Option<&[u8]>) -> String {
    let Some(ua) = user_agent.map(String::from_utf8_lossy) else {
        return UNKNOWN.to_owned();
    };
    let find = |table: &[(&str, &'static str)]| {
        table
            .iter()
            .find(|(token, _)| ua.contains(token))
            .map(|(_, name)| *name)
    };
    let browser = find(BROWSERS).unwrap_or(UNKNOWN);
    let mut out = match find(SYSTEMS) {
        Some(system) => format!("{browser} on {system}"),
        None => browser.to_owned(),
    };
    truncate(&mut out, MAX_LABEL);
    out
}

/// Cuts `s` to at most `max` bytes, on a character boundary.
fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real `User-Agent` strings and their labels.
    const TABLE: &[(&str, &str)] = &[
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox on Windows",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "Chrome on Windows",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
            "Safari on macOS",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox on macOS",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
            "Safari on iPhone",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
            "Chrome on iPhone",
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15",
            "Firefox on iPad",
        ),
        (
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
            "Samsung Internet on Android",
        ),
        (
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 OPR/86.0.0.0",
            "Opera on Android",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox on Linux",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
            "Headless Chrome on Linux",
        ),
        (
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "Chrome on ChromeOS",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko",
            "Internet Explorer on Windows",
        ),
        ("curl/8.5.0", "curl"),
        ("Wget/1.21.4", "Wget"),
        ("python-requests/2.32.3", "Python requests"),
        ("Mozilla/5.0 (X11; Linux x86_64)", "Unknown browser on Linux"),
        ("", "Unknown browser"),
        ("<script>alert(1)</script>", "Unknown browser"),
    ];

    #[test]
    fn labels_from_real_user_agents() {
        for (ua, want) in TABLE {
            assert_eq!(label(Some(ua.as_bytes())), *want, "{ua}");
        }
        assert_eq!(label(None), "Unknown browser");
        assert_eq!(
            label(Some(b"\xff\xfe Firefox/1 Windows")),
            "Firefox on Windows"
        );
    }

    #[test]
    fn labels_are_short_whatever_the_header() {
        let long = format!("{} Firefox/1 Windows", "x".repeat(100_000));
        assert_eq!(label(Some(long.as_bytes())), "Firefox on Windows");
        let every: String = BROWSERS.iter().map(|(t, _)| *t).collect::<String>()
            + &SYSTEMS.iter().map(|(t, _)| *t).collect::<String>();
        assert!(label(Some(every.as_bytes())).len() <= MAX_LABEL);
        for (_, b) in BROWSERS {
            for (_, s) in SYSTEMS {
                assert!(format!("{b} on {s}").len() <= MAX_LABEL, "{b} on {s}");
            }
        }
        let mut s = "é".repeat(40);
        truncate(&mut s, 63);
        assert_eq!(s.len(), 62);
    }
}
