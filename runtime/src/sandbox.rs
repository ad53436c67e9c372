//! Runs one prepared task in a fresh store: zeroed memory, the memory cap,
//! fuel metered from `_start` on, the wall-clock deadline, captured stdio;
//! and turns however it ended into an [`Outcome`].
//!
//! # How wall time is enforced
//!
//! The task runs as a future (wasmtime's `*_async` calls, on a fiber stack)
//! that this thread polls itself. The task gives control back
//! periodically: with metering, each [`FUEL_PER_SLICE`] of fuel; without
//! (benchmarks only), at each epoch tick. At each of these yields the
//! [`Pacer`] adds up the time the task ran, ends it when that reaches the
//! wall-time limit (the future is dropped, which unwinds the task), and
//! sleeps when the task is throttled. So a metered task carries no epoch
//! check in its loops: wasmtime's fuel check, there anyway, is the only
//! check, which makes tight loops about a quarter faster (docs/runtime.md).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use wasmtime::{Store, Trap};

use crate::limiter::{MemoryCap, MemoryCapExceeded};
use crate::module_cache::Prepared;
use crate::outcome::{Outcome, Status, Usage};
use crate::wasi::{OutputCapExceeded, ProcExit, TaskState};
use crate::{Limits, RuntimeConfig};

/// Fuel a metered task runs between two yields to the [`Pacer`]: 0.1–1 ms
/// of computation at the 2–22 Gfuel/s the sample tasks run at here, so a
/// time limit or a throttle acts within about a millisecond, and the yields
/// (a fiber switch each, ~10 000 a second for `primes`) cost nothing
/// measurable: 20 M and 200 M fuel per slice ran `primes` no faster
/// (docs/performance.md, the efficiency bench's sixth session). The
/// slowest fuel a task can burn is touching a fresh page per few operators
/// (a page fault each, a few M fuel/s), which stretches one slice to under
/// a second; a task's memory cap bounds how long it can keep that up.
pub(crate) const FUEL_PER_SLICE: u64 = 2_000_000;

/// One task's run. `metering` is the runtime's fuel setting.
pub(crate) fn run(
    prepared: &Prepared,
    config: &RuntimeConfig,
    input: Vec<u8>,
    limits: &Limits,
    seed: u64,
) -> Outcome {
    let started = Instant::now();
    let state = TaskState::new(
        input,
        limits.max_output_bytes,
        config.max_stderr_bytes,
        seed,
        MemoryCap::new(limits.memory_bytes),
    );
    let mut store = Store::new(&prepared.class.engine, state);
    store.limiter(|state| &mut state.limiter);
    if config.fuel_metering {
        // Fails only for an engine without fuel, which this config rules
        // out, or a zero interval.
        let _ = store.fuel_async_yield_interval(Some(FUEL_PER_SLICE));
    } else {
        store.epoch_deadline_async_yield_and_update(1);
    }
    let mut pacer = Pacer::new(limits.wall_time, config.cpu_percent);
    // Instantiation gets the same budget but is not billed: its cost differs
    // between platforms (wasmtime #14331), and a module has no start function
    // (checked when prepared), so no task code runs before `_start`.
    set_fuel(&mut store, config, limits.fuel);

    let instance = pacer.drive(prepared.instance_pre.instantiate_async(&mut store));
    let result = match instance {
        None => Err(Ended::TimedOut),
        Some(Err(error)) => Err(Ended::Failed(error, true)),
        Some(Ok(instance)) => {
            let memory = instance.get_memory(&mut store, "memory");
            store.data_mut().memory = memory;
            match instance.get_typed_func::<(), ()>(&mut store, "_start") {
                Err(error) => Err(Ended::Failed(error, true)),
                Ok(start) => {
                    set_fuel(&mut store, config, limits.fuel);
                    store.data_mut().fuel_budget = config.fuel_metering.then_some(limits.fuel);
                    match pacer.drive(start.call_async(&mut store, ())) {
                        None => Err(Ended::TimedOut),
                        Some(Ok(())) => Ok(()),
                        Some(Err(error)) => Err(Ended::Failed(error, false)),
                    }
                }
            }
        }
    };

    let fuel_consumed = match store.data().fuel_budget {
        Some(budget) => budget.saturating_sub(store.get_fuel().unwrap_or(0)),
        None => 0,
    };
    let memory_now = store
        .data()
        .memory
        .map_or(0, |memory| memory.data_size(&store) as u64);
    let state = store.into_data();
    let status = match result {
        Ok(()) => Status::Ok,
        Err(Ended::TimedOut) => Status::Timeout,
        Err(Ended::Failed(error, during_instantiation)) => status_of(&error, during_instantiation),
    };
    Outcome {
        status,
        usage: Usage {
            fuel_consumed,
            peak_memory_bytes: state.limiter.peak.max(memory_now),
            wall_time: started.elapsed(),
            output_bytes: state.stdout.len() as u64,
            metering_version: prepared.class.metering_version,
        },
        output: state.stdout,
        stderr: state.stderr,
    }
}

/// How a run that did not return ended.
enum Ended {
    /// The pacer ended it at its wall-time limit.
    TimedOut,
    /// It failed; `true` while it was being instantiated.
    Failed(wasmtime::Error, bool),
}

/// Polls a task's future on this thread and keeps its time: at each yield
/// it adds the time the task ran since the last one, ends the task once
/// that reaches the wall-time limit, and, when throttled, sleeps so that the
/// task runs `cpu_percent` of the time (BOINC's duty cycle). The limit
/// counts the time the task ran, not the time it slept.
struct Pacer {
    wall_time: Duration,
    cpu_percent: u32,
    /// Time the task ran up to its last yield.
    running: Duration,
    /// When the task last resumed.
    resumed: Instant,
}

impl Pacer {
    fn new(wall_time: Duration, cpu_percent: u8) -> Pacer {
        Pacer {
            wall_time,
            cpu_percent: u32::from(cpu_percent.clamp(1, 100)),
            running: Duration::ZERO,
            resumed: Instant::now(),
        }
    }

    /// Runs `future` to its end; `None` if it reached the wall-time limit
    /// first (the future is then dropped, which ends the task).
    fn drive<F: Future>(&mut self, future: F) -> Option<F::Output> {
        let mut future = pin!(future);
        // wasmtime's futures ask to be polled again at every yield; nothing
        // else wakes them, so a waker that does nothing is enough.
        let mut context = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
                return Some(output);
            }
            if !self.yielded() {
                return None;
            }
        }
    }

    /// Accounts for a yield; false once the task is out of time.
    fn yielded(&mut self) -> bool {
        let ran = self.resumed.elapsed();
        self.running += ran;
        if self.running >= self.wall_time {
            return false;
        }
        if self.cpu_percent < 100 {
            std::thread::sleep(ran * (100 - self.cpu_percent) / self.cpu_percent);
        }
        self.resumed = Instant::now();
        true
    }
}

fn set_fuel(store: &mut Store<TaskState>, config: &RuntimeConfig, fuel: u64) {
    if config.fuel_metering {
        // Only fails when metering is off in the engine, checked above.
        let _ = store.set_fuel(fuel);
    }
}

/// Maps how a task stopped to its status.
fn status_of(error: &wasmtime::Error, during_instantiation: bool) -> Status {
    if let Some(ProcExit(code)) = error.downcast_ref::<ProcExit>() {
        return match code {
            0 => Status::Ok,
            code => Status::ExitCode(*code),
        };
    }
    if error.is::<OutputCapExceeded>() {
        return Status::OutputLimit;
    }
    if error.is::<MemoryCapExceeded>() {
        return Status::MemoryLimit;
    }
    if let Some(trap) = error.downcast_ref::<Trap>() {
        return match trap {
            Trap::OutOfFuel => Status::OutOfFuel,
            Trap::Interrupt => Status::Timeout,
            other => Status::Trap(trap_message(other)),
        };
    }
    if during_instantiation {
        Status::InvalidModule(format!("cannot instantiate: {error:#}"))
    } else {
        Status::Trap(format!("{error:#}"))
    }
}

/// wasmtime's trap text without its `wasm trap: ` prefix.
fn trap_message(trap: &Trap) -> String {
    let text = trap.to_string();
    text.strip_prefix("wasm trap: ")
        .map(str::to_owned)
        .unwrap_or(text)
}
