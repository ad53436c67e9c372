//! Virtual time. A task's clocks advance with the fuel it has consumed (1 ns
//! per unit) plus the time it slept, never with the host's clock: the same
//! task reads the same times on every machine, and sleeping costs no real
//! time. Without fuel metering the clocks advance by 1 µs per host call.

use wasmtime::{Caller, Linker};

use super::errno::{BADF, Errno, FAULT, INVAL, STDERR, STDIN, STDOUT};
use super::state::VIRTUAL_EPOCH_NS;
use super::{TaskState, WASI, charge, errno, guest};

/// `clockid::realtime`, `monotonic`, `process_cputime_id`, `thread_cputime_id`.
const CLOCK_IDS: std::ops::RangeInclusive<i32> = 0..=3;
const CLOCK_REALTIME: i32 = 0;
/// `subclockflags::subscription_clock_abstime`.
const ABSTIME: u16 = 1;
const EVENTTYPE_CLOCK: u8 = 0;
const EVENTTYPE_FD_READ: u8 = 1;
const EVENTTYPE_FD_WRITE: u8 = 2;
const SUBSCRIPTION_SIZE: i32 = 48;
const EVENT_SIZE: i32 = 32;

pub(super) fn add_to_linker(linker: &mut Linker<TaskState>) -> wasmtime::Result<()> {
    linker.func_wrap(WASI, "clock_res_get", clock_res_get)?;
    linker.func_wrap(WASI, "clock_time_get", clock_time_get)?;
    linker.func_wrap(WASI, "poll_oneoff", poll_oneoff)?;
    Ok(())
}

/// Virtual nanoseconds since the task started.
fn elapsed_ns(caller: &Caller<'_, TaskState>) -> u64 {
    let state = caller.data();
    let worked = match state.fuel_budget {
        Some(budget) => budget.saturating_sub(caller.get_fuel().unwrap_or(budget)),
        None => state.host_calls.saturating_mul(1_000),
    };
    worked.saturating_add(state.slept_ns)
}

fn now_ns(caller: &Caller<'_, TaskState>, clock: i32) -> u64 {
    let elapsed = elapsed_ns(caller);
    if clock == CLOCK_REALTIME {
        VIRTUAL_EPOCH_NS.saturating_add(elapsed)
    } else {
        elapsed
    }
}

fn clock_res_get(mut caller: Caller<'_, TaskState>, id: i32, out: i32) -> wasmtime::Result<i32> {
    charge(&mut caller, 0)?;
    if !CLOCK_IDS.contains(&id) {
        return Ok(INVAL);
    }
    let Some((mut mem, _)) = guest(&mut caller) else {
        return Ok(FAULT);
    };
    Ok(errno(mem.write_u64(out, 1)))
}

fn clock_time_get(
    mut caller: Caller<'_, TaskState>,
    id: i32,
    _precision: i64,
    out: i32,
) -> wasmtime::Result<i32> {
    charge(&mut caller, 0)?;
    if !CLOCK_IDS.contains(&id) {
        return Ok(INVAL);
    }
    let now = now_ns(&caller, id);
    let Some((mut mem, _)) = guest(&mut caller) else {
        return Ok(FAULT);
    };
    Ok(errno(mem.write_u64(out, now)))
}

/// Waits for nothing: stdio is always ready, and a clock subscription is
/// satisfied at once by advancing the virtual clock to its deadline.
fn poll_oneoff(
    mut caller: Caller<'_, TaskState>,
    subscriptions: i32,
    events: i32,
    count: i32,
    nevents_ptr: i32,
) -> wasmtime::Result<i32> {
    charge(&mut caller, 0)?;
    if count <= 0 {
        return Ok(INVAL);
    }
    let monotonic_now = now_ns(&caller, 1);
    let realtime_now = now_ns(&caller, CLOCK_REALTIME);
    let Some((mut mem, state)) = guest(&mut caller) else {
        return Ok(FAULT);
    };
    let mut poll = || -> Result<(), Errno> {
        let sub_at = |i: i32| subscriptions.wrapping_add(i.wrapping_mul(SUBSCRIPTION_SIZE));
        // First pass: is any descriptor subscribed (always ready), else how
        // long until the earliest clock deadline.
        let mut any_fd = false;
        let mut earliest: Option<u64> = None;
        for i in 0..count {
            let sub = sub_at(i);
            match mem.read_u8(sub.wrapping_add(8))? {
                EVENTTYPE_CLOCK => {
                    let wait = clock_wait(&mem, sub, monotonic_now, realtime_now)?;
                    earliest = Some(earliest.map_or(wait, |e| e.min(wait)));
                }
                EVENTTYPE_FD_READ | EVENTTYPE_FD_WRITE => any_fd = true,
                _ => return Err(INVAL),
            }
        }
        let advance = if any_fd { None } else { earliest };
        let mut produced = 0u32;
        for i in 0..count {
            let sub = sub_at(i);
            let userdata = mem.read_u64(sub)?;
            let tag = mem.read_u8(sub.wrapping_add(8))?;
            let (error, nbytes) = match tag {
                EVENTTYPE_CLOCK => {
                    let wait = clock_wait(&mem, sub, monotonic_now, realtime_now)?;
                    match advance {
                        Some(step) if wait <= step => (0u16, 0u64),
                        _ => continue,
                    }
                }
                _ => match mem.read_u32(sub.wrapping_add(16))? as i32 {
                    STDIN if tag == EVENTTYPE_FD_READ => {
                        (0, (state.stdin.len() - state.stdin_pos) as u64)
                    }
                    STDOUT | STDERR if tag == EVENTTYPE_FD_WRITE => (0, 0),
                    _ => (BADF as u16, 0),
                },
            };
            let mut event = [0u8; EVENT_SIZE as usize];
            event[0..8].copy_from_slice(&userdata.to_le_bytes());
            event[8..10].copy_from_slice(&error.to_le_bytes());
            event[10] = tag;
            event[16..24].copy_from_slice(&nbytes.to_le_bytes());
            let at = events.wrapping_add((produced as i32).wrapping_mul(EVENT_SIZE));
            mem.write_bytes(at, &event)?;
            produced += 1;
        }
        if let Some(step) = advance {
            state.slept_ns = state.slept_ns.saturating_add(step);
        }
        mem.write_u32(nevents_ptr, produced)
    };
    Ok(errno(poll()))
}

/// Nanoseconds a clock subscription waits, relative to now.
fn clock_wait(
    mem: &super::GuestMemory<'_>,
    sub: i32,
    monotonic_now: u64,
    realtime_now: u64,
) -> Result<u64, Errno> {
    let id = mem.read_u32(sub.wrapping_add(16))? as i32;
    if !CLOCK_IDS.contains(&id) {
        return Err(INVAL);
    }
    let timeout = mem.read_u64(sub.wrapping_add(24))?;
    let flags = mem.read_u16(sub.wrapping_add(40))?;
    if flags & ABSTIME == 0 {
        return Ok(timeout);
    }
    let now = if id == CLOCK_REALTIME {
        realtime_now
    } else {
        monotonic_now
    };
    Ok(timeout.saturating_sub(now))
}
