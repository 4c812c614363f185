//! `[assertion]`: checked, and its key files read (so again on every
//! reload). Present means on, unless `enabled = false`. Every problem is
//! named by its key; a key file's problem names the file and what it
//! holds (`assertion.signing_key_file: "old.pem": an RSA key; …`).

use std::path::PathBuf;

use super::error::Problems;
use super::raw::{OneOrMany, RawAssertion};
use super::PublicUrl;
use crate::assertion::{keys, Algorithm, Settings};

const KEY: &str = "assertion.signing_key_file";

pub(super) fn settings(
    raw: Option<RawAssertion>,
    public_url: Option<&PublicUrl>,
    p: &mut Problems,
) -> Option<Settings> {
    let raw = raw?;
    if raw.enabled == Some(false) {
        return None;
    }
    let algorithm = match raw.algorithm.as_deref() {
        None => Some(Algorithm::Es256),
        Some(a) => {
            let parsed = Algorithm::parse(a);
            if parsed.is_none() {
                p.add(
                    "assertion.algorithm",
                    format!("{a:?} is not \"ES256\" or \"EdDSA\""),
                );
            }
            parsed
        }
    };
    let issuer = match raw.issuer {
        Some(i) if i.trim().is_empty() => {
            p.add("assertion.issuer", "is empty");
            None
        }
        Some(i) => Some(i),
        None => public_url.map(PublicUrl::origin),
    };
    let files: Vec<String> = match raw.signing_key_file {
        None => {
            p.add(
                KEY,
                "is missing: one PKCS#8 PEM key file, or a list (the first signs); make one with `portcullis keys generate --out FILE`",
            );
            return None;
        }
        Some(OneOrMany::One(f)) => vec![f],
        Some(OneOrMany::Many(list)) => list,
    };
    if files.is_empty() {
        p.add(KEY, "is an empty list: name at least one key file");
        return None;
    }
    let mut keys = Vec::new();
    for file in &files {
        let read = std::fs::read_to_string(file)
            .map_err(|e| format!("{file:?}: cannot read it: {e}"))
            .and_then(|text| keys::parse_pem(&text).map_err(|m| format!("{file:?}: {m}")));
        match read {
            Ok(k) if keys.contains(&k) => {
                p.add(KEY, format!("{file:?}: the same key is listed twice"));
            }
            Ok(k) => keys.push(k),
            Err(m) => p.add(KEY, m),
        }
    }
    if keys.len() != files.len() {
        return None;
    }
    let algorithm = algorithm?;
    if let Some(first) = keys.first() {
        if first.algorithm() != algorithm {
            p.add(
                KEY,
                format!(
                    "{:?} is a {} key, but assertion.algorithm is {}: the first key signs",
                    files[0],
                    first.algorithm().name(),
                    algorithm.name()
                ),
            );
            return None;
        }
    }
    Some(Settings {
        issuer: issuer?,
        algorithm,
        keys,
        key_files: files.into_iter().map(PathBuf::from).collect(),
    })
}
