//! Errors of the host, as opposed to a task's own failures (those are a
//! [`Status`](crate::Status) inside an [`Outcome`](crate::Outcome)).

/// Something went wrong on the host side, not in the task.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The wasmtime engine could not be configured on this machine.
    #[error("cannot set up the wasm engine: {0}")]
    Engine(String),
    /// The runtime's executor threads are gone (the runtime is shutting down).
    #[error("the runtime is shutting down")]
    ShuttingDown,
    /// An executor thread could not be started.
    #[error("cannot start executor thread: {0}")]
    Thread(#[source] std::io::Error),
    /// A task thread stopped without an outcome: a host bug, logged.
    #[error("the task thread failed without an outcome")]
    TaskPanicked,
    /// The module cannot run (returned by `prepare`; `run` reports this as
    /// the `InvalidModule` status instead).
    #[error("invalid module: {0}")]
    InvalidModule(String),
    /// The requested limits cannot be honoured by this runtime.
    #[error("invalid limits: {0}")]
    InvalidLimits(String),
    /// The module cache directory cannot be created or used.
    #[error("module cache at {path}: {source}")]
    Cache {
        /// The cache directory.
        path: std::path::PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}
