//! `cargo +nightly fuzz run issuer_service`: see `wasmgrid_fuzz_targets::issuer_service`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmgrid_fuzz_targets::issuer_service(data));
