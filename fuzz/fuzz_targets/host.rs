//! Fuzz target `host`: feeds libFuzzer's input to [`checks::host`], which
//! panics when a property fails (see `fuzz/checks.rs` for the properties
//! and the threat model; `tests/fuzz_corpus.rs` replays the seed corpus
//! through the same function).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::host(data));
