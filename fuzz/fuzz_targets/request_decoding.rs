//! `cargo +nightly fuzz run request_decoding`: see `wasmgrid_fuzz_targets::request_decoding`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmgrid_fuzz_targets::request_decoding(data));
