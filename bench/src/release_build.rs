//! The binaries the `dispatch` and `efficiency` benches measure: release
//! builds of the working tree (`wasmgrid-broker`, `wasmgrid-agent`), the
//! copies every phase or round runs from the work dir, and the commit they
//! were built from.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Where the release binaries are, next to the running bench when that is a
/// release build (`target/release`), else in the workspace's
/// `target/release`.
fn release_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("path of the running bench")?;
    let profile_dir = exe
        .parent()
        .context("the bench executable has no directory")?;
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        return Ok(profile_dir.to_path_buf());
    }
    let target = profile_dir
        .parent()
        .context("the bench executable is not in target/<profile>")?;
    Ok(target.join("release"))
}

/// The release binary of `package` (a package with one binary of the same
/// name, e.g. `wasmgrid-broker`), built (or found up to date: cargo's no-op
/// takes a second) with `cargo build --release -p PACKAGE`. `flag` is the
/// bench's option that passes a binary instead (`--broker`); a failed build's
/// error names it.
pub fn build_release(package: &str, flag: &str) -> Result<PathBuf> {
    let role = flag.trim_start_matches('-');
    let release = release_dir()?;
    let target_dir = release
        .parent()
        .context("target/release has no parent")?
        .to_path_buf();
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("building the release {role} (no-op when up to date)…");
    let status = Command::new(&cargo)
        .args(["build", "--release", "--quiet", "-p", package])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .with_context(|| format!("run {cargo}"))?;
    if !status.success() {
        bail!(
            "`cargo build --release -p {package}` failed ({status}); fix the build, or pass \
             {flag} PATH to {} {role} binary built before",
            article(role)
        );
    }
    let path = release.join(format!("{package}{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        bail!("{} was not built", path.display());
    }
    Ok(path)
}

/// "a" or "an" before `word`.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// Copies the binary `from` into `work_dir` as `name` and returns the copy.
/// Every phase or round runs the copy: a `cargo build` of someone else's
/// change during the run cannot swap the binary between them. The copy is
/// left to the kernel's writeback: callers that time disk-bound work run
/// [`crate::machine::write_back_dirty_pages`] before it.
pub fn copy_to_work_dir(from: &Path, work_dir: &Path, name: &str) -> Result<PathBuf> {
    let to = work_dir.join(name);
    // Already there (`--broker` pointing at an earlier copy): copying a
    // file onto itself would truncate it.
    if to.canonicalize().ok()
        == Some(
            from.canonicalize()
                .with_context(|| format!("find {}", from.display()))?,
        )
    {
        return Ok(to);
    }
    std::fs::copy(from, &to)
        .with_context(|| format!("copy {} to {}", from.display(), to.display()))?;
    Ok(to)
}

/// The commit the binaries were built from, and whether their sources
/// (`dirs` of the repository, and the workspace's `Cargo.toml`) had
/// uncommitted changes, as `git` tells: "commit abc1234 + 3 uncommitted files
/// in broker/, proto/".
pub fn source_description(dirs: &[&str]) -> String {
    let repo = wasmgrid_sample_tasks::repo_root();
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown (no git)".to_owned();
    };
    let mut args = vec!["status", "--porcelain", "--", "Cargo.toml"];
    args.extend(dirs);
    let files = git(&args).unwrap_or_default().lines().count();
    if files == 0 {
        format!("commit {commit}")
    } else {
        format!(
            "commit {commit} + {files} uncommitted files in {}/",
            dirs.join("/, ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_take_their_article() {
        assert_eq!(article("broker"), "a");
        assert_eq!(article("agent"), "an");
    }

    #[test]
    fn a_binary_already_in_the_work_dir_is_not_copied_onto_itself() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("wasmgrid-bench-copy-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let original = dir.join("original");
        std::fs::write(&original, b"binary")?;

        let copy = copy_to_work_dir(&original, &dir, "copy")?;
        assert_eq!(copy, dir.join("copy"));
        assert_eq!(std::fs::read(&copy)?, b"binary");
        // `--broker WORK_DIR/copy`: the copy is its own source.
        let again = copy_to_work_dir(&copy, &dir, "copy")?;
        assert_eq!(again, copy);
        assert_eq!(std::fs::read(&copy)?, b"binary");

        assert!(copy_to_work_dir(&dir.join("missing"), &dir, "copy").is_err());
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
