//! Render one tile of a Mandelbrot image.
//!
//! A workload cuts an image into tiles, one task each; every pixel is
//! computed from its position in the whole image, never from its position in
//! the tile, so the tiles stitch into exactly the image a single task would
//! render. Only plain `f64` additions and multiplications are used: Rust
//! never fuses them into FMA on its own and wasm has no FMA, so the bytes
//! are identical natively and in wasm, on every machine — which replication
//! checks rely on.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Largest tile in pixels (16 Mi): 16 MiB of output, far above a sensible
/// tile and below what a task may return, so a typo in a size fails fast
/// instead of exhausting memory.
pub const MAX_TILE_PIXELS: u64 = 16 * 1024 * 1024;

/// Input of the `mandelbrot` task: which part of which image to render.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MandelbrotTile {
    /// Width of the whole image in pixels.
    pub width: u32,
    /// Height of the whole image in pixels.
    pub height: u32,
    /// Real part at the left edge of the image.
    pub x0: f64,
    /// Imaginary part at the top edge of the image.
    pub y0: f64,
    /// Real part at the right edge of the image.
    pub x1: f64,
    /// Imaginary part at the bottom edge of the image.
    pub y1: f64,
    /// Left column of the tile in the image.
    pub tile_x: u32,
    /// Top row of the tile in the image.
    pub tile_y: u32,
    /// Width of the tile in pixels.
    pub tile_w: u32,
    /// Height of the tile in pixels.
    pub tile_h: u32,
    /// Iterations after which a point counts as inside the set; the cost of
    /// the task grows linearly with it.
    pub max_iter: u32,
}

/// Why a tile cannot be rendered.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum MandelbrotError {
    /// The tile reaches beyond the right or bottom edge of the image.
    TileOutsideImage,
    /// The tile has more than [`MAX_TILE_PIXELS`] pixels.
    TileTooLarge {
        /// Pixels of the requested tile.
        pixels: u64,
    },
    /// A bound of the complex plane is NaN or infinite.
    NonFiniteBounds,
    /// `max_iter` is 0, so no pixel value can be scaled.
    NoIterations,
}

impl fmt::Display for MandelbrotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TileOutsideImage => f.write_str("tile reaches outside the image"),
            Self::TileTooLarge { pixels } => {
                write!(f, "tile of {pixels} pixels exceeds {MAX_TILE_PIXELS}")
            }
            Self::NonFiniteBounds => f.write_str("plane bounds must be finite"),
            Self::NoIterations => f.write_str("max_iter must be at least 1"),
        }
    }
}

impl std::error::Error for MandelbrotError {}

/// Renders `tile`: `tile_w * tile_h` bytes, row-major, each the escape
/// iteration count scaled to `0..=255` (255 = did not escape).
pub fn render(tile: &MandelbrotTile) -> Result<Vec<u8>, MandelbrotError> {
    check(tile)?;
    let width = f64::from(tile.width);
    let height = f64::from(tile.height);
    let mut pixels = Vec::with_capacity(tile.tile_w as usize * tile.tile_h as usize);
    for row in tile.tile_y..tile.tile_y + tile.tile_h {
        let ci = tile.y0 + (tile.y1 - tile.y0) * f64::from(row) / height;
        for column in tile.tile_x..tile.tile_x + tile.tile_w {
            let cr = tile.x0 + (tile.x1 - tile.x0) * f64::from(column) / width;
            let iterations = escape_iterations(cr, ci, tile.max_iter);
            pixels.push(scale(iterations, tile.max_iter));
        }
    }
    Ok(pixels)
}

fn check(tile: &MandelbrotTile) -> Result<(), MandelbrotError> {
    let right = u64::from(tile.tile_x) + u64::from(tile.tile_w);
    let bottom = u64::from(tile.tile_y) + u64::from(tile.tile_h);
    if right > u64::from(tile.width) || bottom > u64::from(tile.height) {
        return Err(MandelbrotError::TileOutsideImage);
    }
    let pixels = u64::from(tile.tile_w) * u64::from(tile.tile_h);
    if pixels > MAX_TILE_PIXELS {
        return Err(MandelbrotError::TileTooLarge { pixels });
    }
    if ![tile.x0, tile.y0, tile.x1, tile.y1]
        .iter()
        .all(|b| b.is_finite())
    {
        return Err(MandelbrotError::NonFiniteBounds);
    }
    if tile.max_iter == 0 {
        return Err(MandelbrotError::NoIterations);
    }
    Ok(())
}

/// Iterations of `z ← z² + c` before `|z| > 2`, or `max_iter`.
fn escape_iterations(cr: f64, ci: f64, max_iter: u32) -> u32 {
    let (mut zr, mut zi) = (0.0f64, 0.0f64);
    for iteration in 0..max_iter {
        let (zr2, zi2) = (zr * zr, zi * zi);
        if zr2 + zi2 > 4.0 {
            return iteration;
        }
        zi = 2.0 * zr * zi + ci;
        zr = zr2 - zi2 + cr;
    }
    max_iter
}

/// Maps `0..=max_iter` onto `0..=255` with integer arithmetic only.
fn scale(iterations: u32, max_iter: u32) -> u8 {
    // iterations <= max_iter, so the quotient is at most 255.
    (u64::from(iterations) * 255 / u64::from(max_iter)) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(width: u32, height: u32) -> MandelbrotTile {
        MandelbrotTile {
            width,
            height,
            x0: -2.0,
            y0: -1.25,
            x1: 0.5,
            y1: 1.25,
            tile_x: 0,
            tile_y: 0,
            tile_w: width,
            tile_h: height,
            max_iter: 200,
        }
    }

    #[test]
    fn known_points() {
        assert_eq!(escape_iterations(0.0, 0.0, 100), 100);
        assert_eq!(escape_iterations(-1.0, 0.0, 100), 100);
        assert_eq!(escape_iterations(2.0, 2.0, 100), 1);
        assert_eq!(escape_iterations(1.0, 0.0, 100), 3);
    }

    #[test]
    fn output_size_and_scale() {
        let image = render(&whole(64, 48)).expect("valid tile");
        assert_eq!(image.len(), 64 * 48);
        // The origin (column 51.2 → 51, row 24) is inside the set.
        assert_eq!(image[24 * 64 + 51], 255);
        // The top-left corner escapes at once.
        assert!(image[0] < 5);
    }

    #[test]
    fn tiles_stitch_into_the_whole_image() {
        let image = whole(50, 30);
        let full = render(&image).expect("valid tile");
        let mut stitched = vec![0u8; full.len()];
        for (tile_x, tile_w) in [(0, 17), (17, 33)] {
            for (tile_y, tile_h) in [(0, 10), (10, 19), (29, 1)] {
                let tile = MandelbrotTile {
                    tile_x,
                    tile_y,
                    tile_w,
                    tile_h,
                    ..image
                };
                let pixels = render(&tile).expect("valid tile");
                for (row, line) in pixels.chunks(tile_w as usize).enumerate() {
                    let offset = (tile_y as usize + row) * 50 + tile_x as usize;
                    stitched[offset..offset + tile_w as usize].copy_from_slice(line);
                }
            }
        }
        assert_eq!(stitched, full);
    }

    #[test]
    fn empty_tile_is_empty() {
        let tile = MandelbrotTile {
            tile_x: 5,
            tile_w: 0,
            ..whole(5, 5)
        };
        assert_eq!(render(&tile), Ok(Vec::new()));
    }

    #[test]
    fn invalid_tiles_are_rejected() {
        let image = whole(100, 100);
        let outside = MandelbrotTile {
            tile_x: 90,
            tile_w: 11,
            ..image
        };
        assert_eq!(render(&outside), Err(MandelbrotError::TileOutsideImage));
        let overflowing = MandelbrotTile {
            tile_y: u32::MAX,
            tile_h: u32::MAX,
            ..image
        };
        assert_eq!(render(&overflowing), Err(MandelbrotError::TileOutsideImage));
        let huge = MandelbrotTile {
            tile_w: 5000,
            tile_h: 5000,
            ..whole(5000, 5000)
        };
        assert_eq!(
            render(&huge),
            Err(MandelbrotError::TileTooLarge { pixels: 25_000_000 })
        );
        let nan = MandelbrotTile {
            x1: f64::NAN,
            ..image
        };
        assert_eq!(render(&nan), Err(MandelbrotError::NonFiniteBounds));
        let no_iterations = MandelbrotTile {
            max_iter: 0,
            ..image
        };
        assert_eq!(render(&no_iterations), Err(MandelbrotError::NoIterations));
    }

    #[test]
    fn rendering_is_deterministic() {
        let digest = |bytes: &[u8]| {
            bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            })
        };
        let first = render(&whole(80, 60)).expect("valid tile");
        let second = render(&whole(80, 60)).expect("valid tile");
        assert_eq!(digest(&first), digest(&second));
    }
}
