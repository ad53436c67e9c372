//! [`AgentError`]: why the agent could not start or had to stop. Everything
//! else (a broker away, a task failing, a lease lost) is handled and logged,
//! never an error of the agent.

use std::path::PathBuf;

use wasmgrid_runtime::RuntimeError;

/// The agent cannot run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration is unusable (bad broker URL, zero slots, …).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The state directory (or something in it) cannot be created or used.
    #[error("state directory {path}: {source}")]
    StateDir {
        /// The file or directory that failed.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The sandbox could not be set up on this machine.
    #[error("cannot start the sandbox: {0}")]
    Runtime(#[from] RuntimeError),
    /// The broker refused to register the agent, for a reason retrying will
    /// not fix (e.g. an invalid name).
    #[error("the broker refused registration: {code:?}: {message}")]
    Registration {
        /// The gRPC status code.
        code: tonic::Code,
        /// The broker's message.
        message: String,
    },
    /// The broker requires a newer agent (`wasmgrid-agent update` fetches
    /// it). Unsent results stay in the outbox for the updated agent.
    #[error("{message}")]
    Outdated {
        /// The lowest version the broker accepts.
        required: String,
        /// The broker's message, which says how to update.
        message: String,
    },
}

impl AgentError {
    pub(crate) fn state_dir(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AgentError::StateDir {
            path: path.into(),
            source,
        }
    }
}
