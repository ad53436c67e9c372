//! `cargo +nightly fuzz run module_loading`: see `wasmgrid_fuzz_targets::module_loading`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmgrid_fuzz_targets::module_loading(data));
