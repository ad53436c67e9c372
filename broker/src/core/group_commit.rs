//! Group commit: the agents' hot calls (accepting offers, reports, lease
//! extensions, releases and expiry, last-seen times) write through one
//! writer connection, on a thread of its own, that runs every call queued
//! meanwhile in one transaction, each call in a savepoint of its own, and
//! syncs them all with one fsync (or none: see below).
//!
//! A call is answered only after the commit that holds its changes, and,
//! unless it may be forgotten, after the sync of the WAL that follows that
//! commit, so an acknowledged change is as durable as with a transaction
//! per call. A call that fails rolls back to its savepoint and changes
//! nothing; a commit that fails (a full or failing disk) fails every call
//! of the batch, and a sync that fails fails every call that waited for it
//! (its changes are committed but may not be on the disk: the caller tries
//! again, and reports and extensions are idempotent).
//!
//! One kind of call may be forgotten by a crash of the machine (not of the
//! broker): granting leases ([`GroupCommit::run_forgettable`]). Every batch
//! commits without a sync (`synchronous = NORMAL`: written to the WAL);
//! the writer then syncs the WAL itself if a call of the batch must be
//! durable, and answers the calls that may be forgotten before that sync,
//! so a lease granted beside a report does not wait for the disk. The WAL
//! is one file written in order, so a machine crash can only lose the
//! newest commits, never one before a sync. A lost lease costs its run:
//! the agent's report of it is refused, and the task is offered again, as
//! it is when its agent dies. The scheduler changes of a batch are applied
//! before its sync: the broker may offer work from a report a machine
//! crash would still forget, which costs nothing the crash does not.
//!
//! Each call may bring a scheduler change. The writer applies them after the
//! commit, in commit order, under the scheduler lock, so the in-memory state
//! follows the store in the order the store changed, while the lock is never
//! held across store I/O. Code holding the scheduler lock must therefore
//! never wait for a call of this writer.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use rusqlite::Connection;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::error::{BrokerError, BrokerResult};
use crate::scheduler::Scheduler;
use crate::store::writer::checkpoint::{WalRestart, restart_wal};

/// The scheduler change a committed call brings, and what the call answers.
pub(crate) type Then<T> = Box<dyn FnOnce(&mut Scheduler) -> T + Send>;

/// A scheduler change (and answer) for [`GroupCommit::run`].
pub(crate) fn then<T>(change: impl FnOnce(&mut Scheduler) -> T + Send + 'static) -> Then<T> {
    Box::new(change)
}

/// An answer with no scheduler change.
pub(crate) fn unchanged<T: Send + 'static>(answer: T) -> Then<T> {
    Box::new(move |_| answer)
}

/// A queued call.
trait Call: Send {
    /// Runs the call's store changes on the writer's connection and keeps
    /// their outcome; returns whether they succeeded. A call may run again
    /// after its batch was rolled back: each run replaces the outcome of the
    /// one before.
    fn run(&mut self, conn: &Connection) -> bool;

    /// The SQLite failure the last run ended in, if it failed in the store.
    fn store_failure(&self) -> Option<rusqlite::ffi::Error>;

    /// Applies the call's scheduler change once its batch committed, or
    /// takes why the batch failed; returns the call's answer, to send when
    /// it may be (after the sync, if the call must be durable).
    fn apply(self: Box<Self>, committed: Result<&mut Scheduler, BrokerError>) -> Box<dyn Answer>;

    /// Whether the call's commit must be synced before it is answered.
    fn must_sync(&self) -> bool;
}

/// A call's answer, made when its batch ended.
trait Answer: Send {
    /// Sends the answer, or `failure` instead (the sync it waited for
    /// failed).
    fn send(self: Box<Self>, failure: Option<BrokerError>);
}

/// The answer of a [`Queued`] call and where it goes.
struct Reply<T> {
    result: BrokerResult<T>,
    to: oneshot::Sender<BrokerResult<T>>,
}

impl<T: Send> Answer for Reply<T> {
    fn send(self: Box<Self>, failure: Option<BrokerError>) {
        let result = match failure {
            Some(error) => Err(error),
            None => self.result,
        };
        // The caller may have gone (its client hung up): the change
        // stands all the same, as with any commit.
        let _ = self.to.send(result);
    }
}

type Job = Box<dyn Call>;

/// A call of [`GroupCommit::run`]: its changes, their outcome once run, and
/// where its answer goes.
struct Queued<T, F> {
    changes: F,
    outcome: Option<BrokerResult<Then<T>>>,
    answer: oneshot::Sender<BrokerResult<T>>,
    must_sync: bool,
}

impl<T, F> Call for Queued<T, F>
where
    T: Send + 'static,
    F: FnMut(&Connection) -> BrokerResult<Then<T>> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> bool {
        // Not kept if the call panics: it then has no outcome.
        self.outcome = None;
        let outcome = (self.changes)(conn);
        let succeeded = outcome.is_ok();
        self.outcome = Some(outcome);
        succeeded
    }

    fn store_failure(&self) -> Option<rusqlite::ffi::Error> {
        match &self.outcome {
            Some(Err(BrokerError::Writer(rusqlite::Error::SqliteFailure(failure, _)))) => {
                Some(*failure)
            }
            _ => None,
        }
    }

    fn apply(self: Box<Self>, committed: Result<&mut Scheduler, BrokerError>) -> Box<dyn Answer> {
        let result = match (self.outcome, committed) {
            (Some(Ok(then)), Ok(scheduler)) => Ok(then(scheduler)),
            // A failed call changed nothing: its own error stands.
            (Some(Err(error)), _) | (Some(Ok(_)) | None, Err(error)) => Err(error),
            (None, Ok(_)) => Err(BrokerError::Internal(
                "a store call panicked; its changes were rolled back".into(),
            )),
        };
        Box::new(Reply {
            result,
            to: self.answer,
        })
    }

    fn must_sync(&self) -> bool {
        self.must_sync
    }
}

/// Most calls in one transaction: bounds a batch's latency and the time the
/// store's write lock is held.
const MAX_BATCH: usize = 1024;

/// Calls that may wait for the writer; beyond that, callers wait to queue
/// (backpressure instead of unbounded memory).
const QUEUE: usize = 8192;

/// Queues calls for the writer thread. Dropping it (with the broker) ends
/// the writer once the queue is drained.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    jobs: mpsc::Sender<Job>,
    metrics: CommitMetrics,
}

/// What the writer measures of its batches (`/metrics`).
#[derive(Clone, Debug)]
pub struct CommitMetrics {
    /// Calls per committed batch.
    pub batch_calls: Histogram,
    /// Time per batch, from `BEGIN` until its calls are answered (after
    /// the `COMMIT`, the scheduler changes and, unless the batch only
    /// grants leases, the sync of the WAL), in seconds.
    pub batch_seconds: Histogram,
    /// Syncs of the WAL: one per batch with a call that must be durable.
    pub syncs: Counter,
}

impl CommitMetrics {
    fn new() -> CommitMetrics {
        CommitMetrics {
            // 1 to 1024 calls.
            batch_calls: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            // 0.1 ms to about 1.6 s.
            batch_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 15)),
            syncs: Counter::default(),
        }
    }
}

impl GroupCommit {
    /// Starts the writer thread on `conn`, applying scheduler changes to
    /// `scheduler`; between batches it lets the WAL start over when the
    /// checkpoint thread asks (`restarts`).
    pub(crate) fn start(
        conn: Connection,
        scheduler: Arc<Mutex<Scheduler>>,
        restarts: WalRestart,
    ) -> BrokerResult<GroupCommit> {
        // Commits are written, not synced: the writer syncs the WAL itself
        // when a call must be durable (see the module's doc).
        conn.pragma_update(None, "synchronous", "normal")?;
        let wal = WalFile::of(&conn)?;
        let (jobs, queue) = mpsc::channel(QUEUE);
        let metrics = CommitMetrics::new();
        let measured = metrics.clone();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || write_batches(&conn, &wal, queue, &scheduler, &restarts, &measured))
            .map_err(|source| BrokerError::Io {
                context: "cannot start the store's writer thread".into(),
                source,
            })?;
        Ok(GroupCommit { jobs, metrics })
    }

    /// What the writer measured so far.
    pub(crate) fn metrics(&self) -> &CommitMetrics {
        &self.metrics
    }

    /// Runs `changes` in the next batch; once it committed, applies the
    /// scheduler change `changes` returned and answers with its result.
    /// `changes` may run more than once (see [`run_batch`]): only the last
    /// run's changes are committed, and only its scheduler change applied.
    pub(crate) async fn run<T, F>(&self, changes: F) -> BrokerResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> BrokerResult<Then<T>> + Send + 'static,
    {
        self.queue(changes, true).await
    }

    /// [`GroupCommit::run`] for changes a crash of the machine may forget
    /// (granting leases: see the module's doc). Answered once committed; a
    /// batch of such calls alone is not synced.
    pub(crate) async fn run_forgettable<T, F>(&self, changes: F) -> BrokerResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> BrokerResult<Then<T>> + Send + 'static,
    {
        self.queue(changes, false).await
    }

    async fn queue<T, F>(&self, changes: F, must_sync: bool) -> BrokerResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> BrokerResult<Then<T>> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(Queued {
            changes,
            outcome: None,
            answer,
            must_sync,
        });
        self.jobs.send(job).await.map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

fn stopped() -> BrokerError {
    BrokerError::FailedPrecondition("the broker is stopping".into())
}

/// The writer thread: takes every queued call (up to [`MAX_BATCH`]), runs
/// them in one transaction, commits, applies their scheduler changes in
/// order, answers the calls that may be forgotten, syncs the WAL if any
/// other call is in the batch and answers those; then lets the WAL start
/// over if the checkpoint thread asked.
fn write_batches(
    conn: &Connection,
    wal: &WalFile,
    mut queue: mpsc::Receiver<Job>,
    scheduler: &Mutex<Scheduler>,
    restarts: &WalRestart,
    metrics: &CommitMetrics,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut ready = Vec::with_capacity(MAX_BATCH);
    let mut durable = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let calls = batch.len();
        match run_batch(conn, &mut batch) {
            Ok(()) => {
                {
                    let mut scheduler = scheduler.blocking_lock();
                    for call in batch.drain(..) {
                        let answers = if call.must_sync() {
                            &mut durable
                        } else {
                            &mut ready
                        };
                        answers.push(call.apply(Ok(&mut scheduler)));
                    }
                }
                for answer in ready.drain(..) {
                    answer.send(None);
                }
                let failure = if durable.is_empty() {
                    None
                } else {
                    metrics.syncs.inc();
                    wal.sync().err()
                };
                if let Some(error) = &failure {
                    tracing::error!(%error, calls = durable.len(), "cannot sync the store's WAL; calls committed but not known to be on the disk are refused");
                }
                for answer in durable.drain(..) {
                    answer.send(failure.as_ref().map(WalFile::failure));
                }
                metrics.batch_calls.observe(calls as f64);
                metrics
                    .batch_seconds
                    .observe(started.elapsed().as_secs_f64());
            }
            Err(error) => {
                tracing::warn!(%error, calls, "group commit failed; its calls are refused");
                let error = Arc::new(error);
                for call in batch.drain(..) {
                    call.apply(Err(BrokerError::Commit(Arc::clone(&error))))
                        .send(None);
                }
            }
        }
        if restarts.take() {
            restart_wal(conn);
        }
    }
}

/// The store's WAL file, which the writer syncs itself after a commit
/// whose calls must be durable (its connection commits without a sync).
struct WalFile {
    path: PathBuf,
}

impl WalFile {
    /// The WAL of the database `conn` opened.
    fn of(conn: &Connection) -> BrokerResult<WalFile> {
        let database = conn.path().filter(|path| !path.is_empty()).ok_or_else(|| {
            BrokerError::Internal("the group commit needs a store in a file".into())
        })?;
        Ok(WalFile {
            path: PathBuf::from(format!("{database}-wal")),
        })
    }

    /// Writes the WAL's data to the disk. Opened for each sync, so the sync
    /// always reaches the file SQLite writes, should it ever make it anew.
    fn sync(&self) -> std::io::Result<()> {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)?
            .sync_data()
    }

    /// What a call that waited for a failed sync is answered: SQLite's own
    /// failure for a commit whose sync failed.
    fn failure(error: &std::io::Error) -> BrokerError {
        BrokerError::Commit(Arc::new(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR_FSYNC),
            Some(format!("cannot sync the store's WAL: {error}")),
        )))
    }
}

/// Runs the calls of `batch`, in order, in one transaction and commits it.
///
/// First without a savepoint per call, which would cost three statements a
/// call and a copy of every page a call first writes. A call that fails
/// before it changed a row (most failures: an unknown lease, a report over
/// a limit) needs none. If a call fails after it changed rows, or panics,
/// the transaction is rolled back and the whole batch runs again with a
/// savepoint per call, so each failed call's changes alone are undone.
fn run_batch(conn: &Connection, batch: &mut [Job]) -> rusqlite::Result<()> {
    if run_unguarded(conn, batch)? {
        return Ok(());
    }
    run_guarded(conn, batch)
}

/// Runs the batch without savepoints; false (and rolled back) if a call
/// failed after changing rows.
fn run_unguarded(conn: &Connection, batch: &mut [Job]) -> rusqlite::Result<bool> {
    begin(conn)?;
    for call in batch.iter_mut() {
        let before = conn.total_changes();
        let clean = match catch_unwind(AssertUnwindSafe(|| call.run(conn))) {
            Ok(true) => true,
            // A statement that fails leaves no change behind (SQLite undoes
            // its own), so a call that changed no row has nothing to undo.
            Ok(false) => conn.total_changes() == before,
            Err(_) => false,
        };
        if let Err(error) = still_in_transaction(conn, call.as_ref()) {
            rollback(conn);
            return Err(error);
        }
        if !clean {
            rollback(conn);
            return Ok(false);
        }
    }
    commit(conn)?;
    Ok(true)
}

/// Runs the batch with each call in a savepoint of its own.
fn run_guarded(conn: &Connection, batch: &mut [Job]) -> rusqlite::Result<()> {
    begin(conn)?;
    for call in batch.iter_mut() {
        let step = (|| {
            execute(conn, "SAVEPOINT call")?;
            match catch_unwind(AssertUnwindSafe(|| call.run(conn))) {
                Ok(true) => {}
                Ok(false) => execute(conn, "ROLLBACK TO call")?,
                Err(_) => {
                    // A bug, not the caller's input: its caller learns the
                    // broker failed, and the batch goes on without it.
                    tracing::error!("a store call panicked; its changes are rolled back");
                    execute(conn, "ROLLBACK TO call")?;
                }
            }
            execute(conn, "RELEASE call")?;
            still_in_transaction(conn, call.as_ref())
        })();
        if let Err(error) = step {
            rollback(conn);
            return Err(error);
        }
    }
    commit(conn)
}

/// Begins a batch's transaction, taking the store's write lock.
fn begin(conn: &Connection) -> rusqlite::Result<()> {
    // Rows read in another transaction may have changed since.
    crate::store::writer::workloads::forget_batch();
    execute(conn, "BEGIN IMMEDIATE")
}

fn commit(conn: &Connection) -> rusqlite::Result<()> {
    if let Err(error) = execute(conn, "COMMIT") {
        rollback(conn);
        return Err(error);
    }
    Ok(())
}

/// Fails if SQLite ended the transaction itself (it does on some I/O
/// errors and on a full disk) during `call`: the calls after it would
/// otherwise run and commit one statement at a time. The batch fails with
/// the call's own store failure, so every caller learns the store's
/// condition (a full disk: `RESOURCE_EXHAUSTED`).
fn still_in_transaction(conn: &Connection, call: &dyn Call) -> rusqlite::Result<()> {
    if conn.is_autocommit() {
        let failure = call
            .store_failure()
            .unwrap_or_else(|| rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT));
        return Err(rusqlite::Error::SqliteFailure(
            failure,
            Some("the store ended the batch's transaction".into()),
        ));
    }
    Ok(())
}

fn execute(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Ends a failed transaction (SQLite may already have ended it itself).
fn rollback(conn: &Connection) {
    if let Err(error) = conn.execute_batch("ROLLBACK") {
        tracing::debug!(%error, "rollback after a failed batch");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A writer on a fresh store with one table, `t(k)`.
    fn writer() -> (tempfile::TempDir, GroupCommit) {
        let dir = tempfile::tempdir().expect("test setup");
        let conn = Connection::open(dir.path().join("store.db")).expect("test setup");
        conn.execute_batch("PRAGMA journal_mode = wal; CREATE TABLE t (k TEXT PRIMARY KEY)")
            .expect("test setup");
        let commits = GroupCommit::start(
            conn,
            Arc::new(Mutex::new(Scheduler::default())),
            WalRestart::default(),
        )
        .expect("test setup");
        (dir, commits)
    }

    fn insert(conn: &Connection, k: &str) -> BrokerResult<()> {
        conn.execute("INSERT INTO t (k) VALUES (?)", [k])?;
        Ok(())
    }

    fn keys(dir: &tempfile::TempDir) -> Vec<String> {
        let conn = Connection::open(dir.path().join("store.db")).expect("test setup");
        let mut statement = conn
            .prepare("SELECT k FROM t ORDER BY k")
            .expect("test setup");
        statement
            .query_map([], |row| row.get(0))
            .expect("test setup")
            .collect::<Result<_, _>>()
            .expect("test setup")
    }

    /// How a test call behaves.
    #[derive(Clone, Copy)]
    enum Act {
        Insert,
        FailBeforeWriting,
        FailAfterWriting,
        PanicAfterWriting,
        /// Writes, then ends the transaction as SQLite does on a full disk.
        EndTransactionAsFullDisk,
    }

    /// Waits (yielding) until `ready`; a test that would hang fails instead.
    async fn wait_until(what: &str, ready: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !ready() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting until {what}"
            );
            tokio::task::yield_now().await;
        }
    }

    /// How many times each call ran.
    fn runs<T>(outcomes: &[(T, usize)]) -> Vec<usize> {
        outcomes.iter().map(|(_, runs)| *runs).collect()
    }

    /// Holds the writer in a call until the returned sender sends (or is
    /// dropped), so that calls queued meanwhile run in one batch; returns
    /// once the writer holds, with the holding call's task.
    async fn hold_writer(
        commits: &Arc<GroupCommit>,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<BrokerResult<()>>,
    ) {
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = std::sync::Mutex::new(gate);
        let entered = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let held = {
            let commits = Arc::clone(commits);
            let entered = Arc::clone(&entered);
            tokio::spawn(async move {
                commits
                    .run(move |_| {
                        entered.store(true, Ordering::SeqCst);
                        let _ = gate.lock().expect("test setup").recv();
                        Ok(unchanged(()))
                    })
                    .await
            })
        };
        wait_until("the writer holds", || entered.load(Ordering::SeqCst)).await;
        (release, held)
    }

    /// On a fresh writer, holds the writer in a call until the calls under
    /// test are queued, so that they all run in the next batch; answers the
    /// store's directory, and each call's outcome and how many times it ran.
    async fn one_batch(
        calls: &[(&'static str, Act)],
    ) -> (tempfile::TempDir, Vec<(BrokerResult<&'static str>, usize)>) {
        let (dir, commits) = writer();
        let commits = &Arc::new(commits);
        let (release, held) = hold_writer(commits).await;
        let mut pending = Vec::new();
        for (queued, &(key, act)) in calls.iter().enumerate() {
            let runs = Arc::new(AtomicUsize::new(0));
            let counted = Arc::clone(&runs);
            let writer = Arc::clone(commits);
            pending.push((
                tokio::spawn(async move {
                    writer
                        .run(move |conn| {
                            counted.fetch_add(1, Ordering::SeqCst);
                            match act {
                                Act::Insert => insert(conn, key)?,
                                Act::FailBeforeWriting => {
                                    return Err(BrokerError::not_found(key));
                                }
                                Act::FailAfterWriting => {
                                    insert(conn, key)?;
                                    return Err(BrokerError::invalid(key));
                                }
                                Act::PanicAfterWriting => {
                                    insert(conn, key)?;
                                    panic!("a bug in the call for {key}");
                                }
                                Act::EndTransactionAsFullDisk => {
                                    insert(conn, key)?;
                                    conn.execute_batch("ROLLBACK")?;
                                    return Err(BrokerError::Writer(
                                        rusqlite::Error::SqliteFailure(
                                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                                            None,
                                        ),
                                    ));
                                }
                            }
                            Ok(then(move |_| key))
                        })
                        .await
                }),
                runs,
            ));
            // Spawned tasks may run in any order: queue them one at a
            // time, so that the batch runs them in the order given.
            wait_until("the call is queued", || {
                commits.jobs.capacity() <= QUEUE - (queued + 1)
            })
            .await;
        }
        release.send(()).expect("the holding call waits");
        held.await
            .expect("the holding call ends")
            .expect("the holding call commits");
        let mut outcomes = Vec::new();
        for (call, runs) in pending {
            let outcome = call.await.expect("the call task ends");
            outcomes.push((outcome, runs.load(Ordering::SeqCst)));
        }
        (dir, outcomes)
    }

    /// A call that writes a row (a new key), so that its commit writes the
    /// WAL, and answers the writer's `synchronous` setting: 1 is `NORMAL`
    /// (committed, not synced).
    fn write_row(conn: &Connection) -> BrokerResult<Then<i64>> {
        conn.execute("INSERT INTO t (k) VALUES (hex(randomblob(8)))", [])?;
        let mode: i64 = conn.query_row("PRAGMA synchronous", [], |row| row.get(0))?;
        Ok(unchanged(mode))
    }

    /// Queues a [`write_row`] call (synced or forgettable) from a task of
    /// its own; returns once it waits in the queue.
    async fn queue_write_row(
        commits: &Arc<GroupCommit>,
        synced: bool,
    ) -> tokio::task::JoinHandle<BrokerResult<i64>> {
        let waiting = QUEUE - commits.jobs.capacity();
        let call = {
            let commits = Arc::clone(commits);
            tokio::spawn(async move {
                if synced {
                    commits.run(write_row).await
                } else {
                    commits.run_forgettable(write_row).await
                }
            })
        };
        wait_until("the call is queued", || {
            QUEUE - commits.jobs.capacity() == waiting + 1
        })
        .await;
        call
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_is_synced_after_a_batch_only_when_a_call_must_be_durable() {
        let (_dir, commits) = writer();
        let commits = Arc::new(commits);
        let syncs = || commits.metrics().syncs.get();
        // Every batch commits unsynced; the writer syncs the WAL itself.
        assert_eq!(commits.run_forgettable(write_row).await.ok(), Some(1));
        assert_eq!(syncs(), 0);
        assert_eq!(commits.run(write_row).await.ok(), Some(1));
        assert_eq!(syncs(), 1);
        assert_eq!(commits.run_forgettable(write_row).await.ok(), Some(1));
        assert_eq!(syncs(), 1);
        // A forgettable call and one that must be durable in one batch (the
        // writer is held until both are queued; holding it is a synced
        // batch of its own): one sync.
        let (release, held) = hold_writer(&commits).await;
        let forgettable = queue_write_row(&commits, false).await;
        let synced = queue_write_row(&commits, true).await;
        release.send(()).expect("the holding call waits");
        held.await.expect("test setup").expect("test setup");
        assert_eq!(forgettable.await.expect("test setup").ok(), Some(1));
        assert_eq!(synced.await.expect("test setup").ok(), Some(1));
        assert_eq!(syncs(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_sync_fails_the_calls_that_waited_for_it_and_not_the_others() {
        let (dir, commits) = writer();
        let commits = Arc::new(commits);
        assert_eq!(commits.run(write_row).await.ok(), Some(1));
        // The WAL can no longer be opened for its sync (SQLite keeps
        // writing the file it has open).
        std::fs::remove_file(dir.path().join("store.db-wal")).expect("test setup");
        let (release, held) = hold_writer(&commits).await;
        let forgettable = queue_write_row(&commits, false).await;
        let synced = queue_write_row(&commits, true).await;
        release.send(()).expect("the holding call waits");
        assert!(held.await.expect("test setup").is_err());
        assert_eq!(forgettable.await.expect("test setup").ok(), Some(1));
        let error = synced
            .await
            .expect("test setup")
            .expect_err("its sync failed");
        assert!(
            error.to_string().contains("cannot sync the store's WAL"),
            "{error}"
        );
        assert_eq!(error.code(), tonic::Code::Unavailable, "{error}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_failing_before_it_writes_leaves_the_batch_on_the_fast_path() {
        let (dir, outcomes) = one_batch(&[
            ("a", Act::Insert),
            ("b", Act::FailBeforeWriting),
            ("c", Act::Insert),
        ])
        .await;
        assert_eq!(outcomes[0].0.as_ref().expect("test setup"), &"a");
        assert!(matches!(outcomes[1].0, Err(BrokerError::NotFound(_))));
        assert_eq!(outcomes[2].0.as_ref().expect("test setup"), &"c");
        assert_eq!(runs(&outcomes), [1, 1, 1], "no call ran twice");
        assert_eq!(keys(&dir), ["a", "c"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_failing_after_it_wrote_is_undone_alone() {
        let (dir, outcomes) = one_batch(&[
            ("a", Act::Insert),
            ("b", Act::FailAfterWriting),
            ("c", Act::FailBeforeWriting),
            ("d", Act::PanicAfterWriting),
            ("e", Act::Insert),
        ])
        .await;
        assert_eq!(outcomes[0].0.as_ref().expect("test setup"), &"a");
        assert!(matches!(
            outcomes[1].0,
            Err(BrokerError::InvalidArgument(_))
        ));
        assert!(matches!(outcomes[2].0, Err(BrokerError::NotFound(_))));
        assert!(
            matches!(&outcomes[3].0, Err(BrokerError::Internal(message)) if message.contains("panicked")),
            "{:?}",
            outcomes[3].0
        );
        assert_eq!(outcomes[4].0.as_ref().expect("test setup"), &"e");
        // The batch was rolled back at b and ran again with savepoints: the
        // calls before b ran twice, those after it once.
        assert_eq!(runs(&outcomes), [2, 2, 1, 1, 1]);
        assert_eq!(
            keys(&dir),
            ["a", "e"],
            "only the failed calls' rows are undone"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_the_store_ended_fails_the_batch_with_the_store_condition() {
        let (dir, outcomes) = one_batch(&[
            ("a", Act::Insert),
            ("b", Act::EndTransactionAsFullDisk),
            ("c", Act::Insert),
        ])
        .await;
        for (key, (outcome, _)) in ["a", "b", "c"].iter().zip(&outcomes) {
            let error = outcome.as_ref().expect_err("the batch failed");
            assert_eq!(
                error.store_condition(),
                Some(crate::error::StoreCondition::Full),
                "{key}: {error}"
            );
        }
        assert_eq!(
            runs(&outcomes),
            [1, 1, 0],
            "c never ran, alone in autocommit"
        );
        assert!(keys(&dir).is_empty(), "nothing of the batch was stored");
    }

    /// Salt-1 of the WAL's header: it changes each time the WAL starts over.
    fn wal_salt(db: &std::path::Path) -> u32 {
        let header = std::fs::read(db.with_extension("db-wal")).expect("the WAL file");
        u32::from_be_bytes(header[16..20].try_into().expect("a WAL header"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_while_the_writer_never_stops() {
        use crate::store::writer::checkpoint::{Checkpointer, RESTART_FRAMES};
        let dir = tempfile::tempdir().expect("test setup");
        let db = dir.path().join("store.db");
        Connection::open(&db)
            .expect("test setup")
            .execute_batch(
                "PRAGMA journal_mode = wal; CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)",
            )
            .expect("test setup");
        let checkpoints = Checkpointer::start(&db).expect("test setup");
        let commits = GroupCommit::start(
            crate::store::writer::open(&db).expect("test setup"),
            Arc::new(Mutex::new(Scheduler::default())),
            checkpoints.restart_requests(),
        )
        .expect("test setup");
        let mut first_salt = None;
        // Calls back to back, each a page's worth of rows, until the WAL
        // has been written twice past the size where it must start over:
        // passive checkpoints alone never catch up with a writer that
        // keeps appending.
        const ROWS_PER_CALL: i64 = 32;
        let calls = 2 * RESTART_FRAMES / ROWS_PER_CALL;
        for call in 0..calls {
            commits
                .run(move |conn| {
                    for row in call * ROWS_PER_CALL..(call + 1) * ROWS_PER_CALL {
                        conn.execute("INSERT INTO t (k, v) VALUES (?, zeroblob(4000))", [row])?;
                    }
                    Ok(unchanged(()))
                })
                .await
                .expect("a call");
            first_salt.get_or_insert_with(|| wal_salt(&db));
        }
        assert_ne!(Some(wal_salt(&db)), first_salt, "the WAL started over");
        let frames: i64 = Connection::open(&db)
            .expect("a reader")
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
            .expect("the WAL's frames");
        assert!(
            frames < 2 * RESTART_FRAMES,
            "{frames} frames: the WAL keeps a bounded size"
        );
    }
}
