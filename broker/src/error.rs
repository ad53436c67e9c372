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
    /// The agent is older than the broker's `--min-agent-version`.
    #[error(
        "this broker requires wasmgrid-agent >= {required} (you run {running}): run \
         `wasmgrid-agent update --broker {broker_url}`, then start the agent again"
    )]
    AgentOutdated {
        /// The oldest version accepted.
        required: String,
        /// The version the agent said it runs.
        running: String,
        /// The broker's URL as volunteers know it, or a placeholder.
        broker_url: String,
    },
    /// The store failed; nothing was acknowledged.
    #[error("store: {0}")]
    Store(#[from] sqlx::Error),
    /// The store failed on the group-commit writer; nothing was
    /// acknowledged.
    #[error("store: {0}")]
    Writer(#[from] rusqlite::Error),
    /// The group commit holding this request's changes failed (shared by
    /// every request of the batch); nothing was acknowledged.
    #[error("store: {0}")]
    Commit(std::sync::Arc<rusqlite::Error>),
    /// A store call hit a bug in the broker (it panicked); its changes were
    /// rolled back.
    #[error("internal error: {0}")]
    Internal(String),
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

    /// The store's condition behind this error, if it is a store error of
    /// one of the kinds [`StoreCondition`] names.
    pub fn store_condition(&self) -> Option<StoreCondition> {
        match self {
            BrokerError::Store(error) => store_condition(error),
            BrokerError::Writer(error) => writer_condition(error),
            BrokerError::Commit(error) => writer_condition(error),
            _ => None,
        }
    }

    /// The gRPC code of this error.
    pub fn code(&self) -> Code {
        match self {
            BrokerError::InvalidArgument(_) => Code::InvalidArgument,
            BrokerError::NotFound(_) => Code::NotFound,
            BrokerError::Unauthenticated(_) => Code::Unauthenticated,
            BrokerError::PermissionDenied(_) => Code::PermissionDenied,
            BrokerError::FailedPrecondition(_) | BrokerError::AgentOutdated { .. } => {
                Code::FailedPrecondition
            }
            BrokerError::Store(_) | BrokerError::Writer(_) | BrokerError::Commit(_) => {
                match self.store_condition() {
                    Some(StoreCondition::Full) => Code::ResourceExhausted,
                    Some(StoreCondition::Unwritable | StoreCondition::Busy) => Code::Unavailable,
                    None => Code::Internal,
                }
            }
            BrokerError::Internal(_)
            | BrokerError::Migrate(_)
            | BrokerError::Runtime(_)
            | BrokerError::Transport(_)
            | BrokerError::Io { .. } => Code::Internal,
        }
    }
}

/// Store failures a client can act on (retry later) and an operator can fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreCondition {
    /// `SQLITE_FULL`: the data dir's disk is full.
    Full,
    /// The store cannot be written: read-only file system or failing disk
    /// (`SQLITE_READONLY`, `SQLITE_IOERR`, `SQLITE_CANTOPEN`).
    Unwritable,
    /// The store stayed locked past the busy timeout.
    Busy,
}

/// The condition behind a store error, if it is one of [`StoreCondition`].
pub fn store_condition(error: &sqlx::Error) -> Option<StoreCondition> {
    let sqlx::Error::Database(database) = error else {
        return None;
    };
    condition_of_code(database.code()?.parse().ok()?)
}

/// The condition behind an error of the group-commit writer's connection.
pub fn writer_condition(error: &rusqlite::Error) -> Option<StoreCondition> {
    let rusqlite::Error::SqliteFailure(failure, _) = error else {
        return None;
    };
    condition_of_code(i64::from(failure.extended_code))
}

/// The condition an SQLite (extended) result code stands for.
fn condition_of_code(extended: i64) -> Option<StoreCondition> {
    match extended & 0xff {
        13 => Some(StoreCondition::Full),
        8 | 10 | 14 => Some(StoreCondition::Unwritable),
        5 | 6 => Some(StoreCondition::Busy),
        _ => None,
    }
}

impl From<BrokerError> for Status {
    fn from(error: BrokerError) -> Status {
        let code = error.code();
        let message = match &error {
            BrokerError::Store(_) | BrokerError::Writer(_) | BrokerError::Commit(_) => {
                match error.store_condition() {
                    Some(StoreCondition::Full) => format!(
                        "the broker's disk is full: nothing of this request was stored; \
                     retry once its operator has freed space ({error})"
                    ),
                    Some(StoreCondition::Unwritable) => format!(
                        "the broker cannot write its store (read-only or failing disk): nothing \
                     of this request was stored; retry later ({error})"
                    ),
                    Some(StoreCondition::Busy) => {
                        format!("the broker's store is busy: retry later ({error})")
                    }
                    None => error.to_string(),
                }
            }
            _ => error.to_string(),
        };
        if code == Code::Internal {
            tracing::error!(%error, "internal error");
        } else if matches!(
            error,
            BrokerError::Store(_) | BrokerError::Writer(_) | BrokerError::Commit(_)
        ) {
            tracing::warn!(%error, "store unavailable; request refused");
        }
        let mut metadata = tonic::metadata::MetadataMap::new();
        if let BrokerError::AgentOutdated { required, .. } = &error
            && let Ok(value) = required.parse()
        {
            // How the agent tells this refusal from any other.
            metadata.insert(wasmgrid_proto::REQUIRED_AGENT_VERSION_HEADER, value);
        }
        Status::with_metadata(code, message, metadata)
    }
}

/// Result of broker operations.
pub type BrokerResult<T> = Result<T, BrokerError>;
