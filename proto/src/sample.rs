//! A tiny deterministic generator of random-but-valid messages, for property
//! tests and fuzzing (feature `sample`). Not for anything that needs real randomness.

use bytes::Bytes;

/// A xorshift64* generator seeded by the caller.
#[derive(Debug, Clone)]
pub struct SampleRng {
    state: u64,
}

impl SampleRng {
    /// A generator from a seed (any value, zero included).
    pub fn new(seed: u64) -> Self {
        SampleRng { state: seed ^ 0x9e37_79b9_7f4a_7c15 | 1 }
    }

    /// The next 64 random bits.
    pub fn u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.u64() % n.max(1)
    }

    /// A fair coin.
    pub fn bool(&mut self) -> bool {
        self.u64() & 1 == 1
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// Any float, NaNs and infinities included (the codec must keep their bits).
    pub fn f64(&mut self) -> f64 {
        f64::from_bits(self.u64())
    }

    /// An array length; shorter the deeper we are, so samples stay small.
    pub fn len(&mut self, depth: u32) -> usize {
        let max = if depth >= 3 { 2 } else { 4 };
        self.below(max) as usize
    }

    /// A short string, sometimes empty, sometimes multi-byte UTF-8.
    pub fn string(&mut self) -> String {
        const PARTS: &[&str] = &["a", "topic", "-", "_", ".", "é", "日本", "0", "Z", " "];
        let n = self.below(6);
        (0..n).map(|_| PARTS[self.below(PARTS.len() as u64) as usize]).collect()
    }

    /// A few random bytes.
    pub fn bytes(&mut self) -> Bytes {
        let n = self.below(24) as usize;
        (0..n).map(|_| self.u64() as u8).collect::<Vec<u8>>().into()
    }
}
