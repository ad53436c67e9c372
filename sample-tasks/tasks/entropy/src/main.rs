//! Reports what a task can observe of randomness and time, as JSON.
//!
//! The sandbox seeds `random_get` from the task id and runs virtual clocks,
//! so running this twice with the same seed must give byte-identical output:
//! that is what replication-based verification relies on. Both the raw WASI
//! calls and the std wrappers over them are read, since a task may use
//! either. A failing call fails the task (exit 1) with the errno.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    /// WASI `random_get`: fills `buf` with `len` random bytes; returns errno.
    fn random_get(buf: *mut u8, len: usize) -> u16;
    /// WASI `clock_time_get`: reads clock `id` in nanoseconds; returns errno.
    fn clock_time_get(id: u32, precision: u64, out: *mut u64) -> u16;
}

/// WASI id of the wall clock.
const CLOCK_REALTIME: u32 = 0;
/// WASI id of the monotonic clock.
const CLOCK_MONOTONIC: u32 = 1;

/// Everything observed, in the output's field order.
#[derive(Debug, Serialize)]
struct Observations {
    /// 32 bytes from `random_get`, hex-encoded.
    random: String,
    /// 32 more bytes, to show the stream advances instead of repeating.
    random_again: String,
    /// `clock_time_get(REALTIME)` in ns.
    realtime_ns: u64,
    /// `clock_time_get(MONOTONIC)` in ns, read twice.
    monotonic_ns: [u64; 2],
    /// `SystemTime::now()` as ns since the Unix epoch.
    system_time_unix_ns: u128,
    /// Nanoseconds between two `Instant::now()` readings around the above.
    instant_elapsed_ns: u128,
}

fn random_hex() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    // SAFETY: the pointer and length describe `bytes`, which outlives the
    // call; the host writes at most `len` bytes.
    let errno = unsafe { random_get(bytes.as_mut_ptr(), bytes.len()) };
    if errno != 0 {
        return Err(format!("random_get failed: errno {errno}"));
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn clock(id: u32) -> Result<u64, String> {
    let mut nanoseconds = 0u64;
    // SAFETY: `out` points to a live, aligned u64.
    let errno = unsafe { clock_time_get(id, 1, &mut nanoseconds) };
    if errno != 0 {
        return Err(format!("clock_time_get({id}) failed: errno {errno}"));
    }
    Ok(nanoseconds)
}

fn observe() -> Result<Vec<u8>, String> {
    let started = Instant::now();
    let mut observations = Observations {
        random: random_hex()?,
        random_again: random_hex()?,
        realtime_ns: clock(CLOCK_REALTIME)?,
        monotonic_ns: [clock(CLOCK_MONOTONIC)?, clock(CLOCK_MONOTONIC)?],
        system_time_unix_ns: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|error| format!("system time before the epoch: {error}"))?
            .as_nanos(),
        instant_elapsed_ns: 0,
    };
    observations.instant_elapsed_ns = started.elapsed().as_nanos();
    serde_json::to_vec(&observations).map_err(|error| error.to_string())
}

fn main() {
    wasmgrid_sdk::run_bytes(|_input| observe());
}
