//! `cargo +nightly fuzz run submit_workload`: see `wasmgrid_fuzz_targets::submit_workload`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmgrid_fuzz_targets::submit_workload(data));
