//! Hostile: recurses without bound.
//!
//! Each frame keeps a 256-byte array alive across the recursive call, and
//! uses the callee's result, so the optimiser can neither turn the recursion
//! into a loop nor drop the frames. It ends when either the shadow stack in
//! linear memory or the host's wasm stack runs out; both must surface as a
//! trap, never as a crash of the host.

use std::hint::black_box;

#[inline(never)]
fn descend(depth: u64) -> u64 {
    let mut frame = [0u8; 256];
    frame[(depth % 256) as usize] = depth as u8;
    let frame = black_box(&mut frame);
    // Never true, but the optimiser cannot know it: this keeps rustc's
    // unconditional-recursion lint quiet without an allow.
    if black_box(depth) == u64::MAX {
        return 0;
    }
    let below = descend(depth + 1);
    below.wrapping_add(u64::from(frame[(below % 256) as usize]))
}

fn main() {
    let total = descend(0);
    println!("{total}");
}
