//! The module-loading target: any bytes as a task module.

use std::num::NonZeroUsize;
use std::sync::OnceLock;
use std::time::Duration;

use wasmgrid_runtime::{Limits, Outcome, Runtime, RuntimeConfig, RuntimeError, Status, TaskModule};

use crate::findings;

/// The limits fuzzed modules run under: small, so a run costs milliseconds.
pub(crate) fn small_limits() -> Limits {
    Limits {
        memory_bytes: 1 << 20,
        fuel: 1_000_000,
        wall_time: Duration::from_secs(1),
        max_output_bytes: 64 << 10,
        max_stack_bytes: 256 << 10,
    }
}

/// What a fuzzed module reads on stdin.
const INPUT: &[u8] = b"{\"start\":0,\"end\":1000}";

/// Seeds `random_get`.
const SEED: u64 = 7;

/// One runtime for the whole process, as in the agent and the broker.
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        findings::install();
        Runtime::new(RuntimeConfig {
            max_concurrent_tasks: NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN),
            // Slots of the pooling allocator sized for the small limits.
            max_memory_bytes: 64 << 20,
            ..RuntimeConfig::default()
        })
        .unwrap_or_else(|error| panic!("the fuzzing runtime cannot start: {error}"))
    })
}

/// A tokio runtime to await `Runtime::prepare` on.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    static TOKIO: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    TOKIO
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|error| panic!("tokio runtime: {error}"))
        })
        .block_on(future)
}

/// `data` as a task module: hashed, prepared (compiled, checked to be a WASI
/// command, linked) and, when that succeeds, run twice under
/// `small_limits`. Errors and task failures are fine; panics, aborts and
/// hangs are findings, and so is a run that breaks the runtime's promises:
/// a run that differs between two runs of the same module, input and seed,
/// reports more memory or output than its limits, or runs a module that
/// `prepare` refused.
pub fn module_loading(data: &[u8]) {
    let runtime = runtime();
    let module = TaskModule::new(data.to_vec());
    let limits = small_limits();
    let prepared = block_on(runtime.prepare(&module, &limits));
    match &prepared {
        Ok(()) | Err(RuntimeError::InvalidModule(_)) => {}
        Err(other) => panic!("prepare failed on the host side: {other}"),
    }
    let first = run(runtime, &module, &limits);
    findings::tally(format!(
        "module: {}",
        match &first.status {
            Status::InvalidModule(_) if prepared.is_err() => "refused by prepare",
            Status::InvalidModule(_) => "not instantiated",
            Status::Trap(_) => "trap",
            Status::Ok => "ok",
            Status::ExitCode(_) => "exit code",
            Status::OutOfFuel => "out of fuel",
            Status::MemoryLimit => "memory limit",
            Status::Timeout => "timeout",
            Status::OutputLimit => "output limit",
        }
    ));
    if let Err(RuntimeError::InvalidModule(reason)) = &prepared {
        assert!(
            matches!(first.status, Status::InvalidModule(_)),
            "prepare refused the module ({reason}) but it ran: {:?}",
            first.status
        );
        findings::check();
        return;
    }
    check_within_limits(&first, &limits);
    let second = run(runtime, &module, &limits);
    check_within_limits(&second, &limits);
    if first.status.is_deterministic() && second.status.is_deterministic() {
        assert_eq!(first.status, second.status, "status differs between runs");
        assert_eq!(first.output, second.output, "output differs between runs");
        assert_eq!(
            first.usage.fuel_consumed, second.usage.fuel_consumed,
            "fuel differs between runs"
        );
    }
    findings::check();
}

fn run(runtime: &Runtime, module: &TaskModule, limits: &Limits) -> Outcome {
    runtime
        .run_blocking(module, INPUT.to_vec(), limits, SEED)
        .unwrap_or_else(|error| panic!("run failed on the host side: {error}"))
}

fn check_within_limits(outcome: &Outcome, limits: &Limits) {
    let usage = &outcome.usage;
    assert!(
        usage.fuel_consumed <= limits.fuel,
        "fuel {} above the limit {}",
        usage.fuel_consumed,
        limits.fuel
    );
    // The broker refuses a report whose peak memory is above the limit: an
    // honest agent's run must never claim more.
    assert!(
        usage.peak_memory_bytes <= limits.memory_bytes,
        "peak memory {} above the limit {} ({})",
        usage.peak_memory_bytes,
        limits.memory_bytes,
        outcome.status
    );
    assert!(
        outcome.output.len() as u64 <= limits.max_output_bytes,
        "{} bytes of output above the cap {}",
        outcome.output.len(),
        limits.max_output_bytes
    );
    assert_eq!(usage.output_bytes, outcome.output.len() as u64);
}
