//! Checkpoints off the writer's thread: a thread of its own copies the WAL
//! back into the database file every [`INTERVAL`] (a passive checkpoint,
//! which never waits for the writer nor holds it up), so the group-commit
//! writer spends its time on calls and not on copying pages and syncing the
//! database file.
//!
//! A passive checkpoint never lets the WAL start over while the writer
//! keeps appending: it copies the frames committed when it began, and by
//! its end there are newer ones. Under sustained load the WAL would grow
//! without bound (6.4 GiB in a 10^6-task run with r=2). So once the WAL
//! holds more than [`RESTART_FRAMES`], the thread makes a `RESTART`
//! checkpoint: it holds the writer back while it copies the few frames the
//! passive ones left, and the next transaction writes the WAL from its
//! start again. The writer's connection caps the file at that size when it
//! starts over (`journal_size_limit`). The writer still checkpoints itself,
//! as a last resort, past [`super::WRITER_AUTOCHECKPOINT_PAGES`].

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use crate::error::{BrokerError, BrokerResult};

/// How often the WAL is checkpointed.
const INTERVAL: Duration = Duration::from_millis(250);

/// WAL frames (pages) past which the WAL is made to start over: 64 MiB.
pub const RESTART_FRAMES: i64 = 16_384;

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
                    match checkpoint(&conn, "PASSIVE") {
                        Ok(frames) if frames > RESTART_FRAMES => {
                            if let Err(error) = checkpoint(&conn, "RESTART") {
                                tracing::warn!(%error, frames, "WAL restart failed; retrying");
                            }
                        }
                        Ok(_) => {}
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

/// Runs a checkpoint of `mode`; returns the frames in the WAL.
fn checkpoint(conn: &rusqlite::Connection, mode: &str) -> rusqlite::Result<i64> {
    let sql = format!("PRAGMA wal_checkpoint({mode})");
    conn.query_row(&sql, [], |row| row.get::<_, i64>(1))
}
