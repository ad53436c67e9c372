//! Hostile: loops forever inside host calls.
//!
//! Each iteration asks `random_get` for 64 KiB, so almost all the time is
//! spent in the host where no wasm fuel is burnt: the sandbox must charge
//! host calls or enforce its wall-time limit to stop it.

use std::hint::black_box;

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    /// WASI `random_get`: fills `buf` with `len` random bytes; returns errno.
    fn random_get(buf: *mut u8, len: usize) -> u16;
}

fn main() {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: the pointer and length describe `buffer`, which outlives
        // the call.
        let errno = unsafe { random_get(buffer.as_mut_ptr(), buffer.len()) };
        black_box((errno, &buffer));
    }
}
