//! The durable store: SQLite in WAL mode in the data dir, schema migrations
//! applied at open. Every acknowledged change is committed (and synced)
//! before the broker answers, so it survives `kill -9`.
//!
//! Queries are plain SQL through sqlx, one module per table; operations that
//! must be atomic take a `&mut SqliteConnection` inside the caller's
//! transaction. The task life cycle's changes (leases, reports, verdicts,
//! pay) go through the group-commit writer instead: its statements are in
//! `writer`, on a rusqlite connection of its own. `columns` decodes rows
//! of either kind.

pub mod agents;
pub mod api_tokens;
pub mod columns;
pub mod dashboard_views;
pub mod events;
pub mod leases;
pub mod ledger;
pub mod modules;
pub mod stats;
pub mod status_columns;
pub mod tasks;
pub mod workloads;
pub mod writer;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Sqlite, SqlitePool};

use crate::error::{BrokerError, BrokerResult};

/// The schema, embedded at build time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Name of the database file in the data dir.
pub const DATABASE_FILE: &str = "broker.sqlite";

/// Handle to the store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    /// The database file, for the group-commit writer's connection.
    path: PathBuf,
    /// How long writers waited for the write lock (`/metrics`).
    write_wait: Histogram,
}

/// How long a connection waits for another's write lock.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Buckets of [`Store::write_wait`]: 0.1 ms to about 1.6 s.
fn write_wait_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 15))
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir` and migrates it.
    pub async fn open(data_dir: &Path) -> BrokerResult<Store> {
        std::fs::create_dir_all(data_dir).map_err(|source| BrokerError::Io {
            context: format!("cannot create data dir {}", data_dir.display()),
            source,
        })?;
        let path = data_dir.join(DATABASE_FILE);
        let url = format!("sqlite://{}", path.display());
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before we acknowledge it, which
            // survives power loss too, not only a killed process.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // A connection whose transaction SQLite ended on its own (a
            // COMMIT that failed with SQLITE_FULL or an I/O error rolls back
            // automatically) still counts as in a transaction for sqlx, and
            // every later BEGIN on it would fail: drop it for a fresh one.
            .before_acquire(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Store {
            pool,
            path,
            write_wait: write_wait_histogram(),
        })
    }

    /// The connection pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A transaction that will write: `BEGIN IMMEDIATE` takes the write lock
    /// at once (waiting up to the busy timeout). A deferred transaction that
    /// reads first would fail with "database is locked" at its first write
    /// if another connection committed in between, without waiting.
    pub async fn write(&self) -> BrokerResult<sqlx::Transaction<'static, Sqlite>> {
        let started = std::time::Instant::now();
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        self.write_wait.observe(started.elapsed().as_secs_f64());
        Ok(tx)
    }

    /// The group-commit writer's connection to this store (see [`writer`]).
    pub fn writer_connection(&self) -> BrokerResult<rusqlite::Connection> {
        writer::open(&self.path)
    }

    /// Starts checkpointing the WAL on a thread of its own, until dropped.
    pub fn start_checkpoints(&self) -> BrokerResult<writer::checkpoint::Checkpointer> {
        writer::checkpoint::Checkpointer::start(&self.path)
    }

    /// How long writing transactions waited to begin, in seconds.
    pub fn write_wait(&self) -> &Histogram {
        &self.write_wait
    }

    /// A connection from the pool, for reads and single statements.
    pub async fn conn(&self) -> BrokerResult<PoolConnection<Sqlite>> {
        Ok(self.pool.acquire().await?)
    }
}
