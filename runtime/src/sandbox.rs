//! Runs one prepared task in a fresh store: zeroed memory, the memory cap,
//! fuel metered from `_start` on, the wall-clock deadline, captured stdio;
//! and turns however it ended into an [`Outcome`].

use std::time::{Duration, Instant};

use wasmtime::{Store, Trap, UpdateDeadline};

use crate::engine::{EngineClass, deadline_ticks};
use crate::limiter::{MemoryCap, MemoryCapExceeded};
use crate::module_cache::Prepared;
use crate::outcome::{METERING_VERSION, Outcome, Status, Usage};
use crate::wasi::{OutputCapExceeded, ProcExit, TaskState};
use crate::{Limits, RuntimeConfig};

/// One task's run. `metering` is the runtime's fuel setting.
pub(crate) fn run(
    class: &EngineClass,
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
    let mut store = Store::new(&class.engine, state);
    store.limiter(|state| &mut state.limiter);
    if config.cpu_percent >= 100 {
        store.set_epoch_deadline(deadline_ticks(limits.wall_time));
        store.epoch_deadline_trap();
    } else {
        throttle(&mut store, limits.wall_time, config.cpu_percent);
    }
    // Instantiation gets the same budget but is not billed: its cost differs
    // between platforms (wasmtime #14331), and a module has no start function
    // (checked when prepared), so no task code runs before `_start`.
    set_fuel(&mut store, config, limits.fuel);

    let result = prepared
        .instance_pre
        .instantiate(&mut store)
        .map_err(|error| (error, true))
        .and_then(|instance| {
            let memory = instance.get_memory(&mut store, "memory");
            store.data_mut().memory = memory;
            let start = instance
                .get_typed_func::<(), ()>(&mut store, "_start")
                .map_err(|error| (error, true))?;
            set_fuel(&mut store, config, limits.fuel);
            store.data_mut().fuel_budget = config.fuel_metering.then_some(limits.fuel);
            start.call(&mut store, ()).map_err(|error| (error, false))
        });

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
        Err((error, during_instantiation)) => status_of(&error, during_instantiation),
    };
    Outcome {
        status,
        usage: Usage {
            fuel_consumed,
            peak_memory_bytes: state.limiter.peak.max(memory_now),
            wall_time: started.elapsed(),
            output_bytes: state.stdout.len() as u64,
            metering_version: METERING_VERSION,
        },
        output: state.stdout,
        stderr: state.stderr,
    }
}

/// Duty-cycle throttling: each time the epoch ticks, the task sleeps for as
/// long as it ran since it last woke, scaled so that it runs `cpu_percent`
/// of the time; the wall-time limit counts the time it ran, not the time it
/// slept.
fn throttle(store: &mut Store<TaskState>, wall_time: Duration, cpu_percent: u8) {
    let percent = u32::from(cpu_percent.max(1));
    let mut running = Duration::ZERO;
    let mut woke = Instant::now();
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        let ran = woke.elapsed();
        running += ran;
        if running >= wall_time {
            return Err(wasmtime::Error::new(Trap::Interrupt));
        }
        std::thread::sleep(ran * (100 - percent) / percent);
        woke = Instant::now();
        Ok(UpdateDeadline::Continue(1))
    });
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
