//! What running a task produced: its status, output, diagnostics and usage.

use std::fmt;
use std::time::Duration;

/// How a task ended. Every module, hostile or broken, ends in exactly one of
/// these; the host never panics on a task's behalf.
///
/// The statuses keep a task's own failure (`ExitCode`, `Trap`,
/// `InvalidModule`) apart from a sandbox limit (`OutOfFuel`, `MemoryLimit`,
/// `Timeout`, `OutputLimit`), because billing and reputation treat them
/// differently: a limit is the issuer's estimate, a failure is the task's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// `_start` returned, or the task called `proc_exit(0)`.
    Ok,
    /// The task called `proc_exit(n)` with `n != 0`.
    ExitCode(i32),
    /// The task used all of [`Limits::fuel`](crate::Limits::fuel).
    OutOfFuel,
    /// The task tried to grow memory or tables past the cap.
    MemoryLimit,
    /// The task ran longer than [`Limits::wall_time`](crate::Limits::wall_time).
    Timeout,
    /// The task wrote more than the stdout or stderr cap.
    OutputLimit,
    /// The task trapped: `unreachable`, a bad memory access, a stack
    /// overflow, a Rust panic (which aborts with `unreachable`), …
    Trap(String),
    /// The bytes are not a module wasmgrid can run: not wasm, not a WASI
    /// command, or importing something the sandbox does not provide.
    InvalidModule(String),
}

impl Status {
    /// True when the task ended successfully.
    pub fn is_ok(&self) -> bool {
        matches!(self, Status::Ok)
    }

    /// True when a sandbox limit, not the task itself, ended the task.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            Status::OutOfFuel | Status::MemoryLimit | Status::Timeout | Status::OutputLimit
        )
    }

    /// True when the status is the same on every machine for the same module,
    /// input and seed: everything but a wall-clock timeout.
    pub fn is_deterministic(&self) -> bool {
        !matches!(self, Status::Timeout)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Ok => f.write_str("ok"),
            Status::ExitCode(code) => write!(f, "exit code {code}"),
            Status::OutOfFuel => f.write_str("out of fuel"),
            Status::MemoryLimit => f.write_str("memory limit exceeded"),
            Status::Timeout => f.write_str("wall-time limit exceeded"),
            Status::OutputLimit => f.write_str("output limit exceeded"),
            Status::Trap(msg) => write!(f, "trap: {msg}"),
            Status::InvalidModule(msg) => write!(f, "invalid module: {msg}"),
        }
    }
}

/// What a task consumed. `fuel_consumed` is deterministic and is what gets
/// billed; the other figures are measurements of this run on this machine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Fuel consumed from the call of `_start` on: wasm operators at the
    /// pinned cost table plus host-call charges (see [`METERING_VERSION`]).
    pub fuel_consumed: u64,
    /// Largest linear memory size the task reached, in bytes.
    pub peak_memory_bytes: u64,
    /// Wall time of the whole run on its task thread: store creation,
    /// instantiation, `_start`, and store teardown (compilation excluded).
    pub wall_time: Duration,
    /// Bytes written to stdout.
    pub output_bytes: u64,
    /// The metering rules `fuel_consumed` was counted under. Replicas only
    /// compare fuel when this matches.
    pub metering_version: &'static str,
}

/// The outcome of one task run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// How the task ended.
    pub status: Status,
    /// Everything the task wrote to stdout (up to the cap): the result.
    pub output: Vec<u8>,
    /// Everything the task wrote to stderr (up to the cap): diagnostics.
    pub stderr: Vec<u8>,
    /// What the task consumed.
    pub usage: Usage,
}

/// Names the fuel rules: the exact wasmtime version, the operator cost table
/// and the host-call charges. Any change to one of them must change this
/// string, so that replicas metered under different rules are never compared.
pub const METERING_VERSION: &str =
    "wasmgrid-fuel/1 wasmtime=48.0.8 ops=default+grow64/page host=50/call+1/byte";

/// The fuel rules of a module compiled with
/// [`Compiler::Baseline`](crate::Compiler::Baseline): the same operator and
/// host-call costs, but bulk memory operations and `memory.grow` at their
/// fixed cost only (Winch charges nothing per byte or page).
pub const BASELINE_METERING_VERSION: &str =
    "wasmgrid-fuel/1 wasmtime=48.0.8 winch ops=default-flat-bulk+grow0/page host=50/call+1/byte";
