//! The sandbox's own WASI preview-1 implementation: the whole system interface
//! a task sees.
//!
//! We implement `wasi_snapshot_preview1` here instead of linking
//! `wasmtime-wasi`, because the sandbox needs three things that crate does not
//! give: every host call is charged fuel (per call and per byte), so work
//! cannot hide in the host; the surface is exactly stdin, stdout, stderr, a
//! virtual clock and a seeded random stream, so the same task gives the same
//! output and fuel everywhere; and starting a task allocates no WASI context
//! or resource table. Every other call (files, sockets, environment) exists,
//! so that any WASI program links, and fails with an error code.
//!
//! # Layout
//! - `errno`: error numbers and constants of the ABI.
//! - `guest_memory`: bounds-checked access to the task's memory.
//! - `state`: [`TaskState`], the data behind the calls.
//! - `stdio`: descriptors 0–2 (`fd_read`, `fd_write`, …).
//! - `clock`: virtual clocks and `poll_oneoff`.
//! - `process`: args, environment, exit, randomness.
//! - `denied`: filesystem and socket calls, all refused.

mod clock;
mod denied;
pub(crate) mod errno;
mod guest_memory;
mod process;
pub(crate) mod state;
mod stdio;

use wasmtime::{Caller, Linker, Trap};

use self::guest_memory::GuestMemory;
use self::state::{HOST_BYTE_FUEL, HOST_CALL_FUEL};
pub(crate) use self::state::{OutputCapExceeded, ProcExit, TaskState};

/// The import module name of WASI preview 1.
const WASI: &str = "wasi_snapshot_preview1";

/// Defines every `wasi_snapshot_preview1` function in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<TaskState>) -> wasmtime::Result<()> {
    process::add_to_linker(linker)?;
    stdio::add_to_linker(linker)?;
    clock::add_to_linker(linker)?;
    denied::add_to_linker(linker)?;
    Ok(())
}

/// Charges the fuel of one host call that moved `bytes` bytes. Running out
/// here ends the task with `OutOfFuel`, exactly as running out in wasm does.
pub(crate) fn charge(caller: &mut Caller<'_, TaskState>, bytes: usize) -> wasmtime::Result<()> {
    caller.data_mut().host_calls += 1;
    if caller.data().fuel_budget.is_none() {
        return Ok(());
    }
    let cost = HOST_CALL_FUEL.saturating_add((bytes as u64).saturating_mul(HOST_BYTE_FUEL));
    let left = caller.get_fuel()?;
    if left < cost {
        caller.set_fuel(0)?;
        return Err(wasmtime::Error::new(Trap::OutOfFuel));
    }
    caller.set_fuel(left - cost)
}

/// The task's memory and state for the length of one host call, or `None`
/// when the module exports no memory (then no call that takes a pointer can
/// succeed).
pub(crate) fn guest<'a>(
    caller: &'a mut Caller<'_, TaskState>,
) -> Option<(GuestMemory<'a>, &'a mut TaskState)> {
    let memory = caller.data().memory?;
    let (bytes, state) = memory.data_and_store_mut(caller);
    Some((GuestMemory(bytes), state))
}

/// Turns the errno-or-success of a call body into the call's i32 result.
pub(crate) fn errno(result: Result<(), errno::Errno>) -> i32 {
    match result {
        Ok(()) => errno::SUCCESS,
        Err(code) => code,
    }
}

#[cfg(test)]
mod tests {
    use wasmtime::{Engine, Store};

    use super::*;
    use crate::limiter::MemoryCap;

    /// `wasi_snapshot_preview1` has 46 functions; every one must be defined
    /// so that any WASI program links.
    #[test]
    fn every_preview1_function_is_defined() {
        let engine = Engine::default();
        let mut linker = Linker::new(&engine);
        add_to_linker(&mut linker).expect("defines");
        let mut store = Store::new(
            &engine,
            TaskState::new(Vec::new(), 0, 0, 0, MemoryCap::new(0)),
        );
        let defined = linker
            .iter(&mut store)
            .filter(|(module, _, _)| *module == WASI)
            .count();
        assert_eq!(defined, 46);
    }
}
