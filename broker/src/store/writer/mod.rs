//! The group-commit writer's statements: the store changes of the task life
//! cycle (leases, reports, verdicts, pay, expiry, last-seen times) as
//! synchronous rusqlite calls on the writer's own connection and thread, so
//! a statement costs SQLite's work and no hand-off between threads. Each
//! statement is prepared once and cached on the connection.
//!
//! The rest of the store (submits, cancels, the end result, grants, tokens,
//! every read for the APIs) stays on the sqlx pool of the parent module;
//! both open the same database file, and SQLite's write lock orders them.
//!
//! # Layout
//! One module per table, as in the parent: `leases`, `tasks`, `events`,
//! `ledger`, `agents`, `workloads`; and `checkpoint`, the thread that
//! checkpoints the WAL so the writer need not.

pub mod agents;
pub mod checkpoint;
pub mod events;
pub mod leases;
pub mod ledger;
pub mod tasks;
pub mod workloads;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::BUSY_TIMEOUT;
use crate::error::BrokerResult;

/// The writer's page cache, as SQLite's `cache_size` pragma (negative: KiB).
/// Its own commits leave its cache valid, so the b-tree pages the agents'
/// calls touch stay in memory.
///
/// Small, because a commit after a b-tree page split scans the cache's
/// whole hash table. SQLite's `balance_nonroot` moves a page through the
/// spare page number above 1 GiB while it reorders pages, which leaves the
/// cache's largest key there, so the commit's `pcache1Truncate` (drop the
/// pages past the end of the database) finds "many pages" to drop and
/// walks every slot, one per page the cache holds. With 64 MiB that walk
/// was 10 % of the broker's CPU at 10 000 tasks/s; with 16 MiB still 10 %
/// of the writer's, whose queue makes the dispatch latency's tail. 4 MiB
/// holds the pages a batch touches (the b-trees' upper levels and the
/// leaves being appended to); a page it lacks is read from the OS's cache,
/// not the disk. Against 16 MiB, in eight alternating pairs of runs at
/// 10 000 tasks/s with 10^6 queued: the walk half as long (5 % of the
/// writer's CPU), dispatch p99 8.5–10.0 ms (mean 9.3) against 9.1–11.8
/// (mean 10.0), saturated tasks/s unchanged (docs/performance.md, "The
/// twelfth session").
const CACHE_SIZE_KIB: i64 = 4_096;

/// The WAL's size, in pages, past which the writer checkpoints it itself:
/// a last resort, since the checkpoint thread (`checkpoint`) makes the WAL
/// start over at a quarter of it.
pub const WRITER_AUTOCHECKPOINT_PAGES: i64 = 4 * checkpoint::RESTART_FRAMES;

/// The size the WAL file is cut back to when it starts over, in bytes: the
/// size at which it is made to (`RESTART_FRAMES` pages of 4 KiB).
const WAL_SIZE_LIMIT: i64 = checkpoint::RESTART_FRAMES * 4096;

/// Statements kept prepared: every statement of this module fits.
const STATEMENT_CACHE: usize = 64;

/// How long the writer sleeps before it tries a lock another connection
/// holds again. SQLite's own busy handler sleeps 1, 2, 5, 10, … up to 100
/// ms between tries, so a lock held 3 ms costs 8 and one held 30 ms costs
/// 33 or more; every call of the waiting batch waits that long.
const LOCK_POLL: Duration = Duration::from_micros(200);

/// Tries before a lock wait fails: at least the pool's busy timeout.
const LOCK_TRIES: i32 = (BUSY_TIMEOUT.as_micros() / LOCK_POLL.as_micros()) as i32;

/// The busy handler of the writer's connections: waits [`LOCK_POLL`] and
/// tries again, [`LOCK_TRIES`] times at most.
fn wait_for_lock(tries: i32) -> bool {
    if tries >= LOCK_TRIES {
        return false;
    }
    std::thread::sleep(LOCK_POLL);
    true
}

/// Opens the writer's connection to the store the pool opened (and
/// migrated): WAL, synced commits (`synchronous=FULL`; the group commit
/// turns its connection's to `NORMAL` and syncs the WAL itself, after the
/// commit, when a call of the batch must be durable), foreign keys, lock
/// waits in short steps for as long as the pool's busy timeout, and
/// savepoint journals in memory (every call of a batch runs in a
/// savepoint).
pub fn open(path: &Path) -> BrokerResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_handler(Some(wait_for_lock))?;
    conn.pragma_update(None, "journal_mode", "wal")?;
    conn.pragma_update(None, "synchronous", "full")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "cache_size", -CACHE_SIZE_KIB)?;
    conn.pragma_update(None, "temp_store", "memory")?;
    conn.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES)?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}
