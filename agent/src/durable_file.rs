//! Files that survive a crash whole: written to a temporary file, synced,
//! then renamed over the target, so a reader sees the old content or the new
//! one, never half of it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Suffix of temporary files; leftovers of a crash are removed at start.
const TEMP_SUFFIX: &str = ".tmp";

/// Writes `bytes` to `path` atomically and durably. The file is readable by
/// its owner only: state files hold the agent's token and task results.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, true)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Writes `bytes` to `path` atomically (a reader never sees half of it) but
/// without syncing: for files a crash may lose, such as the status the
/// running agent rewrites every second.
pub(crate) fn write_replacing(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, false)
}

/// Writes a temporary file beside `path`, synced if `sync`, and renames it
/// over `path`.
fn replace(path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let temp = temp_path_beside(path);
    let written = write_new(&temp, bytes, sync).and_then(|()| fs::rename(&temp, path));
    if let Err(error) = written {
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    Ok(())
}

/// A new temporary file name in `path`'s directory (so renaming it over
/// `path` is atomic), hidden, and removed by
/// [`remove_leftover_temp_files`] if a crash leaves it.
pub(crate) fn temp_path_beside(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(
        ".{name}.{:016x}{TEMP_SUFFIX}",
        rand::random::<u64>()
    ))
}

fn write_new(path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    if sync {
        file.sync_all()?;
    }
    Ok(())
}

/// Syncs the content of the file at `path`, written earlier without
/// syncing (its name is only durable once its directory is synced too).
/// Opened for writing: Windows flushes only through a writable handle.
pub(crate) fn sync_file(path: &Path) -> io::Result<()> {
    OpenOptions::new().write(true).open(path)?.sync_all()
}

/// Makes the rename itself durable (on Unix a directory entry is only on
/// disk once the directory is synced).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
    }
    Ok(())
}

/// Removes temporary files a crash left behind in `dir`.
pub(crate) fn remove_leftover_temp_files(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.')
            && name.ends_with(TEMP_SUFFIX)
            && let Err(error) = fs::remove_file(entry.path())
        {
            tracing::warn!(file = %entry.path().display(), %error, "cannot remove leftover temporary file");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temporary_file() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state.json");
        write_atomically(&path, b"one")?;
        write_atomically(&path, b"two")?;
        assert_eq!(fs::read(&path)?, b"two");
        assert_eq!(fs::read_dir(dir.path())?.count(), 1);

        fs::write(dir.path().join(".state.json.1234.tmp"), b"half")?;
        remove_leftover_temp_files(dir.path())?;
        assert_eq!(fs::read_dir(dir.path())?.count(), 1);
        Ok(())
    }
}
