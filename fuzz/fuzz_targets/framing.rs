//! Fuzz target `framing`: feeds libFuzzer's input to [`checks::framing`],
//! the CL+TE watch on raw client bytes (see `fuzz/checks.rs`;
//! `tests/fuzz_corpus.rs` replays the seed corpus through the same
//! function).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::framing(data));
