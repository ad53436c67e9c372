//! The workspace's binaries. `cargo test --workspace` builds them (each of
//! their packages has integration tests), with the features of a test
//! build. So that `cargo test -p wasmgrid-tests` alone also runs against
//! current binaries, the first test that needs one runs `cargo test
//! --workspace --no-run`: a no-op after `cargo test --workspace`, with the
//! same features, so nothing (wasmtime above all) is built twice and no
//! binary is relinked under a running test. (`cargo build -p …` resolves
//! features without the dev-dependencies and rebuilds part of the tree.)
//! Cargo holds no lock while tests run.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// `target/<profile>` of the running test binary.
fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test binary>
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

fn ensure_built() -> &'static Result<(), String> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = target_profile_dir();
        let release = dir.file_name().is_some_and(|name| name == "release");
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .args([
                "test",
                "--workspace",
                "--no-run",
                "--quiet",
                "--manifest-path",
            ])
            .arg(&manifest);
        if release {
            command.arg("--release");
        }
        if let Some(target_dir) = dir.parent() {
            command.arg("--target-dir").arg(target_dir);
        }
        let output = command
            .output()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "building the binaries failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    })
}

/// Path of a workspace binary, built if needed.
pub fn binary(name: &str) -> PathBuf {
    if let Err(error) = ensure_built() {
        panic!("{error}");
    }
    let path = target_profile_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.exists(), "{} was not built", path.display());
    path
}
