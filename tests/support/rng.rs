//! Test helper: a small deterministic random number generator
//! (xorshift64*), so generated-input tests need no extra crate and a
//! failure names its seed.
//!
//! Plain module file (no `mod` declarations) so other test crates can
//! include it alone (`mod support { pub mod rng; }`).
#![allow(dead_code)]

/// The generator's state; seed it with any number but 0.
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// One of `items`.
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}
