//! Replays every committed fuzz seed (`fuzz/corpus/<target>/*`) through the
//! same checks the fuzz targets run (`fuzz/checks.rs`, included here), so
//! the properties are enforced by plain `cargo test`, without a fuzzer or a
//! nightly toolchain. Crashes the fuzzer finds are added to these
//! directories once fixed, and so become regression tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../fuzz/checks.rs"]
mod checks;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

/// Runs `check` on every file of `fuzz/corpus/<target>`; fails naming every
/// file whose check panicked.
fn replay(target: &str, check: fn(&[u8])) {
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "fuzz", "corpus", target]
        .iter()
        .collect();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "{} has only {} seeds",
        dir.display(),
        files.len()
    );
    let mut failed = Vec::new();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
            failed.push(file.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} {target} seeds fail their check (messages above): {failed:#?}",
        failed.len(),
        files.len()
    );
}

#[test]
fn redirect_seeds() {
    replay("redirect", checks::redirect);
}

#[test]
fn path_seeds() {
    replay("path", checks::path);
}

#[test]
fn host_seeds() {
    replay("host", checks::host);
}

#[test]
fn cookie_seeds() {
    replay("cookie", checks::cookie);
}

#[test]
fn address_seeds() {
    replay("address", checks::address);
}

#[test]
fn config_seeds() {
    replay("config", checks::config);
}

#[test]
fn framing_seeds() {
    replay("framing", checks::framing);
}

/// The seeds that are meant to be accepted really are, so the properties
/// about accepted values are exercised by the replay and not vacuous.
#[test]
fn seeds_reach_the_accepting_paths() {
    let policy = checks::redirect_policy();
    let accepted =
        portcullis::redirect::check("/dashboard?tab=2", checks::REDIRECT_ORIGINS[0], &policy);
    assert_eq!(accepted.as_deref(), Some("/dashboard?tab=2"));
    assert_eq!(
        portcullis::path::normalize("/public/%2e%2e/admin").as_deref(),
        Ok("/admin")
    );
    assert_eq!(
        portcullis::address::parse("  Alice@Example.COM ").as_deref(),
        Ok("alice@example.com")
    );
    let example = include_str!("../gateway.toml.example");
    assert!(
        portcullis::config::Config::from_toml_str(example, "fuzz.toml", &checks::CONFIG_ENV)
            .is_ok()
    );
    // A seed cookie made with the check's key verifies (fuzz/seed.py).
    let key = portcullis::crypto::Key::new(checks::COOKIE_KEY);
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "fuzz", "corpus", "cookie"]
        .iter()
        .collect();
    let verified = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| std::fs::read(e.unwrap().path()).ok())
        .filter(|d| portcullis::session::verify_cookie(&key, &String::from_utf8_lossy(d)).is_some())
        .count();
    assert!(verified >= 2, "only {verified} seed cookies verify");
}

#[test]
fn h1_request_seeds() {
    replay("h1_request", checks::h1_request);
}

#[test]
fn h1_answer_seeds() {
    replay("h1_answer", |data| {
        checks::h1_answer(data);
    });
}
