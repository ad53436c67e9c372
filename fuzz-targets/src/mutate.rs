//! Deterministic pseudo-random and mutated inputs, for running the targets
//! without libFuzzer (on stable Rust, in `cargo test`): the same seed gives
//! the same inputs on every machine.

/// splitmix64: small, fast and good enough to pick mutations.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// A generator seeded from a name (FNV-1a of its bytes).
    pub fn from_name(name: &str) -> Self {
        let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
        Rng(hash)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            0
        } else {
            (self.next_u64() % bound as u64) as usize
        }
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }
}

/// Values that sit on boundaries, as bytes to write over an input:
/// protobuf varints (0, 1, 127, 128, `u32::MAX`, `u64::MAX`, -1 as an
/// `int64`), length prefixes that lie, and extremes of fixed-width ints.
const INTERESTING: &[&[u8]] = &[
    &[0x00],
    &[0x01],
    &[0x7f],
    &[0x80, 0x01],
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    &[
        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
    ],
    &[0xff],
    &[0x00, 0x00, 0x00, 0x80],
    &[0xff, 0xff, 0xff, 0x7f],
    &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0x7f],
    b"@w",
    b"@l",
    b"@m",
    b"fuzz",
];

/// One input: pure random bytes now and then, otherwise a seed (or a splice
/// of two) with one to four mutations.
pub fn generate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    if seeds.is_empty() || rng.one_in(12) {
        let len = rng.below(256);
        return rng.bytes(len);
    }
    let mut input = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        mutate(rng, &mut input, seeds);
    }
    input
}

/// Changes `input` in one of several ways.
pub fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    let len = input.len();
    match rng.below(10) {
        // Flip one bit.
        0 | 1 if len > 0 => {
            let at = rng.below(len);
            input[at] ^= 1 << rng.below(8);
        }
        // Set one byte.
        2 if len > 0 => {
            let at = rng.below(len);
            input[at] = rng.byte();
        }
        // Overwrite with a boundary value.
        3 => {
            let value = INTERESTING[rng.below(INTERESTING.len())];
            let at = rng.below(len + 1);
            let end = (at + value.len()).min(len);
            input.splice(at..end, value.iter().copied());
        }
        // Truncate.
        4 if len > 0 => input.truncate(rng.below(len)),
        // Delete a range.
        5 if len > 0 => {
            let at = rng.below(len);
            let end = at + 1 + rng.below((len - at).min(64));
            input.drain(at..end);
        }
        // Insert random bytes.
        6 => {
            let at = rng.below(len + 1);
            let count = 1 + rng.below(16);
            let bytes = rng.bytes(count);
            input.splice(at..at, bytes);
        }
        // Duplicate a range.
        7 if len > 0 => {
            let at = rng.below(len);
            let end = at + 1 + rng.below((len - at).min(64));
            let copy = input[at..end].to_vec();
            let to = rng.below(len + 1);
            input.splice(to..to, copy);
        }
        // Splice: this input's head, another seed's tail.
        8 if !seeds.is_empty() => {
            let other = &seeds[rng.below(seeds.len())];
            let head = rng.below(len + 1);
            let tail = rng.below(other.len() + 1);
            input.truncate(head);
            input.extend_from_slice(&other[tail..]);
        }
        // Change a byte by a small amount (a length, a tag, a count).
        _ if len > 0 => {
            let at = rng.below(len);
            let delta = rng.below(9) as u8;
            input[at] = input[at].wrapping_add(delta).wrapping_sub(4);
        }
        _ => input.push(rng.byte()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_inputs() {
        let seeds = vec![b"hello".to_vec(), vec![1, 2, 3, 4, 5, 6, 7, 8]];
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..200)
                .map(|_| generate(&mut rng, &seeds))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }
}
