//! Hostile: writes 1 MiB chunks to stdout forever.
//!
//! The sandbox's output limit must stop it. Write errors are ignored, so a
//! host that merely returns an error keeps being hammered.

use std::io::{self, Write};

/// Size of each write.
const CHUNK_BYTES: usize = 1024 * 1024;

fn main() {
    let chunk = vec![b'x'; CHUNK_BYTES];
    let mut stdout = io::stdout().lock();
    loop {
        // Ignoring the error is the point: see the module comment.
        let _ = stdout.write_all(&chunk);
    }
}
