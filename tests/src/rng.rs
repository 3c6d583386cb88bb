//! A small deterministic generator (splitmix64) for generated corpora and benchmark tables:
//! the same seed gives the same addresses on every machine.

/// splitmix64.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    #[expect(
        clippy::should_implement_trait,
        reason = "an endless generator, not an Iterator"
    )]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (slightly biased for large `n`; fine for test data).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
