//! Fuzz target `h1_answer`: feeds libFuzzer's input to
//! [`checks::h1_answer`], the raw upstream client's reading of an answer
//! and its reuse verdict, for any split into reads (see `fuzz/checks.rs`;
//! `tests/fuzz_corpus.rs` replays the seed corpus through the same
//! function, and `tests/upstream_reuse.rs` runs it on generated answers).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::h1_answer(data);
});
