//! The resource limits one task runs under, and why each default has its value.

use std::time::Duration;

/// Upper bound on [`Limits::max_stack_bytes`].
///
/// Tasks run on executor threads whose native stack must hold the whole wasm
/// stack plus host headroom; 8 MiB keeps thread reservations modest while
/// allowing deep recursion that real programs need.
pub const MAX_STACK_BYTES: usize = 8 << 20;

/// Lower bound on [`Limits::max_stack_bytes`]: below this even `_start` of a
/// Rust program with its std runtime cannot run.
pub const MIN_STACK_BYTES: usize = 64 << 10;

/// The hard limits a task runs under. Every limit ends the task with its own
/// [`Status`](crate::Status) when reached; none can crash the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Cap on the task's linear memory, in bytes. Growth beyond it ends the
    /// task with `MemoryLimit`: a volunteer's machine must never swap or OOM
    /// because of a task.
    pub memory_bytes: u64,
    /// Fuel (wasm operators, plus host I/O; see `docs/runtime.md`) the task
    /// may consume. Deterministic, so the same task runs out at the same point
    /// everywhere, and it is what the issuer is billed for.
    pub fuel: u64,
    /// Wall-clock cap. Catches what fuel cannot (a slow machine, a runtime
    /// bug); not deterministic, so a `Timeout` never counts against a result's
    /// correctness, only against the agent's speed.
    pub wall_time: Duration,
    /// Cap on stdout (the result). Results travel to the broker and are stored:
    /// an unbounded output would let one task exhaust disk and bandwidth.
    pub max_output_bytes: u64,
    /// Cap on the wasm call stack, in bytes, between [`MIN_STACK_BYTES`] and
    /// [`MAX_STACK_BYTES`]; rounded up to a power of two (one compiled engine
    /// per size class). Deep recursion past it ends in `Trap`.
    pub max_stack_bytes: usize,
}

impl Default for Limits {
    /// Defaults fit a modest volunteer machine: 256 MiB of memory, 10^11 fuel
    /// (tens of seconds of work), one minute of wall time, 16 MiB of output
    /// and a 1 MiB wasm stack (wasmtime's own default is 512 KiB).
    fn default() -> Self {
        Limits {
            memory_bytes: 256 << 20,
            fuel: 100_000_000_000,
            wall_time: Duration::from_secs(60),
            max_output_bytes: 16 << 20,
            max_stack_bytes: 1 << 20,
        }
    }
}

impl Limits {
    /// The stack size class this task runs in: `max_stack_bytes` rounded up to
    /// a power of two and clamped into the allowed range.
    pub(crate) fn stack_class(&self) -> usize {
        self.max_stack_bytes
            .clamp(MIN_STACK_BYTES, MAX_STACK_BYTES)
            .next_power_of_two()
    }
}
