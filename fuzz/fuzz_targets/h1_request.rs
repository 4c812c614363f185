//! Fuzz target `h1_request`: feeds libFuzzer's input to
//! [`checks::h1_request`], the request heads the gateway's own HTTP/1.1
//! loop takes (see `fuzz/checks.rs`; `tests/fuzz_corpus.rs` replays the
//! seed corpus through the same function).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::h1_request(data));
