//! `cargo +nightly fuzz run agent_service`: see `wasmgrid_fuzz_targets::agent_service`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmgrid_fuzz_targets::agent_service(data));
