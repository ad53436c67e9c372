//! Checkpoints off the writer's thread: a thread of its own copies the WAL
//! back into the database file every [`INTERVAL`] under load, less often
//! (up to [`QUIET_INTERVAL`]) while the WAL grows slowly (a passive
//! checkpoint, which never waits for the writer nor holds it up), so the
//! group-commit writer spends its time on calls and not on copying pages
//! and syncing the database file.
//!
//! A passive checkpoint never lets the WAL start over while the writer
//! keeps appending: it copies the frames committed when it began, and by
//! its end there are newer ones. Under sustained load the WAL would grow
//! without bound (6.4 GiB in a 10^6-task run with r=2). So once the WAL
//! holds more than [`RESTART_FRAMES`], the thread asks the writer
//! ([`WalRestart`]) to copy the few frames its last passive checkpoint left,
//! on the writer's own connection between two batches ([`restart_wal`]):
//! with no other writer appending meanwhile, that checkpoint copies every
//! frame, and the next batch writes the WAL from its start again. The
//! writer's connection caps the file at that size when it starts over
//! (`journal_size_limit`).
//!
//! Why not a `RESTART` checkpoint on this thread, as before: it must take
//! the write lock the writer holds nearly all the time, so each waited for
//! the other in SQLite's busy handler, whose sleeps grow to 100 ms, and
//! a `RESTART` then held the writer back for its whole copy and sync. Calls
//! waiting behind one took 30–250 ms instead of 3 (docs/performance.md,
//! "The fifth session"). The writer still checkpoints itself, as a last
//! resort, past [`super::WRITER_AUTOCHECKPOINT_PAGES`].

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use crate::error::{BrokerError, BrokerResult};

/// How often the WAL is checkpointed. Short, so that the frames a restart
/// copies on the writer's thread are few (a restart then takes 0.4–8 ms
/// there), and each sync of the database file is small: a large one holds
/// up the writer's sync of the WAL on the same disk.
const INTERVAL: Duration = Duration::from_millis(25);

/// A pass that found fewer new frames than this (1 MiB) doubles the pause
/// before the next, up to [`QUIET_INTERVAL`]; one that found more goes back
/// to [`INTERVAL`]. With a few commits between passes, each pass cost a
/// sync of the database file for a handful of pages: at ~100 tasks/s (the
/// efficiency bench's 16 ms tasks on two slots) the checkpoints took 9 % of
/// the broker's CPU, and their syncs interrupted the agent's slots.
const FEW_FRAMES: i64 = 256;

/// Longest pause between checkpoints while the WAL grows slowly: at that
/// pace it holds at most a few MiB more than under [`INTERVAL`]. Short
/// enough that when load starts after a quiet spell, the frames written
/// before the next pass (~10 000 at the dispatch bench's rate, 40 MiB) stay
/// below [`RESTART_FRAMES`]: a 1 s cap let that first pass find ~40 000,
/// copy them all at once and ask the writer to start the WAL over. Four
/// passes a second at low load cost little next to the forty before.
const QUIET_INTERVAL: Duration = Duration::from_millis(250);

/// WAL frames (pages) past which the WAL is made to start over: 256 MiB.
///
/// Each start over holds the writer up: its checkpoint copies the frames
/// written since the thread's last pass and syncs both files (`perf trace`
/// of the writer at 10 000 tasks/s: a WAL sync of ~0.1 ms, a sync of the
/// database file of 0.9–6 ms, then the new WAL header's sync, 0.3–0.5 ms),
/// and the calls queued meanwhile wait. At 10 000 tasks/s that was every
/// ~0.4 s with 64 MiB and the calls behind those stalls made much of the
/// dispatch p99; with 128 MiB the paced p99 went from a median of 10.8 to
/// 9.6 ms over ten alternating runs (docs/performance.md, "The seventh
/// session"), and with 256 MiB (a start over every ~2 s) from a mean of
/// 9.64 to 9.07 ms over sixteen alternating pairs, saturated tasks/s and
/// RSS unchanged ("The thirteenth session"). The fifth session had found
/// 256 MiB worse (a page read looks through more of the WAL's index), when
/// the restarts were `RESTART` checkpoints on this thread that took the
/// write lock. The cost: the WAL file takes up to 256 MiB of disk, and
/// opening the store after a crash reads that much more of it.
pub const RESTART_FRAMES: i64 = 65_536;

/// The checkpoint thread's request that the writer let the WAL start over.
#[derive(Clone, Debug, Default)]
pub struct WalRestart(Arc<AtomicBool>);

impl WalRestart {
    /// Asks the writer to run [`restart_wal`] after its next batch.
    fn request(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether a restart was asked for since the last call; clears it.
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

/// On the writer's connection, between batches: copies the frames the
/// checkpoint thread has not copied yet, so that the next transaction
/// writes the WAL from its start. Passive, so it never waits: if the thread
/// is checkpointing right now, or a reader still uses old frames, the WAL
/// goes on growing a little and the thread asks again.
pub fn restart_wal(conn: &rusqlite::Connection) {
    if let Err(error) = checkpoint(conn, "PASSIVE") {
        tracing::debug!(%error, "WAL restart checkpoint skipped");
    }
}

/// Runs checkpoints until dropped.
#[derive(Debug)]
pub struct Checkpointer {
    /// Dropping it tells the thread to stop.
    _stop: mpsc::Sender<()>,
    /// Where the thread asks the writer to let the WAL start over.
    restart: WalRestart,
}

impl Checkpointer {
    /// Starts checkpointing the store at `path`.
    pub fn start(path: &Path) -> BrokerResult<Checkpointer> {
        let conn = super::open(path)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let restart = WalRestart::default();
        let requests = restart.clone();
        std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                let mut pause = INTERVAL;
                let mut frames_before = 0;
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(pause) {
                    match checkpoint(&conn, "PASSIVE") {
                        Ok(frames) => {
                            if frames > RESTART_FRAMES {
                                requests.request();
                            }
                            pause = next_pause(pause, frames_before, frames);
                            frames_before = frames;
                        }
                        Err(error) => {
                            pause = INTERVAL;
                            tracing::warn!(%error, "WAL checkpoint failed; retrying");
                        }
                    }
                }
            })
            .map_err(|source| BrokerError::Io {
                context: "cannot start the store's checkpoint thread".into(),
                source,
            })?;
        Ok(Checkpointer {
            _stop: stop,
            restart,
        })
    }

    /// The requests this thread makes to the writer.
    pub fn restart_requests(&self) -> WalRestart {
        self.restart.clone()
    }
}

/// The pause after a pass that found `frames` in the WAL, `before` at the
/// pass ahead of it (fewer when the WAL started over in between: then all
/// of them are new).
fn next_pause(pause: Duration, before: i64, frames: i64) -> Duration {
    let new_frames = if frames >= before {
        frames - before
    } else {
        frames
    };
    if new_frames < FEW_FRAMES {
        pause.saturating_mul(2).min(QUIET_INTERVAL)
    } else {
        INTERVAL
    }
}

/// Runs a checkpoint of `mode`; returns the frames in the WAL.
fn checkpoint(conn: &rusqlite::Connection, mode: &str) -> rusqlite::Result<i64> {
    let sql = format!("PRAGMA wal_checkpoint({mode})");
    conn.query_row(&sql, [], |row| row.get::<_, i64>(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_grows_while_the_wal_grows_slowly_and_snaps_back_under_load() {
        let mut pause = INTERVAL;
        let mut frames = 0;
        for _ in 0..10 {
            pause = next_pause(pause, frames, frames + 10);
            frames += 10;
        }
        assert_eq!(pause, QUIET_INTERVAL);
        assert_eq!(next_pause(pause, frames, frames + FEW_FRAMES), INTERVAL);
        // The WAL started over: every frame in it is new.
        assert_eq!(next_pause(QUIET_INTERVAL, 30_000, 5_000), INTERVAL);
        assert_eq!(next_pause(INTERVAL, 30_000, 5), INTERVAL * 2);
    }
}
