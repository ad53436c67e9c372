//! [`BrokerError`] and its mapping to gRPC status codes, in one place.

use tonic::{Code, Status};

/// Everything a broker operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The request is malformed or asks for something impossible.
    #[error("{0}")]
    InvalidArgument(String),
    /// The thing named does not exist (or is not visible to the caller).
    #[error("{0}")]
    NotFound(String),
    /// No or an unknown token.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller may not touch this (another agent's lease, …).
    #[error("{0}")]
    PermissionDenied(String),
    /// The request is valid but the state does not allow it now.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The store failed; nothing was acknowledged.
    #[error("store: {0}")]
    Store(#[from] sqlx::Error),
    /// Applying the schema failed.
    #[error("store migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The sandbox (used for reducers and module checks) failed on the host.
    #[error("runtime: {0}")]
    Runtime(#[from] wasmgrid_runtime::RuntimeError),
    /// Serving failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// A filesystem operation on the data dir failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl BrokerError {
    /// Shorthand for [`BrokerError::InvalidArgument`].
    pub fn invalid(message: impl Into<String>) -> Self {
        BrokerError::InvalidArgument(message.into())
    }

    /// Shorthand for [`BrokerError::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        BrokerError::NotFound(message.into())
    }

    /// The gRPC code of this error.
    pub fn code(&self) -> Code {
        match self {
            BrokerError::InvalidArgument(_) => Code::InvalidArgument,
            BrokerError::NotFound(_) => Code::NotFound,
            BrokerError::Unauthenticated(_) => Code::Unauthenticated,
            BrokerError::PermissionDenied(_) => Code::PermissionDenied,
            BrokerError::FailedPrecondition(_) => Code::FailedPrecondition,
            BrokerError::Store(_)
            | BrokerError::Migrate(_)
            | BrokerError::Runtime(_)
            | BrokerError::Transport(_)
            | BrokerError::Io { .. } => Code::Internal,
        }
    }
}

impl From<BrokerError> for Status {
    fn from(error: BrokerError) -> Status {
        let code = error.code();
        if code == Code::Internal {
            tracing::error!(%error, "internal error");
        }
        Status::new(code, error.to_string())
    }
}

/// Result of broker operations.
pub type BrokerResult<T> = Result<T, BrokerError>;
