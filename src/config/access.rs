//! `[[token]]` (machine tokens) and `[share]` (share links) to typed
//! values. A token's secret is read here (from `secret_file`) and only
//! its SHA-256 is kept; the groups a token lists join the group names
//! (so `allow_groups = ["ci"]` may name a group that has only tokens).

use std::collections::BTreeSet;
use std::time::Duration;

use super::error::Problems;
use super::raw::{RawDate, RawShare, RawToken};
use super::values;
use crate::groups::Groups;
use crate::token::{Token, Tokens, USER_PREFIX};

/// `[share]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareConfig {
    /// `/.portcullis/share/…` answers (else 404) and share cookies are
    /// read (default false).
    pub enabled: bool,
    /// `portcullis share` without `--ttl` (7d).
    pub default_ttl: Duration,
    /// The longest `--ttl` (30d).
    pub max_ttl: Duration,
    /// `portcullis share` without `--method` (GET, HEAD).
    pub methods: Vec<http::Method>,
}

impl Default for ShareConfig {
    fn default() -> Self {
        ShareConfig {
            enabled: false,
            default_ttl: Duration::from_secs(7 * 86_400),
            max_ttl: Duration::from_secs(30 * 86_400),
            methods: vec![http::Method::GET, http::Method::HEAD],
        }
    }
}

pub(super) fn share(raw: RawShare, p: &mut Problems) -> ShareConfig {
    let d = ShareConfig::default();
    let mut ttl = |key: &str, v: Option<String>, default: Duration| match v {
        None => default,
        Some(text) => match values::duration(&text) {
            Ok(t) if !t.is_zero() => t,
            Ok(_) => {
                p.add(key, format!("{text:?} must be longer than zero"));
                default
            }
            Err(m) => {
                p.add(key, m);
                default
            }
        },
    };
    let default_ttl = ttl("share.default_ttl", raw.default_ttl, d.default_ttl);
    let max_ttl = ttl("share.max_ttl", raw.max_ttl, d.max_ttl);
    if default_ttl > max_ttl {
        p.add(
            "share.default_ttl",
            "is longer than share.max_ttl".to_string(),
        );
    }
    let methods = match raw.methods {
        None => d.methods,
        Some(list) => {
            if list.is_empty() {
                p.add("share.methods", "is empty: a link would open nothing");
            }
            let mut out = Vec::new();
            for (i, name) in list.iter().enumerate() {
                let upper = name.trim().to_ascii_uppercase();
                match http::Method::from_bytes(upper.as_bytes()) {
                    Ok(m) if !upper.is_empty() => {
                        if !out.contains(&m) {
                            out.push(m);
                        }
                    }
                    _ => p.add(
                        format!("share.methods[{i}]"),
                        format!("{name:?} is not an HTTP method"),
                    ),
                }
            }
            out
        }
    };
    ShareConfig {
        enabled: raw.enabled.unwrap_or(false),
        default_ttl,
        max_ttl,
        methods,
    }
}

/// The group names the tokens list (valid ones), to be groups even
/// without an address member.
pub(super) fn token_groups(raw: &[RawToken]) -> BTreeSet<String> {
    raw.iter()
        .flat_map(|t| t.groups.iter().flatten())
        .filter(|g| crate::groups::valid_name(g))
        .cloned()
        .collect()
}

pub(super) fn tokens(raw: Vec<RawToken>, groups: &Groups, p: &mut Problems) -> Tokens {
    let mut out = Vec::with_capacity(raw.len());
    let mut names = BTreeSet::new();
    let mut digests = BTreeSet::new();
    for (i, t) in raw.into_iter().enumerate() {
        let k = |key: &str| format!("token[{i}].{key}");
        let name = match t.name {
            Some(n) if valid_token_name(&n) => n,
            Some(n) => {
                p.add(
                    k("name"),
                    format!("{n:?} is not a token name (1 to 64 letters, digits, \"-\", \"_\" or \".\")"),
                );
                continue;
            }
            None => {
                p.add(k("name"), "is required");
                continue;
            }
        };
        if !names.insert(name.clone()) {
            p.add(
                k("name"),
                format!("{name:?} is already the name of a token"),
            );
        }
        let digest = match (t.sha256, t.secret_file) {
            (Some(hex), None) => match parse_hex32(hex.trim()) {
                Some(d) => d,
                None => {
                    p.add(
                        k("sha256"),
                        "must be 64 hex digits (the SHA-256 of the secret: `portcullis token new` prints it)",
                    );
                    continue;
                }
            },
            (None, Some(file)) => match std::fs::read_to_string(&file) {
                Ok(text) if text.trim().len() >= 16 => crate::token::digest(text.trim().as_bytes()),
                Ok(_) => {
                    p.add(
                        k("secret_file"),
                        format!("{file:?} holds less than 16 characters: too short to be a secret"),
                    );
                    continue;
                }
                Err(e) => {
                    p.add(k("secret_file"), format!("cannot read {file:?}: {e}"));
                    continue;
                }
            },
            (Some(_), Some(_)) => {
                p.add(k("sha256"), "give sha256 or secret_file, not both");
                continue;
            }
            (None, None) => {
                p.add(k("sha256"), "is required (or secret_file)");
                continue;
            }
        };
        if !digests.insert(digest) {
            p.add(k("sha256"), "is the secret of another token too");
        }
        let listed = t.groups.unwrap_or_default();
        for (j, g) in listed.iter().enumerate() {
            if !crate::groups::valid_name(g) {
                p.add(
                    format!("token[{i}].groups[{j}]"),
                    format!("{g:?} is not a group name (1 to 64 letters, digits, \"-\", \"_\" or \".\")"),
                );
            }
        }
        if listed.is_empty() {
            p.add(
                k("groups"),
                "is required: a token passes only routes whose allow_groups names one of its groups",
            );
        }
        let expires = match t.expires {
            None => None,
            Some(d) => {
                let text = match d {
                    RawDate::Toml(dt) => dt.to_string(),
                    RawDate::Text(s) => s,
                };
                match unix_time(text.trim()) {
                    Some(s) => Some(s),
                    None => {
                        p.add(
                            k("expires"),
                            format!("{text:?} is not an RFC 3339 date like 2027-01-31 or 2027-01-31T12:00:00Z"),
                        );
                        None
                    }
                }
            }
        };
        out.push(Token {
            user: format!("{USER_PREFIX}{name}"),
            name,
            digest,
            groups: groups.membership(&listed),
            expires,
        });
    }
    Tokens::new(out)
}

/// A token name: as a group name (it is sent in `X-Forwarded-User`).
fn valid_token_name(name: &str) -> bool {
    crate::groups::valid_name(name)
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Unix seconds of an RFC 3339 date (`2027-01-31`: its first second,
/// UTC) or date-time (`2027-01-31T12:00:00Z`, `…+02:00`; without an
/// offset: UTC).
fn unix_time(text: &str) -> Option<u64> {
    let num = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (date, time) = match text.find(['T', 't', ' ']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let (y, m, d) = (
        num(parts.next()?)?,
        num(parts.next()?)?,
        num(parts.next()?)?,
    );
    if parts.next().is_some() || date.len() != 10 || !(1..=12).contains(&m) {
        return None;
    }
    let days_in_month = match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=days_in_month).contains(&d) {
        return None;
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    if let Some(time) = time {
        let (clock, offset) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
            (c, 0)
        } else if let Some(i) = time.rfind(['+', '-']) {
            let (c, off) = time.split_at(i);
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let (oh, om) = off[1..].split_once(':')?;
            (c, sign * (num(oh)? * 3600 + num(om)? * 60))
        } else {
            (time, 0)
        };
        let clock = clock.split('.').next()?;
        let mut hms = clock.split(':');
        let (h, mi, s) = (
            num(hms.next()?)?,
            num(hms.next()?)?,
            num(hms.next().unwrap_or("0"))?,
        );
        if hms.next().is_some() || h > 23 || mi > 59 || s > 60 {
            return None;
        }
        secs += h * 3600 + mi * 60 + s - offset;
    }
    u64::try_from(secs).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(unix_time("1970-01-01"), Some(0));
        assert_eq!(unix_time("2000-03-01"), Some(951_868_800));
        assert_eq!(unix_time("2027-01-31T12:00:00Z"), Some(1_801_396_800));
        assert_eq!(unix_time("2027-01-31T14:00:00+02:00"), Some(1_801_396_800));
        assert_eq!(unix_time("2027-01-31T12:00:00.5Z"), Some(1_801_396_800));
        assert_eq!(unix_time("2024-02-29"), Some(1_709_164_800));
        assert_eq!(unix_time("2023-02-29"), None);
        assert_eq!(unix_time("2027-13-01"), None);
        assert_eq!(unix_time("27-01-31"), None);
        assert_eq!(unix_time("tomorrow"), None);
        assert_eq!(unix_time("2027-01-31T25:00:00Z"), None);
    }

    fn keys_of(text: &str) -> Vec<String> {
        let env = [("S", "0123456789abcdef0123456789abcdef0123")];
        let text = format!("[session]\nsecret_env = \"S\"\n{text}");
        match crate::config::Config::from_toml_str(&text, "t.toml", &env) {
            Ok(_) => vec![],
            Err(e) => e.problems.iter().map(|p| p.key.clone()).collect(),
        }
    }

    #[test]
    fn tokens_and_share_keys_are_checked_by_name() {
        let sha = crate::crypto::hex(&crate::token::digest(b"secret"));
        let good = format!(
            "[[token]]\nname = \"ci\"\nsha256 = \"{sha}\"\ngroups = [\"ci\"]\nexpires = 2027-01-31\n\
             [[route]]\npath = \"/api\"\nupstream = \"demo\"\nallow_groups = [\"ci\"]\n"
        );
        assert_eq!(keys_of(&good), Vec::<String>::new());
        let env = [("S", "0123456789abcdef0123456789abcdef0123")];
        let c = crate::config::Config::from_toml_str(
            &format!("[session]\nsecret_env = \"S\"\n{good}"),
            "t.toml",
            &env,
        )
        .unwrap();
        let t = c.tokens.iter().next().unwrap();
        assert_eq!(
            (t.user.as_str(), t.expires),
            ("token:ci", Some(1_801_353_600))
        );
        assert_eq!(t.groups.as_ref().map(|g| g.header()), Some("ci"));
        assert!(!c.share.enabled);
        assert_eq!(
            keys_of("[[token]]\nname = \"a b\"\nsha256 = \"00\"\n"),
            ["token[0].name"]
        );
        assert_eq!(
            keys_of("[[token]]\nname = \"x\"\nsha256 = \"00\"\ngroups = [\"g\"]\n"),
            ["token[0].sha256"]
        );
        assert_eq!(
            keys_of(&format!("[[token]]\nname = \"x\"\nsha256 = \"{sha}\"\n")),
            ["token[0].groups"]
        );
        assert_eq!(
            keys_of(&format!(
                "[[token]]\nname = \"x\"\nsha256 = \"{sha}\"\ngroups = [\"g\"]\nexpires = \"soon\"\n"
            )),
            ["token[0].expires"]
        );
        assert_eq!(
            keys_of(&format!(
                "[[token]]\nname = \"x\"\nsecret_file = \"/nonexistent/s\"\ngroups = [\"g\"]\n\
                 [[token]]\nname = \"x\"\nsha256 = \"{sha}\"\ngroups = [\"g\"]\n"
            )),
            ["token[0].secret_file", "token[1].name"]
        );
        assert_eq!(
            keys_of("[share]\nenabled = true\ndefault_ttl = \"40d\"\nmethods = [\"G T\"]\n"),
            ["share.default_ttl", "share.methods[0]"]
        );
    }

    #[test]
    fn hex_digests() {
        let d = crate::token::digest(b"x");
        assert_eq!(parse_hex32(&crate::crypto::hex(&d)), Some(d));
        assert_eq!(parse_hex32("ab"), None);
        assert_eq!(parse_hex32(&"g".repeat(64)), None);
    }
}
