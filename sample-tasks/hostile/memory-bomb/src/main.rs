//! Hostile: allocates 1 MiB blocks forever and keeps them all.
//!
//! Every page of each block is written, so the memory is really used, not
//! just reserved. The sandbox's memory limit must stop it: the allocator
//! then fails and the task aborts.

use std::hint::black_box;

/// Size of each allocation.
const BLOCK_BYTES: usize = 1024 * 1024;

fn main() {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; BLOCK_BYTES];
        for byte in block.iter_mut().step_by(4096) {
            *byte = 1;
        }
        hoard.push(black_box(block));
        black_box(&hoard);
    }
}
