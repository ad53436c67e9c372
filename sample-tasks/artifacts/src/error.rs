//! Why a guest module could not be provided.

use std::fmt;
use std::path::PathBuf;

/// The fix for the most common build failure on a fresh machine.
const TARGET_HINT: &str = "hint: the guest programs need the wasm target: \
                           `rustup target add wasm32-wasip1`";

/// Everything [`try_wasm`](crate::try_wasm) can fail with.
///
/// `Clone` because the outcome of the one build per process is cached and
/// handed to every caller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArtifactError {
    /// The name is not in [`TASKS`](crate::TASKS) or
    /// [`HOSTILE`](crate::HOSTILE).
    UnknownProgram(String),
    /// cargo could not be started at all.
    CargoNotFound {
        /// The cargo program tried.
        cargo: String,
        /// The operating system's reason.
        reason: String,
    },
    /// cargo ran and failed.
    BuildFailed {
        /// The command line, to rerun it by hand.
        command: String,
        /// How cargo exited.
        status: String,
        /// cargo's stderr (and stdout, if any).
        output: String,
    },
    /// The build succeeded but the module is not where it should be.
    Missing(PathBuf),
}

impl fmt::Display for ArtifactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownProgram(name) => write!(
                f,
                "unknown guest program `{name}`: add its crate to sample-tasks/ and to \
                 wasmgrid_sample_tasks::TASKS or HOSTILE"
            ),
            Self::CargoNotFound { cargo, reason } => {
                write!(
                    f,
                    "cannot run `{cargo}` to build the guest programs: {reason}"
                )
            }
            Self::BuildFailed {
                command,
                status,
                output,
            } => write!(
                f,
                "building the guest programs failed ({status})\ncommand: {command}\n{output}\n{TARGET_HINT}"
            ),
            Self::Missing(path) => write!(
                f,
                "{} is missing after a successful build\n{TARGET_HINT}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ArtifactError {}
