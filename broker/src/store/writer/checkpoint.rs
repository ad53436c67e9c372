//! Checkpoints off the writer's thread: a thread of its own copies the WAL
//! back into the database file every [`INTERVAL`] (a passive checkpoint,
//! which never waits for the writer nor holds it up), so the group-commit
//! writer spends its time on calls and not on copying pages and syncing the
//! database file. The writer still checkpoints itself, as a safety net, if
//! the WAL ever grows past [`super::WRITER_AUTOCHECKPOINT_PAGES`].

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use crate::error::{BrokerError, BrokerResult};

/// How often the WAL is checkpointed.
const INTERVAL: Duration = Duration::from_millis(250);

/// Runs checkpoints until dropped.
#[derive(Debug)]
pub struct Checkpointer {
    /// Dropping it tells the thread to stop.
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing the store at `path`.
    pub fn start(path: &Path, busy_timeout: Duration) -> BrokerResult<Checkpointer> {
        let conn = super::open(path, busy_timeout)?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    let checkpoint = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
                    });
                    match checkpoint {
                        Ok((frames, copied)) => {
                            tracing::trace!(frames, copied, "WAL checkpoint");
                        }
                        Err(error) => tracing::warn!(%error, "WAL checkpoint failed; retrying"),
                    }
                }
            })
            .map_err(|source| BrokerError::Io {
                context: "cannot start the store's checkpoint thread".into(),
                source,
            })?;
        Ok(Checkpointer { _stop: stop })
    }
}
