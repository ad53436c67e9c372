//! Grows linear memory and fills or checks the new pages.
//!
//! Input: JSON `{"mode": "fill" | "check", "pages": N}`. The task grows
//! memory by `N` 64 KiB pages, then
//! - `fill`: writes 0xA5 over every new byte and outputs `filled`;
//! - `check`: reads every new byte and outputs JSON `{"nonzero": count}`.
//!
//! Running `fill` then `check` on the same host shows whether memory is
//! zeroed between tasks (a pooled or reused instance must not leak one
//! issuer's data to the next): `check` must report 0. Accesses are volatile
//! so the optimiser cannot skip them. Failing to grow is a task error.

use std::process;

use core::arch::wasm32::memory_grow;
use serde::Deserialize;
use wasmgrid_sdk::failure::EXIT_INVALID_INPUT;

/// Size of a wasm page.
const PAGE_BYTES: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Fill,
    Check,
}

#[derive(Debug, Deserialize)]
struct Probe {
    mode: Mode,
    pages: u32,
}

#[derive(Debug, serde::Serialize)]
struct CheckReport {
    nonzero: u64,
}

fn main() {
    wasmgrid_sdk::run_bytes(|input| {
        let probe: Probe = match serde_json::from_slice(&input) {
            Ok(probe) => probe,
            Err(error) => {
                eprintln!("invalid input: {error}");
                process::exit(EXIT_INVALID_INPUT);
            }
        };
        let pages = probe.pages as usize;
        let previous = memory_grow(0, pages);
        if previous == usize::MAX {
            return Err(format!("cannot grow memory by {pages} pages"));
        }
        // The growth succeeded, so `previous + pages` is at most 65536 with
        // `previous >= 1`: neither product overflows a 32-bit usize.
        let start = previous * PAGE_BYTES;
        let words = pages * PAGE_BYTES / size_of::<u64>();
        let base = start as *mut u64;
        match probe.mode {
            Mode::Fill => {
                for word in 0..words {
                    // SAFETY: the word lies in the pages just grown, which
                    // belong to no Rust object and are aligned to 64 KiB.
                    unsafe { base.add(word).write_volatile(0xA5A5_A5A5_A5A5_A5A5) };
                }
                Ok(b"filled".to_vec())
            }
            Mode::Check => {
                let mut nonzero = 0u64;
                for word in 0..words {
                    // SAFETY: as above.
                    let value = unsafe { base.add(word).read_volatile() };
                    if value != 0 {
                        nonzero += u64::from(nonzero_bytes(value));
                    }
                }
                serde_json::to_vec(&CheckReport { nonzero }).map_err(|error| error.to_string())
            }
        }
    });
}

/// Number of nonzero bytes in `word`.
fn nonzero_bytes(word: u64) -> u32 {
    word.to_le_bytes()
        .iter()
        .map(|&byte| u32::from(byte != 0))
        .sum()
}
