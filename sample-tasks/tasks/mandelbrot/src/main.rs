//! Renders one Mandelbrot tile: JSON `MandelbrotTile` in, `tile_w * tile_h`
//! raw pixel bytes out (row-major, escape counts scaled to 0..=255).
//!
//! The output is raw bytes rather than JSON because a tile is a large byte
//! array: JSON would triple its size.

use std::process;

use wasmgrid_kernels::mandelbrot::{MandelbrotTile, render};
use wasmgrid_sdk::failure::EXIT_INVALID_INPUT;

fn main() {
    wasmgrid_sdk::run_bytes(|input| {
        let tile: MandelbrotTile = match serde_json::from_slice(&input) {
            Ok(tile) => tile,
            // Same message and exit code as `run_json` for undecodable input.
            Err(error) => {
                eprintln!("invalid input: {error}");
                process::exit(EXIT_INVALID_INPUT);
            }
        };
        render(&tile)
    });
}
