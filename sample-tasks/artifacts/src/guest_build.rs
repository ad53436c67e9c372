//! Builds the guest workspace, once per process.
//!
//! Each test binary calls cargo at most once; when the modules are up to
//! date that costs a fraction of a second. Concurrent test processes are
//! serialised by cargo's own lock on the target directory.

use std::env;
use std::process::Command;
use std::sync::OnceLock;

use crate::error::ArtifactError;
use crate::{GUEST_TARGET, repo_root};

/// Environment variables of the calling cargo that must not leak into the
/// guest build: flags meant for the host (coverage instrumentation,
/// `target-cpu=native`) can break or change a wasm build.
const HOST_ONLY_VARIABLES: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
];

/// Builds the guest workspace in release mode unless this process already
/// did; the first outcome, success or failure, is reused.
pub fn ensure_built() -> Result<(), ArtifactError> {
    static BUILT: OnceLock<Result<(), ArtifactError>> = OnceLock::new();
    BUILT.get_or_init(build).clone()
}

fn build() -> Result<(), ArtifactError> {
    let root = repo_root();
    // Set by cargo for the tests and benches it runs: the same toolchain
    // then builds the guests.
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest = root.join("sample-tasks/Cargo.toml");
    let target_dir = root.join("target");
    let mut command = Command::new(&cargo);
    command
        .arg("build")
        .arg("--release")
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target")
        .arg(GUEST_TARGET)
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--quiet")
        .current_dir(&root);
    for variable in HOST_ONLY_VARIABLES {
        command.env_remove(variable);
    }
    let output = command
        .output()
        .map_err(|error| ArtifactError::CargoNotFound {
            cargo: cargo.clone(),
            reason: error.to_string(),
        })?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    Err(ArtifactError::BuildFailed {
        command: format!(
            "{cargo} build --release --manifest-path {} --target {GUEST_TARGET} --target-dir {} --quiet",
            manifest.display(),
            target_dir.display()
        ),
        status: output.status.to_string(),
        output: text,
    })
}
