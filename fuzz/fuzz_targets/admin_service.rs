//! `cargo +nightly fuzz run admin_service`: see `wasmgrid_fuzz_targets::admin_service`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmgrid_fuzz_targets::admin_service(data));
