//! Writing secrets (the generated admin token, the development TLS key) to
//! the data dir so that only the broker's user can read them.

use std::io::Write;
use std::path::Path;

use crate::error::{BrokerError, BrokerResult};

/// Writes `contents` to `path`, readable and writable by its owner only
/// (mode 0600 on Unix), and syncs it.
pub fn write_private(path: &Path, contents: &str) -> BrokerResult<()> {
    let io = |source| BrokerError::Io {
        context: format!("cannot write {}", path.display()),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_can_read_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("secret");
        write_private(&path, "s3cret").expect("written");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "s3cret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
