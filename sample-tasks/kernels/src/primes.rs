//! Count the primes in a range with a segmented sieve of Eratosthenes.
//!
//! A workload "count the primes below N" splits into ranges, one task each,
//! and a `sum-u64` reducer adds the counts. The sieve only stores odd
//! numbers, one byte each, and works through the range in segments that fit
//! the CPU's L1 cache; crossing off uses the base primes up to √end, whose
//! next multiple is carried from one segment to the next so no division
//! happens in the hot loop.
//!
//! Memory is one segment plus the base primes: O(√end) — about 40 KiB for
//! `end` = 10⁹, but 2 GiB for `end` near `u64::MAX`, where the sandbox's
//! memory limit stops the task. Time is O(end − start) plus O(√end).

use serde::{Deserialize, Serialize};

/// Bytes per sieve segment. 32 KiB fits the L1 data cache of common CPUs,
/// where crossing off is fastest; one byte per odd number means a segment
/// covers 64 Ki integers.
const SEGMENT_BYTES: usize = 32 * 1024;

/// Input of the `primes` task: count the primes in `[start, end)`.
///
/// Half-open so that consecutive ranges split a workload without overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrimesInput {
    /// First integer of the range (included).
    pub start: u64,
    /// End of the range (excluded); a range with `end <= start` is empty.
    pub end: u64,
}

impl PrimesInput {
    /// Counts the primes of this range, see [`count_primes`].
    pub fn count(&self) -> u64 {
        count_primes(self.start, self.end)
    }
}

/// Number of primes `p` with `start <= p < end`.
///
/// Total: any `start`/`end` is accepted, an empty range counts 0.
pub fn count_primes(start: u64, end: u64) -> u64 {
    if end <= start {
        return 0;
    }
    // 2 is the only even prime; the sieve below only sees odd numbers.
    let mut count = u64::from(start <= 2 && 2 < end);
    // The first odd candidate, at least 3 because 1 is not prime.
    let first = start.max(3) | 1;
    if first >= end {
        return count;
    }
    let base_primes = odd_primes_up_to((end - 1).isqrt());
    // Candidate `i` is the odd number `first + 2 * i`.
    let candidates = (end - first).div_ceil(2);
    let mut next_multiple: Vec<u64> = base_primes
        .iter()
        .map(|&prime| first_multiple_index(prime, first))
        .collect();
    let segment_capacity =
        usize::try_from(candidates).map_or(SEGMENT_BYTES, |c| c.min(SEGMENT_BYTES));
    let mut segment = vec![1u8; segment_capacity];
    let mut low = 0u64;
    while low < candidates {
        // At most SEGMENT_BYTES, so it fits usize on every target.
        let length = (candidates - low).min(SEGMENT_BYTES as u64) as usize;
        let high = low + length as u64;
        let segment = &mut segment[..length];
        segment.fill(1);
        for (&prime, next) in base_primes.iter().zip(&mut next_multiple) {
            if *next >= high {
                continue;
            }
            // Odd multiples of `prime` are `prime` candidates apart.
            let step = prime as usize;
            // `*next` is in `[low, high)`, so the offset is below `length`.
            let mut index = (*next - low) as usize;
            while index < length {
                segment[index] = 0;
                index += step;
            }
            *next = low + index as u64;
        }
        count += segment.iter().map(|&flag| u64::from(flag)).sum::<u64>();
        low = high;
    }
    count
}

/// Candidate index of the first odd multiple of `prime` that the sieve must
/// cross off: at least `prime²` (smaller multiples have a smaller factor)
/// and at least `first`. Saturates at `u64::MAX`, i.e. "never", when that
/// multiple lies beyond `u64`.
fn first_multiple_index(prime: u32, first: u64) -> u64 {
    let prime = u128::from(prime);
    let first = u128::from(first);
    let mut multiple = (prime * prime).max(first.div_ceil(prime) * prime);
    if multiple % 2 == 0 {
        multiple += prime;
    }
    u64::try_from((multiple - first) / 2).unwrap_or(u64::MAX)
}

/// The odd primes up to `limit` included, by a plain sieve over odd numbers.
///
/// `limit` is at most `isqrt(u64::MAX)`, below 2³², so every prime fits u32.
fn odd_primes_up_to(limit: u64) -> Vec<u32> {
    if limit < 3 {
        return Vec::new();
    }
    // Index `i` stands for the odd number `2 * i + 1`; limit < 2^32 and
    // targets are at least 32-bit, so the count fits usize.
    let odd_count = (limit / 2 + 1) as usize;
    let mut is_prime = vec![true; odd_count];
    is_prime[0] = false; // 1
    let mut index = 1;
    while (2 * index as u64 + 1).pow(2) <= limit {
        if is_prime[index] {
            let prime = 2 * index + 1;
            let mut multiple = (prime * prime) / 2;
            while multiple < odd_count {
                is_prime[multiple] = false;
                multiple += prime;
            }
        }
        index += 1;
    }
    is_prime
        .iter()
        .enumerate()
        .filter(|&(_, &prime)| prime)
        // 2i+1 <= limit < 2^32.
        .map(|(index, _)| (2 * index + 1) as u32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_prime_naive(n: u64) -> bool {
        n >= 2
            && (2..)
                .take_while(|d| d * d <= n)
                .all(|d| !n.is_multiple_of(d))
    }

    #[test]
    fn known_prime_counts() {
        assert_eq!(count_primes(0, 10), 4);
        assert_eq!(count_primes(0, 100), 25);
        assert_eq!(count_primes(0, 1_000_000), 78_498);
        assert_eq!(count_primes(0, 10_000_000), 664_579);
    }

    #[test]
    fn empty_and_reversed_ranges_count_zero() {
        assert_eq!(count_primes(5, 5), 0);
        assert_eq!(count_primes(10, 3), 0);
        assert_eq!(count_primes(u64::MAX, 0), 0);
        assert_eq!(count_primes(0, 0), 0);
        assert_eq!(count_primes(0, 2), 0);
        assert_eq!(count_primes(2, 3), 1);
    }

    #[test]
    fn every_small_range_matches_a_naive_count() {
        const LIMIT: u64 = 2000;
        // primes_below[n] = number of primes < n.
        let mut primes_below = vec![0u64; LIMIT as usize + 1];
        for n in 1..=LIMIT {
            primes_below[n as usize] =
                primes_below[n as usize - 1] + u64::from(is_prime_naive(n - 1));
        }
        for end in 1..=LIMIT {
            for start in 0..end {
                let expected = primes_below[end as usize] - primes_below[start as usize];
                assert_eq!(count_primes(start, end), expected, "[{start}, {end})");
            }
        }
    }

    #[test]
    fn uneven_split_adds_up() {
        const END: u64 = 10_000_000;
        let mut bounds: Vec<u64> = (1..37u64).map(|i| (i * i * 7_919) % END).collect();
        bounds.push(0);
        bounds.push(END);
        bounds.sort_unstable();
        bounds.dedup();
        assert_eq!(bounds.len(), 38, "37 ranges");
        let total: u64 = bounds.windows(2).map(|w| count_primes(w[0], w[1])).sum();
        assert_eq!(total, 664_579);
    }

    #[test]
    fn far_range_matches_trial_division() {
        let start = 10_000_000_000;
        let end = start + 300;
        let expected = (start..end).filter(|&n| is_prime_naive(n)).count() as u64;
        assert_eq!(count_primes(start, end), expected);
    }

    #[test]
    fn segment_boundaries_do_not_lose_primes() {
        // Ranges of one or a few segments, starting at odd and even numbers.
        let span = 2 * SEGMENT_BYTES as u64;
        for (start, end) in [(1, span + 3), (span - 1, 3 * span + 1), (span, span + 2)] {
            let expected = (start..end).filter(|&n| is_prime_naive(n)).count() as u64;
            assert_eq!(count_primes(start, end), expected, "[{start}, {end})");
        }
    }

    /// π(10⁹) in 100 tasks, the benchmark workload. Slow unoptimised: run
    /// with `cargo test --release -p wasmgrid-kernels -- --ignored`.
    #[test]
    #[ignore = "takes seconds in release, minutes in debug"]
    fn pi_of_a_billion_in_100_ranges() {
        const END: u64 = 1_000_000_000;
        let total: u64 = (0..100)
            .map(|i| count_primes(i * END / 100, (i + 1) * END / 100))
            .sum();
        assert_eq!(total, 50_847_534);
    }
}
