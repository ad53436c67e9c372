//! Hostile: spins forever without calling the host.
//!
//! Only fuel or an epoch deadline can stop it; the counter goes through
//! `black_box` so the optimiser cannot prove the loop useless.

use std::hint::black_box;

fn main() {
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}
