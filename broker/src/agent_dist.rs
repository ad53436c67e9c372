//! [`AgentDist`]: the agent builds a broker hosts (`--agent-dist DIR`), so
//! volunteers install and update the one agent from the broker they work
//! for. The directory is read once, at start: each build's sha256 is taken
//! then, and a build replaced while the broker runs is refused, not served
//! with a stale digest (restart the broker to publish new builds).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use futures::Stream;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use wasmgrid_proto::{AgentBuildName, AgentVersion, MODULE_CHUNK_BYTES};

use crate::error::{BrokerError, BrokerResult};

/// One build in the catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentBuild {
    /// Its file name, which is also its name in URLs.
    pub file: String,
    /// Version and platform, from the file name.
    pub name: AgentBuildName,
    /// sha256 of the file at start, lowercase hex.
    pub sha256: String,
    /// Its size in bytes at start.
    pub size: u64,
    /// Where it is.
    pub path: PathBuf,
}

/// The builds found in `--agent-dist`, newest version first per platform.
#[derive(Clone, Debug, Default)]
pub struct AgentDist {
    builds: Vec<AgentBuild>,
}

impl AgentDist {
    /// No builds (a broker without `--agent-dist`).
    pub fn empty() -> Self {
        AgentDist::default()
    }

    /// Reads `dir`: every regular file named as a build is hashed; anything
    /// else is logged and skipped. Fails when `dir` cannot be read, or a
    /// build in it cannot.
    pub fn scan(dir: &Path) -> BrokerResult<Self> {
        let io_error = |context: String| move |source| BrokerError::Io { context, source };
        let entries = std::fs::read_dir(dir).map_err(io_error(format!(
            "cannot read the agent builds directory (--agent-dist) {}",
            dir.display()
        )))?;
        let mut builds = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error(format!("cannot list {}", dir.display())))?;
            let path = entry.path();
            let Some(file) = entry.file_name().to_str().map(str::to_owned) else {
                tracing::warn!(file = %path.display(), "skipping a file whose name is not UTF-8");
                continue;
            };
            let name = match AgentBuildName::parse(&file) {
                Ok(name) => name,
                Err(error) => {
                    tracing::warn!(%error, "skipping a file that is not an agent build");
                    continue;
                }
            };
            // Follows symbolic links, so a release directory can link builds.
            let metadata = std::fs::metadata(&path)
                .map_err(io_error(format!("cannot read {}", path.display())))?;
            if !metadata.is_file() {
                tracing::warn!(file = %path.display(), "skipping an agent build that is not a regular file");
                continue;
            }
            let (sha256, size) =
                hash_file(&path).map_err(io_error(format!("cannot read {}", path.display())))?;
            tracing::info!(%file, %sha256, size, "agent build");
            builds.push(AgentBuild {
                file,
                name,
                sha256,
                size,
                path,
            });
        }
        builds.sort_by(|a, b| {
            (&a.name.os, &a.name.arch, &b.name.version).cmp(&(
                &b.name.os,
                &b.name.arch,
                &a.name.version,
            ))
        });
        Ok(AgentDist { builds })
    }

    /// Every build: by OS, CPU, then newest version first.
    pub fn builds(&self) -> &[AgentBuild] {
        &self.builds
    }

    /// The newest build of each platform, keyed by `(os, arch)`.
    pub fn newest_per_platform(&self) -> BTreeMap<(&str, &str), &AgentBuild> {
        let mut newest = BTreeMap::new();
        for build in &self.builds {
            // Sorted newest first: the first one of a platform wins.
            newest
                .entry((build.name.os.as_str(), build.name.arch.as_str()))
                .or_insert(build);
        }
        newest
    }

    /// The newest build for `os` and `arch`.
    pub fn newest(&self, os: &str, arch: &str) -> Option<&AgentBuild> {
        self.builds
            .iter()
            .find(|build| build.name.os == os && build.name.arch == arch)
    }

    /// The build whose file name is `file`: only names in the catalogue
    /// are ever opened, so no request reaches another file.
    pub fn by_file(&self, file: &str) -> Option<&AgentBuild> {
        self.builds.iter().find(|build| build.file == file)
    }

    /// Whether some platform has no build of at least `version`: agents of
    /// that platform, refused for being older, find no update here.
    pub fn lacks(&self, version: &AgentVersion) -> bool {
        self.builds.is_empty()
            || self
                .newest_per_platform()
                .values()
                .any(|build| build.name.version < *version)
    }
}

impl AgentBuild {
    /// Opens the build for serving; refuses it when its size changed since
    /// the broker hashed it (its sha256 would no longer be its own).
    pub async fn open(&self) -> BrokerResult<tokio::fs::File> {
        let file = tokio::fs::File::open(&self.path)
            .await
            .map_err(|source| BrokerError::Io {
                context: format!("cannot open the agent build {}", self.path.display()),
                source,
            })?;
        let size = file
            .metadata()
            .await
            .map_err(|source| BrokerError::Io {
                context: format!("cannot read the agent build {}", self.path.display()),
                source,
            })?
            .len();
        if size != self.size {
            return Err(BrokerError::FailedPrecondition(format!(
                "the agent build {} changed since the broker started (it was {} bytes, it is \
                 {size}): its operator must restart the broker to publish it",
                self.file, self.size
            )));
        }
        Ok(file)
    }
}

/// The file's bytes in chunks of at most [`MODULE_CHUNK_BYTES`], `size` in
/// all: a file that grew is cut there, one that shrank ends in an error, so
/// what is sent never exceeds what was announced.
pub fn chunks(
    file: tokio::fs::File,
    size: u64,
) -> impl Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static {
    futures::stream::try_unfold((file, size), |(mut file, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let want =
            usize::try_from(left.min(MODULE_CHUNK_BYTES as u64)).unwrap_or(MODULE_CHUNK_BYTES);
        let mut chunk = vec![0; want];
        let read = file.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the agent build shrank while it was sent",
            ));
        }
        chunk.truncate(read);
        Ok(Some((chunk, (file, left - read as u64))))
    })
}

/// sha256 (hex) and size of a file, read in chunks.
fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; MODULE_CHUNK_BYTES];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;

    use super::*;

    fn version(text: &str) -> AgentVersion {
        AgentVersion::parse(text).expect("a version")
    }

    #[test]
    fn scan_hashes_builds_and_skips_the_rest() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("wasmgrid-agent-0.2.0-linux-x86_64"), b"old")?;
        std::fs::write(
            dir.path().join("wasmgrid-agent-0.10.0-linux-x86_64"),
            b"new",
        )?;
        std::fs::write(
            dir.path().join("wasmgrid-agent-0.3.0-macos-aarch64"),
            b"mac",
        )?;
        std::fs::write(dir.path().join("README"), b"not a build")?;
        std::fs::create_dir(dir.path().join("wasmgrid-agent-9.0.0-linux-x86_64"))?;
        let dist = AgentDist::scan(dir.path())?;
        let files: Vec<&str> = dist.builds().iter().map(|b| b.file.as_str()).collect();
        assert_eq!(
            files,
            [
                "wasmgrid-agent-0.10.0-linux-x86_64",
                "wasmgrid-agent-0.2.0-linux-x86_64",
                "wasmgrid-agent-0.3.0-macos-aarch64",
            ]
        );
        let newest = dist.newest("linux", "x86_64").ok_or("no linux build")?;
        assert_eq!(newest.name.version, version("0.10.0"));
        assert_eq!(newest.sha256, hex::encode(Sha256::digest(b"new")));
        assert_eq!(newest.size, 3);
        assert!(dist.newest("linux", "aarch64").is_none());
        assert_eq!(dist.newest_per_platform().len(), 2);
        assert!(dist.by_file("README").is_none());
        assert!(dist.lacks(&version("0.4.0")), "the macOS build is older");
        assert!(!dist.lacks(&version("0.3.0")));
        Ok(())
    }

    #[test]
    fn a_missing_directory_is_an_error_that_names_it() {
        let error =
            AgentDist::scan(Path::new("/nonexistent/agent-dist")).expect_err("no such directory");
        assert!(
            error.to_string().contains("/nonexistent/agent-dist"),
            "{error}"
        );
        assert!(error.to_string().contains("--agent-dist"), "{error}");
    }

    #[tokio::test]
    async fn a_build_is_sent_in_chunks_and_a_changed_one_is_refused()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("wasmgrid-agent-0.2.0-linux-x86_64");
        let bytes: Vec<u8> = (0..MODULE_CHUNK_BYTES + 10).map(|i| i as u8).collect();
        std::fs::write(&path, &bytes)?;
        let dist = AgentDist::scan(dir.path())?;
        let build = dist.newest("linux", "x86_64").ok_or("no build")?;
        let sent: Vec<Vec<u8>> = chunks(build.open().await?, build.size)
            .try_collect()
            .await?;
        assert_eq!(sent.len(), 2);
        assert_eq!(sent.concat(), bytes);

        std::fs::write(&path, b"replaced")?;
        assert!(build.open().await.is_err());
        Ok(())
    }
}
