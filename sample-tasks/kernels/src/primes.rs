//! Count the primes in a range with a segmented sieve of Eratosthenes.
//!
//! A workload "count the primes below N" splits into ranges, one task each,
//! and a `sum-u64` reducer adds the counts. The sieve only stores odd
//! numbers, one byte each, and works through the range in segments that fit
//! the CPU's L1 cache; crossing off uses the base primes up to √end, whose
//! next multiple is carried from one segment to the next so no division
//! happens in the hot loop.
//!
//! The base primes are handled by size:
//!
//! - 3, 5, 7, 11 and 13 are never crossed off: a segment starts as a copy of
//!   a pattern where their multiples are crossed off already (a presieve).
//! - The others below an eighth of a segment cross off in a loop per prime,
//!   four flags per trip ([`cross_off`]).
//! - Those up to a segment's length have at most 8, 4 or 2 multiples in
//!   one: [`sieve_few`] stores that many per prime, without a loop.
//! - Larger ones have at most one multiple per segment, most often none, and
//!   near 10¹⁰ they are two thirds of the base primes: they wait in
//!   [`Buckets`], one per segment, and each segment only sees the primes
//!   that cross off one of its flags (a bucket sieve).
//!
//! A segment's flags are then counted by [`count_flags`], the one function
//! with a form per target: wasm's 128-bit SIMD in the task, words that
//! LLVM vectorises in the native twin. Everything else is the same code.
//!
//! Memory is one segment (32 KiB), the pattern (47 KiB) and the base primes
//! with their offsets: O(√end), about 120 KiB for `end` = 10⁹, but 2 GiB for
//! `end` near `u64::MAX`, where the sandbox's memory limit stops the task.
//! Time is O(end − start) plus O(√end).

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Bytes per sieve segment. 32 KiB fits the L1 data cache of common CPUs,
/// where crossing off is fastest; one byte per odd number means a segment
/// covers 64 Ki integers.
const SEGMENT_BYTES: usize = 32 * 1024;

/// The smallest odd primes, whose multiples no segment crosses off: each
/// segment starts as a copy of [`presieved_pattern`], where they are
/// crossed off already.
const PRESIEVED: [u32; 5] = [3, 5, 7, 11, 13];

/// The product of [`PRESIEVED`] (15 015): the pattern of odd numbers free of
/// their factors repeats every `PERIOD` candidates.
const PERIOD: usize = {
    let mut period = 1;
    let mut i = 0;
    while i < PRESIEVED.len() {
        period *= PRESIEVED[i] as usize;
        i += 1;
    }
    period
};

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
    count_in_segments::<SEGMENT_BYTES>(start, end)
}

/// [`count_primes`] with segments of `SEGMENT` candidates (a power of two;
/// tests use small ones so that every path runs on ranges they can check).
fn count_in_segments<const SEGMENT: usize>(start: u64, end: u64) -> u64 {
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
    // The presieved primes are crossed off in the pattern as their own
    // multiples: counted here instead.
    count += PRESIEVED
        .iter()
        .filter(|&&prime| first <= u64::from(prime) && u64::from(prime) < end)
        .count() as u64;
    let base_primes = odd_primes_up_to((end - 1).isqrt());
    let largest_presieved = PRESIEVED[PRESIEVED.len() - 1];
    let sieved = &base_primes[base_primes.partition_point(|&p| p <= largest_presieved)..];
    let (small, large) = sieved.split_at(sieved.partition_point(|&p| (p as usize) < SEGMENT));
    // Candidate `i` is the odd number `first + 2 * i`.
    let candidates = (end - first).div_ceil(2);
    // Below 2¹⁵, a small prime's square is below 2³⁰: the first
    // multiple's index fits u32, and so does every later offset.
    let mut small: Vec<SmallPrime> = small
        .iter()
        .map(|&prime| SmallPrime {
            prime,
            offset: u32::try_from(first_multiple_index(prime, first)).unwrap_or(u32::MAX),
        })
        .collect();
    let mut buckets = Buckets::<SEGMENT>::new(large, first);
    // Small primes of at least SEGMENT / k have at most k multiples in a
    // segment: those of at least an eighth of it go to `sieve_few`.
    let looped = below(&small, SEGMENT / 8);
    let (looped, few) = small.split_at_mut(looped);
    let (eight, few) = few.split_at_mut(below(few, SEGMENT / 4));
    let (four, two) = few.split_at_mut(below(few, SEGMENT / 2));
    // A whole segment even for a shorter range or last segment, and one
    // flag more: the buckets and `sieve_few` then store at any offset up to
    // SEGMENT without a check (past the range's end, into flags nobody
    // counts).
    let mut flags = vec![1u8; SEGMENT + 1];
    const { assert!(SEGMENT <= SEGMENT_BYTES, "the pattern covers a segment") };
    let pattern = presieved_pattern();
    // Where the pattern's phase stands at candidate 0, the odd number
    // `first`: the pattern's index `j` stands for the odd number `2j + 1`.
    let mut phase = ((first / 2) % PERIOD as u64) as usize;
    let mut low = 0u64;
    let mut number = 0u64;
    while low < candidates {
        // At most SEGMENT, so it fits usize on every target.
        let length = (candidates - low).min(SEGMENT as u64) as usize;
        let high = low + length as u64;
        let segment = &mut flags[..length];
        segment.copy_from_slice(&pattern[phase..phase + length]);
        phase = (phase + SEGMENT) % PERIOD;
        sieve_segment(segment, looped);
        sieve_few::<SEGMENT, 8>(&mut flags, length, eight);
        sieve_few::<SEGMENT, 4>(&mut flags, length, four);
        sieve_few::<SEGMENT, 2>(&mut flags, length, two);
        buckets.sieve(&mut flags[..SEGMENT], number);
        let segment = &flags[..length];
        count += count_flags(segment);
        low = high;
        number += 1;
    }
    count
}

/// How many of `primes` (in increasing order) are below `bound`.
fn below(primes: &[SmallPrime], bound: usize) -> usize {
    primes.partition_point(|entry| (entry.prime as usize) < bound)
}

/// [`PERIOD`] + [`SEGMENT_BYTES`] flags of odd numbers, from 1 on, with
/// the multiples of [`PRESIEVED`] crossed off: any segment's start is one
/// copy out of it (a `memory.copy` in wasm, at the host's speed), and
/// crossing off skips the primes that would store the most. Built once per
/// process.
fn presieved_pattern() -> &'static [u8] {
    static PATTERN: OnceLock<Vec<u8>> = OnceLock::new();
    PATTERN.get_or_init(|| {
        let mut pattern = vec![1u8; PERIOD + SEGMENT_BYTES];
        for prime in PRESIEVED {
            // `2j + 1` is an odd multiple of `prime` from `j = (prime - 1) / 2` on.
            let prime = prime as usize;
            let mut index = prime / 2;
            while index < pattern.len() {
                pattern[index] = 0;
                index += prime;
            }
        }
        pattern
    })
}

/// The base primes of at least a segment's length, each in the bucket of
/// the segment that holds its next multiple, as `prime << 32 | offset` (the
/// multiple's index in that segment).
///
/// A prime goes at most `prime / SEGMENT + 1` segments ahead, so a ring of
/// buckets covers every segment a prime can be waiting for. A prime whose
/// first multiple is its square, far ahead when the range starts low,
/// waits in `pending` (in increasing order of that square) until the sieve
/// reaches it.
#[derive(Debug)]
struct Buckets<const SEGMENT: usize> {
    /// Bucket of segment `n` is `ring[n % ring.len()]`; the length is a
    /// power of two.
    ring: Vec<Vec<u64>>,
    /// Large primes not yet in the ring and their first multiple's index,
    /// in increasing order of both.
    pending: Vec<(u32, u64)>,
    /// How many of `pending` are in the ring already.
    activated: usize,
}

impl<const SEGMENT: usize> Buckets<SEGMENT> {
    fn new(large: &[u32], first: u64) -> Self {
        let largest = large.last().map_or(0, |&p| u64::from(p));
        let ring_len = (largest / SEGMENT as u64 + 2).next_power_of_two() as usize;
        let mut buckets = Buckets {
            ring: vec![Vec::new(); ring_len],
            pending: Vec::new(),
            activated: 0,
        };
        let window = (ring_len as u64).saturating_mul(SEGMENT as u64);
        for &prime in large {
            let index = first_multiple_index(prime, first);
            if index < window {
                buckets.insert(prime, index);
            } else {
                // Only primes whose first multiple is their square get here,
                // and squares grow with the prime: `pending` stays sorted.
                buckets.pending.push((prime, index));
            }
        }
        buckets
    }

    /// Files `prime` under the segment that holds candidate `index`.
    fn insert(&mut self, prime: u32, index: u64) {
        let mask = self.ring.len() as u64 - 1;
        let bucket = ((index / SEGMENT as u64) & mask) as usize;
        let offset = index % SEGMENT as u64;
        self.ring[bucket].push((u64::from(prime) << 32) | offset);
    }

    /// Crosses off in segment number `number` (`flags`, SEGMENT long
    /// whatever the segment's length) the multiples its bucket holds, and
    /// files each of those primes under its next segment.
    #[inline(never)]
    fn sieve(&mut self, flags: &mut [u8], number: u64) {
        let Ok(flags) = <&mut [u8; SEGMENT]>::try_from(flags) else {
            unreachable!("the flags of a segment are SEGMENT long");
        };
        let segment_end = (number + 1).saturating_mul(SEGMENT as u64);
        while let Some(&(prime, index)) = self.pending.get(self.activated) {
            if index >= segment_end {
                break;
            }
            self.insert(prime, index);
            self.activated += 1;
        }
        let mask = self.ring.len() as u64 - 1;
        let current = (number & mask) as usize;
        // Every prime is at least SEGMENT, so none goes back into the
        // bucket being emptied.
        let entries = std::mem::take(&mut self.ring[current]);
        // Room in every bucket for all these entries, so the loop below
        // stores without a capacity check: a call to grow a vector, even one
        // never taken, makes Cranelift keep the loop's values on the stack.
        for bucket in &mut self.ring {
            bucket.reserve(entries.len());
        }
        let ring = self.ring.as_mut_ptr();
        let mut file = |entry: u64| {
            let prime = entry >> 32;
            let offset = entry & u64::from(u32::MAX);
            // Below SEGMENT (an offset in a segment): within `flags`, past
            // the range's end in a short last segment.
            flags[offset as usize % SEGMENT] = 0;
            let next = offset + prime;
            let bucket = ((number + next / SEGMENT as u64) & mask) as usize;
            // SAFETY: `bucket` is masked below the ring's length (a power of
            // two), and it is not `current`, whose vector was taken out; it
            // had room for `entries.len()` more, and gets at most that many.
            unsafe {
                let bucket = &mut *ring.add(bucket);
                let len = bucket.len();
                bucket
                    .as_mut_ptr()
                    .add(len)
                    .write((prime << 32) | (next % SEGMENT as u64));
                bucket.set_len(len + 1);
            }
        };
        // Two entries per loop trip: the sandbox's code for this loop
        // reloads the loop's invariants from the stack after each fuel
        // check, and this halves the checks (−2 % of the task's time in the
        // sandbox; four per trip gained nothing more). Natively the same.
        let (pairs, rest) = entries.as_chunks::<2>();
        for &[a, b] in pairs {
            file(a);
            file(b);
        }
        for &entry in rest {
            file(entry);
        }
        let mut emptied = entries;
        emptied.clear();
        self.ring[current] = emptied;
    }
}

/// A base prime below the segment length and the index of its next
/// multiple, counted from the start of the segment being sieved.
#[derive(Debug, Clone, Copy)]
struct SmallPrime {
    prime: u32,
    offset: u32,
}

/// Crosses off in `segment` the multiples of every small prime whose next
/// multiple lies in it, and carries each prime's offset over to the next
/// segment.
///
/// Never inlined, here and in [`count_flags`]: inlined into the task's one
/// big `main`, the loops' few values (the slice's base and length, the
/// index, the step) compete for registers with everything else there, and
/// Cranelift, a simpler register allocator than LLVM's, reloads them from
/// the stack at every store. On their own the loops keep more of them in
/// registers. For the same reason each prime's state is one pair of `u32`
/// in one array, relative to the segment: a pointer and a length are all
/// the loop carries. One call per segment, not per prime: a wasm call costs
/// a prologue with stack and fuel bookkeeping.
#[inline(never)]
fn sieve_segment(segment: &mut [u8], small: &mut [SmallPrime]) {
    // At most SEGMENT_BYTES (2¹⁵), so it fits u32.
    let length = segment.len() as u32;
    for entry in small {
        if entry.offset >= length {
            // Its square lies in a later segment.
            entry.offset -= length;
            continue;
        }
        // Odd multiples of `prime` are `prime` candidates apart.
        let index = cross_off(segment, entry.offset as usize, entry.prime as usize);
        // Below `length + prime`, both below 2¹⁵.
        entry.offset = index as u32 - length;
    }
}

/// Crosses off in a segment of `length` flags (at most SEGMENT; `flags`
/// is longer) the multiples of `primes`, all of at least `SEGMENT / K`, so
/// with at most `K` multiples in it, and carries each prime's offset over
/// to the next segment.
///
/// `K` stores per prime, those past the segment's end into flags nobody
/// counts, and no loop of their own: most of these primes cross off one to
/// three flags, and a loop per prime costs more than its stores, natively
/// in mispredicted exits, in the sandbox also in fuel checks and in the
/// values Cranelift keeps on the stack around them. The offsets advance by
/// selects, without branches.
#[inline(never)]
fn sieve_few<const SEGMENT: usize, const K: usize>(
    flags: &mut [u8],
    length: usize,
    primes: &mut [SmallPrime],
) {
    assert!(flags.len() > SEGMENT && length <= SEGMENT);
    let flags = flags.as_mut_ptr();
    for entry in primes {
        let prime = entry.prime as usize;
        let mut at = entry.offset as usize;
        for _ in 0..K {
            // SAFETY: at most SEGMENT, and `flags` is longer.
            unsafe { *flags.add(at.min(SEGMENT)) = 0 };
            at += if at < length { prime } else { 0 };
        }
        // K · prime ≥ SEGMENT ≥ length: `at` ends past the segment.
        entry.offset = (at - length) as u32;
    }
}

/// Clears every `step`-th flag of `segment` from `index` on; returns the
/// first index past the end, where the next segment goes on.
///
/// Four stores per loop trip. The loop is three instructions per store, so
/// whatever a trip costs besides the store weighs heavily: natively a
/// compare and a branch, in a metered sandbox also the fuel check wasmtime
/// puts at every loop header. Four stores a trip pay those once for four
/// (wasm compilers do not unroll loops themselves).
#[inline(always)]
fn cross_off(segment: &mut [u8], index: usize, step: usize) -> usize {
    let length = segment.len();
    // Below this, the trip's last store `index + 3 * step` is in bounds.
    // A step too large for that leaves nothing to unroll, and the plain
    // loop does the rest. Steps are small primes (below 2¹⁵): `3 * step`
    // does not overflow.
    let unrolled_end = length.saturating_sub(3 * step);
    let flags = segment.as_mut_ptr();
    // `at` walks by `step` and ends past the segment, where it is only
    // compared, never dereferenced: wrapping arithmetic. One pointer and no
    // index: in the metered sandbox the loops then carry few enough values
    // to keep them all in registers.
    let unrolled = flags.wrapping_add(unrolled_end);
    let end = flags.wrapping_add(length);
    let mut at = flags.wrapping_add(index);
    while at < unrolled {
        // SAFETY: `at` is below `flags + unrolled_end`, with
        // `unrolled_end = length - 3 * step`, so the four stores
        // `at + k * step` (k ≤ 3) are below `flags + length`.
        unsafe {
            *at = 0;
            *at.add(step) = 0;
            *at.add(2 * step) = 0;
            *at.add(3 * step) = 0;
        }
        at = at.wrapping_add(4 * step);
    }
    while at < end {
        // SAFETY: `at` is below `flags + length`, in `segment`.
        unsafe { *at = 0 };
        at = at.wrapping_add(step);
    }
    at as usize - flags as usize
}

/// Number of flags set in `segment`, whose flags are all 0 or 1.
///
/// Eight flags at a time, as one little-endian `u64` whose bytes add up
/// without carrying from one into the next (each byte of the running sum
/// stays below 256 over a block of [`WORDS_PER_SUM`] words), and four
/// words per loop trip: no check per word of when to fold the sum. The
/// compiler vectorises it.
#[inline(never)]
#[cfg(not(target_arch = "wasm32"))]
fn count_flags(segment: &[u8]) -> u64 {
    let mut count = 0;
    for block in segment.chunks(8 * WORDS_PER_SUM) {
        let (quads, rest) = block.as_chunks::<32>();
        let mut sum = 0u64;
        for quad in quads {
            let (words, _) = quad.as_chunks::<8>();
            sum += u64::from_le_bytes(words[0])
                + u64::from_le_bytes(words[1])
                + u64::from_le_bytes(words[2])
                + u64::from_le_bytes(words[3]);
        }
        count += byte_total(sum) + rest.iter().map(|&flag| u64::from(flag)).sum::<u64>();
    }
    count
}

/// Number of flags set in `segment`, whose flags are all 0 or 1: the
/// sandbox's form of the native [`count_flags`], with wasm's 128-bit SIMD.
///
/// LLVM does not vectorise for wasm unless told, and the native form's
/// words took a sandboxed task 3.4× the native time (5 % of its profile).
/// Here sixteen flags add up in one `i8x16.add`, four vectors per loop
/// trip, folded into 32-bit lanes once per block of [`VECTORS_PER_SUM`]
/// vectors (each byte lane then holds at most 252). SIMD is part of
/// WebAssembly 2.0, which wasmtime runs on x86-64 and aarch64; integer SIMD
/// is deterministic, so replicas still agree.
#[inline(never)]
#[cfg(target_arch = "wasm32")]
#[target_feature(enable = "simd128")]
fn count_flags(segment: &[u8]) -> u64 {
    use core::arch::wasm32::{
        u8x16_add, u8x16_splat, u16x8_extadd_pairwise_u8x16, u32x4_extadd_pairwise_u16x8,
        u32x4_extract_lane, v128,
    };
    let load = |bytes: &[u8; 16]| -> v128 {
        // SAFETY: `bytes` is 16 readable bytes, and every bit pattern is a
        // `v128`.
        unsafe { bytes.as_ptr().cast::<v128>().read_unaligned() }
    };
    let mut count = 0u64;
    for block in segment.chunks(16 * VECTORS_PER_SUM) {
        let (quads, rest) = block.as_chunks::<64>();
        let mut sum = u8x16_splat(0);
        for quad in quads {
            let (vectors, _) = quad.as_chunks::<16>();
            sum = u8x16_add(
                u8x16_add(sum, load(&vectors[0])),
                u8x16_add(
                    load(&vectors[1]),
                    u8x16_add(load(&vectors[2]), load(&vectors[3])),
                ),
            );
        }
        let lanes = u32x4_extadd_pairwise_u16x8(u16x8_extadd_pairwise_u8x16(sum));
        let folded = u32x4_extract_lane::<0>(lanes)
            + u32x4_extract_lane::<1>(lanes)
            + u32x4_extract_lane::<2>(lanes)
            + u32x4_extract_lane::<3>(lanes);
        count += u64::from(folded) + rest.iter().map(|&flag| u64::from(flag)).sum::<u64>();
    }
    count
}

/// Vectors of 0/1 bytes that the wasm [`count_flags`] adds before it folds
/// the sum: each byte lane then holds at most 252, and a block is whole
/// loop trips of four.
#[cfg(target_arch = "wasm32")]
const VECTORS_PER_SUM: usize = 252;

/// Words of 0/1 bytes that [`count_flags`] adds before it folds the sum: each
/// byte then holds at most 252, and a block is whole loop trips of four.
#[cfg(not(target_arch = "wasm32"))]
const WORDS_PER_SUM: usize = 252;

/// The sum of the eight bytes of `word`.
#[cfg(not(target_arch = "wasm32"))]
fn byte_total(word: u64) -> u64 {
    // Pairs of bytes into four 16-bit lanes (each at most 510), then the
    // lanes into the top 16 bits (at most 2040, no overflow).
    let lanes = (word & 0x00ff_00ff_00ff_00ff) + ((word >> 8) & 0x00ff_00ff_00ff_00ff);
    lanes.wrapping_mul(0x0001_0001_0001_0001) >> 48
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

    /// `primes_below[n]` = the number of primes below `n`, for `n <= limit`.
    fn naive_prime_counts(limit: u64) -> Vec<u64> {
        let mut primes_below = vec![0u64; limit as usize + 1];
        for n in 1..=limit {
            primes_below[n as usize] =
                primes_below[n as usize - 1] + u64::from(is_prime_naive(n - 1));
        }
        primes_below
    }

    #[test]
    fn every_small_range_matches_a_naive_count() {
        const LIMIT: u64 = 2000;
        let primes_below = naive_prime_counts(LIMIT);
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
    fn flags_are_counted_in_every_length_and_pattern() {
        for length in [
            0,
            1,
            7,
            8,
            9,
            31,
            32,
            33,
            WORDS_PER_SUM * 8 - 1,
            WORDS_PER_SUM * 8,
            WORDS_PER_SUM * 8 + 9,
            WORDS_PER_SUM * 8 + 40,
            3 * WORDS_PER_SUM * 8 + 31,
            SEGMENT_BYTES,
        ] {
            let all = vec![1u8; length];
            assert_eq!(count_flags(&all), length as u64, "all set, {length}");
            let some: Vec<u8> = (0..length).map(|i| u8::from(i % 3 == 0)).collect();
            assert_eq!(
                count_flags(&some),
                length.div_ceil(3) as u64,
                "every third, {length}"
            );
        }
    }

    #[test]
    fn crossing_off_clears_exactly_every_step() {
        for (length, start, step) in [
            (100, 0, 1),
            (100, 5, 7),
            (100, 99, 3),
            (10, 2, 40),
            (64, 1, 21),
        ] {
            let mut segment = vec![1u8; length];
            let next = cross_off(&mut segment, start, step);
            let expected: Vec<u8> = (0..length)
                .map(|i| u8::from(i < start || (i - start) % step != 0))
                .collect();
            assert_eq!(
                segment, expected,
                "length {length}, start {start}, step {step}"
            );
            assert!(next >= length && next < length + step && (next - start).is_multiple_of(step));
        }
    }

    #[test]
    fn few_multiples_are_crossed_off_exactly_and_carried_over() {
        const SEGMENT: usize = 64;
        fn check<const K: usize>(primes: &[u32]) {
            for &prime in primes {
                assert!(prime as usize * K >= SEGMENT);
                for length in [SEGMENT, 40, 1] {
                    // Offsets in the segment, at its end, and a square ahead.
                    for offset in [0, 1, prime - 1, 63, 64, 200] {
                        let mut flags = vec![1u8; SEGMENT + 1];
                        let mut entry = [SmallPrime { prime, offset }];
                        sieve_few::<SEGMENT, K>(&mut flags, length, &mut entry);
                        let crossed = |i: usize| {
                            i >= offset as usize
                                && (i - offset as usize).is_multiple_of(prime as usize)
                        };
                        let expected: Vec<u8> =
                            (0..length).map(|i| u8::from(!crossed(i))).collect();
                        let case =
                            format!("K {K}, prime {prime}, offset {offset}, length {length}");
                        assert_eq!(flags[..length], expected[..], "{case}");
                        // The next multiple, counted from the next segment.
                        let next = (offset as usize..)
                            .step_by(prime as usize)
                            .find(|&i| i >= length)
                            .expect("a multiple past the segment");
                        assert_eq!(entry[0].offset as usize, next - length, "{case}");
                    }
                }
            }
        }
        check::<8>(&[11, 13]);
        check::<4>(&[17, 19, 31]);
        check::<2>(&[37, 61]);
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

    #[test]
    fn small_segments_take_every_path_and_match_a_naive_count() {
        // With segments of 16 or 64 candidates most base primes of these
        // ranges are large: they go through the buckets, the pending list
        // (their square lies ahead) and the ring's wrap-around.
        const LIMIT: u64 = 5000;
        let primes_below = naive_prime_counts(LIMIT);
        for end in (1..=LIMIT).step_by(19) {
            for start in (0..end).step_by(23) {
                let expected = primes_below[end as usize] - primes_below[start as usize];
                assert_eq!(
                    count_in_segments::<16>(start, end),
                    expected,
                    "16: [{start}, {end})"
                );
                assert_eq!(
                    count_in_segments::<64>(start, end),
                    expected,
                    "64: [{start}, {end})"
                );
            }
        }
    }

    #[test]
    fn large_base_primes_cross_off_across_segments() {
        // √(2³² + 70 000) > 2¹⁶: base primes up to 65 537, most of them
        // larger than a segment, over three full segments and a short one.
        let (start, end) = ((1u64 << 32) - 70_000, (1u64 << 32) + 70_000);
        let divisors = odd_primes_up_to((end - 1).isqrt());
        let expected = (start..end)
            .filter(|&n| n % 2 == 1 && divisors.iter().all(|&d| !n.is_multiple_of(u64::from(d))))
            .count() as u64;
        assert_eq!(count_primes(start, end), expected);
        assert_eq!(count_in_segments::<1024>(start, end), expected);
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
