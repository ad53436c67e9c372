//! How a [`Runtime`](crate::Runtime) is set up: executor threads, memory
//! ceiling, module cache, compiler, metering. Chosen once per process.

use std::num::NonZeroUsize;
use std::path::PathBuf;

/// Setup of a [`Runtime`](crate::Runtime). Per-task limits are in
/// [`Limits`](crate::Limits); this is what the host machine allows at most.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// How many tasks run at once. Each runs on its own executor thread, so
    /// this is also the number of cores tasks may keep busy. Defaults to the
    /// machine's available parallelism.
    pub max_concurrent_tasks: NonZeroUsize,
    /// Largest [`Limits::memory_bytes`](crate::Limits::memory_bytes) a task may
    /// ask for; sizes the pooling allocator's memory slots. 4 GiB is the whole
    /// 32-bit address space of a wasm32 task.
    pub max_memory_bytes: u64,
    /// Cap on stderr. Diagnostics are kept for the issuer, but a task must not
    /// use them as a free, unbounded output channel.
    pub max_stderr_bytes: u64,
    /// Directory for compiled modules, reused across restarts. `None` keeps
    /// compiled modules in memory only.
    pub cache_dir: Option<PathBuf>,
    /// How many compiled modules stay in memory. Each holds its machine code;
    /// the least recently used one is dropped beyond this.
    pub max_cached_modules: usize,
    /// Use wasmtime's pooling instance allocator: memory slots are reserved
    /// once and recycled (zeroed) between tasks, which makes sandbox start
    /// cheap. Falls back to on-demand allocation when the machine refuses the
    /// reservation.
    pub pooling: bool,
    /// Count fuel. Only benchmarks turn this off, to measure what metering
    /// costs; without it `fuel_consumed` is 0 and the fuel limit is ignored.
    pub fuel_metering: bool,
    /// Percent of the time each task thread may compute (1 to 100), as
    /// BOINC's CPU throttling: below 100, a task sleeps at each of its
    /// yields (every slice of fuel) so that it runs this share of the time. A task's wall-time limit
    /// then counts its running time only, so throttling never makes it time
    /// out; its fuel and output do not change.
    pub cpu_percent: u8,
    /// Which compiler turns modules into machine code. Tasks want
    /// [`Compiler::Optimizing`], the default; see [`Compiler::Baseline`] for
    /// modules that run once, briefly, and are not billed.
    pub compiler: Compiler,
}

/// One of wasmtime's two compilers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compiler {
    /// Cranelift, an optimising compiler: the code runs about as fast as
    /// native code, and compiling costs ~1.5 ms of CPU per KiB of code. Its
    /// fuel is counted by [`METERING_VERSION`](crate::METERING_VERSION), the
    /// rules every task is billed and compared by.
    #[default]
    Optimizing,
    /// Winch, wasmtime's single-pass baseline compiler: compiling takes a
    /// sixth of Cranelift's CPU (16 against 104 ms for the `sum-u64`
    /// reducer), the code runs slower. For modules that run once over
    /// little work, where the compile is most of the cost: the broker's
    /// reducers.
    ///
    /// Its fuel is counted by
    /// [`BASELINE_METERING_VERSION`](crate::BASELINE_METERING_VERSION):
    /// Winch charges bulk memory operations and `memory.grow` their fixed
    /// cost only, not per byte or page, so the same run counts less fuel
    /// than under Cranelift (and the virtual clocks, which tick with fuel,
    /// read less). Outputs are otherwise the same, NaN bit patterns
    /// included. Nothing billed or compared by replicas may run on it.
    ///
    /// Winch compiles for x86-64 only. Elsewhere, on a CPU it cannot
    /// compile for, and for a module it cannot compile (one using a wasm
    /// feature Winch lacks), the runtime compiles with Cranelift instead.
    Baseline,
}

impl std::str::FromStr for Compiler {
    type Err = String;

    /// `optimizing` or `baseline`, as command-line flags spell them.
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "optimizing" => Ok(Compiler::Optimizing),
            "baseline" => Ok(Compiler::Baseline),
            other => Err(format!(
                "unknown compiler {other:?}: use baseline or optimizing"
            )),
        }
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_concurrent_tasks: std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
            max_memory_bytes: 4 << 30,
            max_stderr_bytes: 64 << 10,
            cache_dir: None,
            max_cached_modules: 64,
            pooling: true,
            fuel_metering: true,
            cpu_percent: 100,
            compiler: Compiler::Optimizing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compilers_parse_by_their_flag_names_only() {
        assert_eq!("baseline".parse(), Ok(Compiler::Baseline));
        assert_eq!("optimizing".parse(), Ok(Compiler::Optimizing));
        assert!("winch".parse::<Compiler>().is_err());
        assert!("".parse::<Compiler>().is_err());
    }
}
