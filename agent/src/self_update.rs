//! `wasmgrid-agent update`: [`update_agent`] fetches the newest agent build
//! the broker hosts for this machine (`FetchAgentBuild`, over the TLS every
//! agent call uses), checks its size and sha256 against what the broker
//! announced and that it runs, then renames it over the program: the old
//! program or the new one is in place, never half of one. A build that does
//! not match is deleted and nothing is replaced.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio_stream::{Stream, StreamExt};
use tonic::Code;
use wasmgrid_proto::AgentVersion;
use wasmgrid_proto::v1::{AgentBuild, FetchAgentBuildRequest};

use crate::client::{BearerToken, endpoint, grpc_client};
use crate::config::broker_url;
use crate::durable_file::{sync_dir, temp_path_beside};
use crate::earnings::explain;
use crate::error::AgentError;
use crate::identity::Identity;
use crate::module_fetch::CHUNK_TIMEOUT;
use crate::outdated::AGENT_VERSION;

/// Largest build accepted. Agent builds are tens of MiB; a broker that
/// announces more is wrong, and must not fill the volunteer's disk.
pub const MAX_AGENT_BUILD_BYTES: u64 = 512 << 20;

/// How long the new build may take to print its version before it is
/// judged not to run here.
const RUN_CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// `ETXTBSY` on Linux and the BSDs.
const ETXTBSY: i32 = 26;

/// What to update, from where.
#[derive(Clone, Copy, Debug)]
pub struct UpdateRequest<'a> {
    /// The broker to fetch from; without one, the broker of the identity in
    /// `state_dir`.
    pub broker: Option<&'a str>,
    /// The agent's state directory, to find its broker.
    pub state_dir: Option<&'a Path>,
    /// A CA certificate to trust for the broker's TLS certificate.
    pub ca_cert: Option<&'a Path>,
    /// The program to replace: `std::env::current_exe()` for the binary.
    pub executable: &'a Path,
    /// Install the broker's build even when it is this version or older.
    pub force: bool,
}

/// What the update did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// The broker's newest build is the version running.
    UpToDate {
        /// The broker asked.
        broker: String,
        /// The version, this agent's and the broker's.
        version: String,
    },
    /// The broker's newest build is older than this agent.
    BrokerHasOlder {
        /// The broker asked.
        broker: String,
        /// The broker's version.
        offered: String,
    },
    /// The program was replaced.
    Installed {
        /// The broker asked.
        broker: String,
        /// The file replaced.
        path: PathBuf,
        /// The version that ran before.
        from: String,
        /// The version installed.
        to: String,
        /// sha256 of the installed file, checked.
        sha256: String,
        /// Its size in bytes.
        size: u64,
    },
}

/// Why the update did not happen. In every case the program is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// Neither a broker nor an identity to find one in.
    #[error("no broker to update from: pass --broker URL (this agent has not registered yet)")]
    NoBroker,
    /// The broker URL or CA is unusable, or the identity unreadable.
    #[error("{0}")]
    Config(String),
    /// The broker did not answer.
    #[error("cannot reach the broker at {broker}: {detail}")]
    Unreachable {
        /// The broker's URL.
        broker: String,
        /// The transport's explanation.
        detail: String,
    },
    /// The broker hosts no build for this machine.
    #[error("the broker at {broker} has no agent build for {os}-{arch}: {message}")]
    NoBuild {
        /// The broker's URL.
        broker: String,
        /// This machine's OS and CPU.
        os: &'static str,
        arch: &'static str,
        /// The broker's message (which builds it has).
        message: String,
    },
    /// The broker answered with another error.
    #[error("the broker at {broker} refused: {code:?}: {message}")]
    Refused {
        /// The broker's URL.
        broker: String,
        /// The gRPC status code.
        code: Code,
        /// The broker's message.
        message: String,
    },
    /// The broker described the build in a way that cannot be right.
    #[error("the broker's build description is unusable: {0}")]
    BadDescription(String),
    /// The download stopped before its end.
    #[error("the download broke off: {0}; nothing was replaced")]
    Interrupted(String),
    /// The bytes are not what the broker announced.
    #[error("the download does not match what the broker announced ({0}); nothing was replaced")]
    Mismatch(String),
    /// The build does not run on this machine.
    #[error("the downloaded build does not run here ({0}); nothing was replaced")]
    DoesNotRun(String),
    /// Writing or renaming failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// The size and sha256 a download must have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExpectedBuild {
    pub(crate) size: u64,
    /// Lowercase hex.
    pub(crate) sha256: String,
}

/// Fetches the broker's newest build for this machine and, when it is newer
/// than this agent (or `force`), puts it in place of `request.executable`.
pub async fn update_agent(request: UpdateRequest<'_>) -> Result<UpdateOutcome, UpdateError> {
    let broker = resolve_broker(&request)?;
    let config_error = |error: AgentError| UpdateError::Config(error.to_string());
    let channel = endpoint(&broker, request.ca_cert)
        .map_err(config_error)?
        .connect_lazy();
    // No token: the broker serves builds to any agent, also one it refuses.
    let mut grpc = grpc_client(channel, BearerToken::default());
    let refused = |status: tonic::Status| match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
            UpdateError::Unreachable {
                broker: broker.clone(),
                detail: explain(&status),
            }
        }
        Code::NotFound => UpdateError::NoBuild {
            broker: broker.clone(),
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
            message: status.message().to_owned(),
        },
        code => UpdateError::Refused {
            broker: broker.clone(),
            code,
            message: status.message().to_owned(),
        },
    };
    let mut stream = grpc
        .fetch_agent_build(FetchAgentBuildRequest {
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
            current_version: AGENT_VERSION.to_owned(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    let first = tokio::time::timeout(CHUNK_TIMEOUT, stream.message())
        .await
        .map_err(|_| UpdateError::Interrupted("the broker sent nothing".into()))?
        .map_err(refused)?;
    let build = first
        .and_then(|chunk| chunk.build)
        .ok_or_else(|| UpdateError::BadDescription("no build described".into()))?;
    let (offered, expected) = check_description(&build)?;
    let running = AgentVersion::parse(AGENT_VERSION)
        .map_err(|error| UpdateError::Config(format!("this agent's version: {error}")))?;
    if !request.force && offered == running {
        return Ok(UpdateOutcome::UpToDate {
            broker,
            version: build.version,
        });
    }
    if !request.force && offered < running {
        return Ok(UpdateOutcome::BrokerHasOlder {
            broker,
            offered: build.version,
        });
    }
    let chunks = stream.map(|chunk| {
        chunk
            .map(|chunk| chunk.data)
            .map_err(|status| UpdateError::Interrupted(explain(&status)))
    });
    install_build(request.executable, &expected, chunks).await?;
    Ok(UpdateOutcome::Installed {
        broker,
        path: request.executable.to_path_buf(),
        from: AGENT_VERSION.to_owned(),
        to: build.version,
        sha256: expected.sha256,
        size: expected.size,
    })
}

/// The broker named, else the one the saved identity registered with.
fn resolve_broker(request: &UpdateRequest<'_>) -> Result<String, UpdateError> {
    let named = match (request.broker, request.state_dir) {
        (Some(broker), _) => broker.to_owned(),
        (None, Some(state_dir)) => {
            Identity::load(state_dir)
                .map_err(|error| {
                    UpdateError::Config(format!(
                        "cannot read the agent's identity {}: {error}",
                        Identity::path(state_dir).display()
                    ))
                })?
                .ok_or(UpdateError::NoBroker)?
                .broker
        }
        (None, None) => return Err(UpdateError::NoBroker),
    };
    broker_url(&named).map_err(|error| UpdateError::Config(error.to_string()))
}

/// The version and the expected bytes of a described build; refuses a build
/// for another machine, a size beyond [`MAX_AGENT_BUILD_BYTES`] or a digest
/// that is not one.
fn check_description(build: &AgentBuild) -> Result<(AgentVersion, ExpectedBuild), UpdateError> {
    fn bad<T>(why: String) -> Result<T, UpdateError> {
        Err(UpdateError::BadDescription(why))
    }
    if build.os != std::env::consts::OS || build.arch != std::env::consts::ARCH {
        return bad(format!(
            "it is for {}-{}, this machine is {}-{}",
            build.os,
            build.arch,
            std::env::consts::OS,
            std::env::consts::ARCH
        ));
    }
    if build.size > MAX_AGENT_BUILD_BYTES {
        return bad(format!(
            "{} bytes, more than the {MAX_AGENT_BUILD_BYTES} accepted",
            build.size
        ));
    }
    let hex_digest = build.sha256.len() == 64
        && build
            .sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex_digest {
        return bad(format!("{:?} is not a sha256", build.sha256));
    }
    let version = AgentVersion::parse(&build.version)
        .or_else(|error| bad(format!("version {:?}: {error}", build.version)))?;
    Ok((
        version,
        ExpectedBuild {
            size: build.size,
            sha256: build.sha256.clone(),
        },
    ))
}

/// Writes `chunks` to a temporary file beside `executable`, checks size and
/// sha256 against `expected` and that the file runs (`--version`), then
/// renames it over `executable`. On any failure the temporary file is
/// deleted and `executable` is untouched.
pub(crate) async fn install_build<S>(
    executable: &Path,
    expected: &ExpectedBuild,
    chunks: S,
) -> Result<(), UpdateError>
where
    S: Stream<Item = Result<Vec<u8>, UpdateError>> + Unpin,
{
    let temp = temp_path_beside(executable);
    let installed = async {
        download_to(&temp, executable, expected, chunks).await?;
        check_runs(&temp).await?;
        replace_executable(executable, &temp)
    }
    .await;
    if installed.is_err() {
        let _ = tokio::fs::remove_file(&temp).await;
    }
    installed
}

/// Writes the download to `temp`, checking it as it comes.
async fn download_to<S>(
    temp: &Path,
    executable: &Path,
    expected: &ExpectedBuild,
    mut chunks: S,
) -> Result<(), UpdateError>
where
    S: Stream<Item = Result<Vec<u8>, UpdateError>> + Unpin,
{
    let io_error = |context: String| move |source| UpdateError::Io { context, source };
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o755);
    let mut file = options.open(temp).await.map_err(io_error(format!(
        "cannot write beside {} (run the update as the user who installed the agent)",
        executable.display()
    )))?;
    let written = format!("cannot write {}", temp.display());
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let chunk = tokio::time::timeout(CHUNK_TIMEOUT, chunks.next())
            .await
            .map_err(|_| UpdateError::Interrupted("the download stalled".into()))?;
        let Some(chunk) = chunk else { break };
        let chunk = chunk?;
        size += chunk.len() as u64;
        if size > expected.size {
            return Err(UpdateError::Mismatch(format!(
                "more bytes than the announced {}",
                expected.size
            )));
        }
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(io_error(written.clone()))?;
    }
    if size != expected.size {
        return Err(UpdateError::Mismatch(format!(
            "{size} bytes of the announced {}",
            expected.size
        )));
    }
    let sha256 = hex::encode(hasher.finalize());
    if sha256 != expected.sha256 {
        return Err(UpdateError::Mismatch(format!(
            "sha256 {sha256}, announced {}",
            expected.sha256
        )));
    }
    file.sync_all().await.map_err(io_error(written.clone()))?;
    // Closed before it runs: Linux refuses to run a file open for writing.
    drop(file.into_std().await);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tokio::fs::set_permissions(temp, std::fs::Permissions::from_mode(0o755))
            .await
            .map_err(io_error(written))?;
    }
    Ok(())
}

/// Runs `path --version`: a build for another CPU, or a broken one, fails
/// here instead of after it replaced a working agent.
async fn check_runs(path: &Path) -> Result<(), UpdateError> {
    let spawn = || {
        std::process::Command::new(path)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
    };
    let mut attempts = 0;
    let mut child = loop {
        match spawn() {
            Ok(child) => break child,
            // "Text file busy": a process forked by another thread in the
            // instant the file was still open for writing holds it until it
            // execs; it lets go within milliseconds.
            Err(error) if error.raw_os_error() == Some(ETXTBSY) && attempts < 10 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => return Err(UpdateError::DoesNotRun(error.to_string())),
        }
    };
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                return Err(UpdateError::DoesNotRun(format!("--version: {status}")));
            }
            Ok(None) if started.elapsed() > RUN_CHECK_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(UpdateError::DoesNotRun(format!(
                    "--version did not end within {RUN_CHECK_TIMEOUT:?}"
                )));
            }
            Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(error) => return Err(UpdateError::DoesNotRun(error.to_string())),
        }
    }
}

/// Puts `temp` in place of `executable` by a rename. A running program's
/// file can be renamed over on Unix (the running process keeps the old
/// one); Windows refuses, but lets the running file itself be renamed, so
/// it goes aside first (as `<name>.old.exe`, removed by the next update).
fn replace_executable(executable: &Path, temp: &Path) -> Result<(), UpdateError> {
    let io_error = |context: String| move |source| UpdateError::Io { context, source };
    #[cfg(windows)]
    {
        let aside = executable.with_extension("old.exe");
        let _ = std::fs::remove_file(&aside);
        std::fs::rename(executable, &aside).map_err(io_error(format!(
            "cannot move {} aside",
            executable.display()
        )))?;
        if let Err(source) = std::fs::rename(temp, executable) {
            let _ = std::fs::rename(&aside, executable);
            return Err(UpdateError::Io {
                context: format!("cannot replace {}", executable.display()),
                source,
            });
        }
    }
    #[cfg(not(windows))]
    std::fs::rename(temp, executable)
        .map_err(io_error(format!("cannot replace {}", executable.display())))?;
    let dir = executable.parent().unwrap_or(Path::new("."));
    sync_dir(dir).map_err(io_error(format!("cannot sync {}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected(bytes: &[u8]) -> ExpectedBuild {
        ExpectedBuild {
            size: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
        }
    }

    fn stream_of(
        chunks: &[&[u8]],
    ) -> impl Stream<Item = Result<Vec<u8>, UpdateError>> + Unpin + use<> {
        tokio_stream::iter(
            chunks
                .iter()
                .map(|chunk| Ok(chunk.to_vec()))
                .collect::<Vec<_>>(),
        )
    }

    /// A directory holding the program to replace, `wasmgrid-agent`.
    fn running_agent() -> io::Result<(tempfile::TempDir, PathBuf)> {
        let dir = tempfile::tempdir()?;
        let executable = dir.path().join("wasmgrid-agent");
        std::fs::write(&executable, b"the running agent")?;
        Ok((dir, executable))
    }

    /// The directory's entries, sorted.
    fn entries(dir: &Path) -> io::Result<Vec<String>> {
        let mut names = std::fs::read_dir(dir)?
            .map(|entry| entry.map(|entry| entry.file_name().to_string_lossy().into_owned()))
            .collect::<io::Result<Vec<_>>>()?;
        names.sort();
        Ok(names)
    }

    #[tokio::test]
    async fn a_corrupted_download_replaces_nothing() -> Result<(), Box<dyn std::error::Error>> {
        let (dir, executable) = running_agent()?;
        let build: &[u8] = b"#!/bin/sh\necho new\n";

        // One byte changed on the way: the size is right, the sha256 not.
        let mut corrupted = build.to_vec();
        corrupted[3] ^= 1;
        let error = install_build(
            &executable,
            &expected(build),
            stream_of(&[&corrupted[..5], &corrupted[5..]]),
        )
        .await
        .expect_err("a corrupted build is refused");
        assert!(matches!(error, UpdateError::Mismatch(_)), "{error}");
        assert!(error.to_string().contains("sha256"), "{error}");

        // Cut short, and too long.
        let error = install_build(&executable, &expected(build), stream_of(&[&build[..4]]))
            .await
            .expect_err("a short build is refused");
        assert!(matches!(error, UpdateError::Mismatch(_)), "{error}");
        let error = install_build(&executable, &expected(build), stream_of(&[build, b"x"]))
            .await
            .expect_err("a long build is refused");
        assert!(matches!(error, UpdateError::Mismatch(_)), "{error}");

        // A stream that fails half-way.
        let failing = tokio_stream::iter(vec![
            Ok(build[..4].to_vec()),
            Err(UpdateError::Interrupted("connection reset".into())),
        ]);
        let error = install_build(&executable, &expected(build), failing)
            .await
            .expect_err("a broken stream is refused");
        assert!(matches!(error, UpdateError::Interrupted(_)), "{error}");

        assert_eq!(std::fs::read(&executable)?, b"the running agent");
        assert_eq!(
            entries(dir.path())?,
            ["wasmgrid-agent"],
            "no file is left behind"
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_build_that_does_not_run_replaces_nothing() -> Result<(), Box<dyn std::error::Error>>
    {
        let (dir, executable) = running_agent()?;
        let build: &[u8] = b"\x7fELF but not really";
        let error = install_build(&executable, &expected(build), stream_of(&[build]))
            .await
            .expect_err("a build that cannot run is refused");
        assert!(matches!(error, UpdateError::DoesNotRun(_)), "{error}");
        assert_eq!(std::fs::read(&executable)?, b"the running agent");
        assert_eq!(entries(dir.path())?, ["wasmgrid-agent"]);
        Ok(())
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_good_build_replaces_the_program() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;

        let (dir, executable) = running_agent()?;
        let build: &[u8] = b"#!/bin/sh\necho 'wasmgrid-agent 9.9.9'\n";
        install_build(
            &executable,
            &expected(build),
            stream_of(&[&build[..7], &build[7..]]),
        )
        .await?;
        assert_eq!(std::fs::read(&executable)?, build);
        let mode = std::fs::metadata(&executable)?.permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(entries(dir.path())?, ["wasmgrid-agent"]);
        Ok(())
    }

    #[test]
    fn descriptions_for_another_machine_or_without_a_digest_are_refused() {
        let good = AgentBuild {
            file: String::new(),
            version: "1.2.3".into(),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            sha256: "ab".repeat(32),
            size: 10,
        };
        assert!(check_description(&good).is_ok());
        for bad in [
            AgentBuild {
                os: "plan9".into(),
                ..good.clone()
            },
            AgentBuild {
                sha256: "AB".repeat(32),
                ..good.clone()
            },
            AgentBuild {
                size: MAX_AGENT_BUILD_BYTES + 1,
                ..good.clone()
            },
            AgentBuild {
                version: "latest".into(),
                ..good.clone()
            },
        ] {
            assert!(check_description(&bad).is_err(), "{bad:?}");
        }
    }
}
