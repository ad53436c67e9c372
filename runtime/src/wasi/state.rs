//! The per-task state behind the host calls: stdin, captured stdout/stderr,
//! the virtual clock, the seeded random stream and the memory cap.

use sha2::{Digest, Sha256};
use wasmtime::Memory;

use crate::limiter::MemoryCap;

/// Fuel charged for every host call, whatever it does: a host call is never
/// free, or a task could hide work in a loop of cheap-looking calls.
pub(crate) const HOST_CALL_FUEL: u64 = 50;
/// Fuel charged per byte a host call moves (stdin, stdout, stderr, random).
pub(crate) const HOST_BYTE_FUEL: u64 = 1;

/// Virtual wall clock origin: 2025-01-01T00:00:00Z in nanoseconds. Tasks see
/// time advance from here with the work they do, the same on every machine.
pub(crate) const VIRTUAL_EPOCH_NS: u64 = 1_735_689_600_000_000_000;

/// Everything a running task's host calls read and write.
pub(crate) struct TaskState {
    pub(crate) stdin: Vec<u8>,
    pub(crate) stdin_pos: usize,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    pub(crate) max_stdout: u64,
    pub(crate) max_stderr: u64,
    pub(crate) random: SeededRandom,
    /// Virtual nanoseconds the task slept (`poll_oneoff` on a clock).
    pub(crate) slept_ns: u64,
    /// Host calls made: the virtual clock's tick when fuel is off.
    pub(crate) host_calls: u64,
    /// The task's exported memory, set after instantiation.
    pub(crate) memory: Option<Memory>,
    pub(crate) limiter: MemoryCap,
    /// Fuel given to `_start`; `None` when metering is off.
    pub(crate) fuel_budget: Option<u64>,
}

impl TaskState {
    pub(crate) fn new(
        stdin: Vec<u8>,
        max_stdout: u64,
        max_stderr: u64,
        seed: u64,
        limiter: MemoryCap,
    ) -> Self {
        TaskState {
            stdin,
            stdin_pos: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
            max_stdout,
            max_stderr,
            random: SeededRandom::new(seed),
            slept_ns: 0,
            host_calls: 0,
            memory: None,
            limiter,
            fuel_budget: None,
        }
    }
}

/// The task ended itself with `proc_exit(code)`.
#[derive(Debug, thiserror::Error)]
#[error("task exited with code {0}")]
pub(crate) struct ProcExit(pub(crate) i32);

/// The task wrote past the stdout or stderr cap.
#[derive(Debug, thiserror::Error)]
#[error("task output exceeded its cap")]
pub(crate) struct OutputCapExceeded;

/// The deterministic random stream behind `random_get`: SHA-256 in counter
/// mode, keyed by the task seed. Not for cryptography; for reproducibility:
/// the same seed yields the same bytes on every machine.
pub(crate) struct SeededRandom {
    key: [u8; 32],
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl SeededRandom {
    pub(crate) fn new(seed: u64) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"wasmgrid-random/1");
        hasher.update(seed.to_le_bytes());
        SeededRandom {
            key: hasher.finalize().into(),
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }

    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        for byte in out {
            if self.used == self.block.len() {
                let mut hasher = Sha256::new();
                hasher.update(self.key);
                hasher.update(self.counter.to_le_bytes());
                self.block = hasher.finalize().into();
                self.counter += 1;
                self.used = 0;
            }
            *byte = self.block[self.used];
            self.used += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_random_is_reproducible_and_seed_dependent() {
        let (mut a, mut b, mut c) = (
            SeededRandom::new(7),
            SeededRandom::new(7),
            SeededRandom::new(8),
        );
        let (mut x, mut y, mut z) = ([0u8; 100], [0u8; 100], [0u8; 100]);
        a.fill(&mut x[..33]);
        a.fill(&mut x[33..]);
        b.fill(&mut y);
        c.fill(&mut z);
        assert_eq!(x, y, "chunking must not change the stream");
        assert_ne!(x, z);
    }
}
