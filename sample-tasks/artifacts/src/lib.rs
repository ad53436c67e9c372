//! Find the guest programs of `sample-tasks/` from host tests and benches.
//!
//! The guest programs live in their own cargo workspace, built for
//! `wasm32-wasip1`, so a host `cargo test` cannot depend on them directly.
//! [`wasm`] builds that workspace once per process (a no-op when it is up to
//! date) and returns the path of one module, so a test never runs against a
//! stale or missing module — and never needs a manual build step first.
//!
//! ```no_run
//! let bytes = wasmgrid_sample_tasks::read_wasm("echo");
//! assert!(bytes.starts_with(b"\0asm"));
//! ```
//!
//! # Layout
//!
//! - [`catalogue`]: the names of every guest program ([`TASKS`],
//!   [`HOSTILE`]) and hand-written hostile module ([`HOSTILE_FILES`]),
//!   checked against the folders on disk.
//! - [`guest_build`]: runs cargo on the guest workspace, once per process.
//! - [`error`]: [`ArtifactError`], why a module could not be provided.

pub mod catalogue;
pub mod error;
pub mod guest_build;

use std::fs;
use std::path::{Path, PathBuf};

pub use catalogue::{HOSTILE, HOSTILE_FILES, TASKS};
pub use error::ArtifactError;

/// The target triple the guest programs are built for.
pub const GUEST_TARGET: &str = "wasm32-wasip1";

/// Root of the repository, derived from this crate's location
/// (`<repo>/sample-tasks/artifacts`) so it holds from any working directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            Path::to_path_buf,
        )
}

/// Path of the guest program `name` (an entry of [`TASKS`] or [`HOSTILE`]),
/// building the guest workspace first if this process has not yet done so.
///
/// # Panics
///
/// If `name` is unknown or the build fails; the message includes cargo's
/// stderr. Tests want a loud failure here: see [`try_wasm`] otherwise.
pub fn wasm(name: &str) -> PathBuf {
    try_wasm(name).unwrap_or_else(|error| panic!("{error}"))
}

/// Like [`wasm`], returning an error instead of panicking, for callers
/// (benchmarks, tools) that can report or skip.
pub fn try_wasm(name: &str) -> Result<PathBuf, ArtifactError> {
    if !TASKS.contains(&name) && !HOSTILE.contains(&name) {
        return Err(ArtifactError::UnknownProgram(name.to_owned()));
    }
    guest_build::ensure_built()?;
    let path = wasm_path(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(ArtifactError::Missing(path))
    }
}

/// The bytes of the guest program `name`, as a runtime receives them.
///
/// # Panics
///
/// As [`wasm`], or if the file cannot be read.
pub fn read_wasm(name: &str) -> Vec<u8> {
    let path = wasm(name);
    fs::read(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// Path of a hand-written hostile module in `sample-tasks/hostile/` (an entry
/// of [`HOSTILE_FILES`], e.g. `"table-bomb.wat"`). These need no build;
/// `.wat` files are text for the runtime's tests to assemble.
///
/// # Panics
///
/// If the file does not exist, so a typo fails at its source.
pub fn hostile_file(file_name: &str) -> PathBuf {
    let path = repo_root().join("sample-tasks/hostile").join(file_name);
    assert!(
        path.is_file(),
        "no hostile module {} (known: {HOSTILE_FILES:?})",
        path.display()
    );
    path
}

/// Where cargo puts the module of guest program `name`.
fn wasm_path(name: &str) -> PathBuf {
    repo_root()
        .join("target")
        .join(GUEST_TARGET)
        .join("release")
        .join(format!("{name}.wasm"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_root_holds_the_guest_workspace() {
        assert!(repo_root().join("sample-tasks/Cargo.toml").is_file());
    }

    #[test]
    fn every_guest_program_is_built() {
        let echo = wasm("echo");
        assert!(echo.ends_with("target/wasm32-wasip1/release/echo.wasm"));
        for name in TASKS.iter().chain(HOSTILE) {
            let bytes = read_wasm(name);
            assert!(
                bytes.starts_with(b"\0asm\x01\0\0\0"),
                "{name} is a wasm module"
            );
        }
    }

    #[test]
    fn unknown_program_is_an_error() {
        assert!(matches!(
            try_wasm("no-such-task"),
            Err(ArtifactError::UnknownProgram(name)) if name == "no-such-task"
        ));
    }

    #[test]
    fn hostile_files_are_found() {
        for file_name in HOSTILE_FILES {
            assert!(hostile_file(file_name).is_file());
        }
    }

    #[test]
    #[should_panic(expected = "no hostile module")]
    fn missing_hostile_file_panics() {
        hostile_file("nope.wat");
    }
}
