//! Group commit: the agents' hot calls (accepting offers, reports, lease
//! extensions, releases and expiry, last-seen times) write through one
//! writer connection, on a thread of its own, that runs every call queued
//! meanwhile in one transaction, each call in a savepoint of its own, and
//! syncs them all with one fsync.
//!
//! A call is answered only after the commit that holds its changes, so an
//! acknowledged change is as durable as with a transaction per call. A call
//! that fails rolls back to its savepoint and changes nothing; a commit that
//! fails (a full or failing disk) fails every call of the batch.
//!
//! Each call may bring a scheduler change. The writer applies them after the
//! commit, in commit order, under the scheduler lock, so the in-memory state
//! follows the store in the order the store changed, while the lock is never
//! held across store I/O. Code holding the scheduler lock must therefore
//! never wait for a call of this writer.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use rusqlite::Connection;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::error::{BrokerError, BrokerResult};
use crate::scheduler::Scheduler;

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

/// Delivers a call's answer once its batch committed (with the scheduler to
/// apply its change to) or failed.
type Finish = Box<dyn FnOnce(Result<&mut Scheduler, BrokerError>) + Send>;

/// A queued call.
trait Call: Send {
    /// Runs the call's store changes on the writer's connection; returns
    /// whether they succeeded, and how to finish the call.
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Finish);

    /// The batch failed before the call ran.
    fn refuse(self: Box<Self>, error: BrokerError);
}

type Job = Box<dyn Call>;

/// A call of [`GroupCommit::run`]: its changes and where its answer goes.
struct Queued<T, F> {
    changes: F,
    answer: oneshot::Sender<BrokerResult<T>>,
}

impl<T, F> Call for Queued<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> BrokerResult<Then<T>> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Finish) {
        let Queued { changes, answer } = *self;
        let outcome = changes(conn);
        let succeeded = outcome.is_ok();
        let finish: Finish = Box::new(move |committed| {
            let result = match (outcome, committed) {
                (Ok(then), Ok(scheduler)) => Ok(then(scheduler)),
                (Err(error), _) | (Ok(_), Err(error)) => Err(error),
            };
            // The caller may have gone (its client hung up): the change
            // stands all the same, as with any commit.
            let _ = answer.send(result);
        });
        (succeeded, finish)
    }

    fn refuse(self: Box<Self>, error: BrokerError) {
        let _ = self.answer.send(Err(error));
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
    /// Time per batch, from `BEGIN` to the synced `COMMIT`, in seconds.
    pub batch_seconds: Histogram,
}

impl CommitMetrics {
    fn new() -> CommitMetrics {
        CommitMetrics {
            // 1 to 1024 calls.
            batch_calls: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            // 0.1 ms to about 1.6 s.
            batch_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 15)),
        }
    }
}

impl GroupCommit {
    /// Starts the writer thread on `conn`, applying scheduler changes to
    /// `scheduler`.
    pub(crate) fn start(
        conn: Connection,
        scheduler: Arc<Mutex<Scheduler>>,
    ) -> BrokerResult<GroupCommit> {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let metrics = CommitMetrics::new();
        let measured = metrics.clone();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || write_batches(&conn, queue, &scheduler, &measured))
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
    pub(crate) async fn run<T, F>(&self, changes: F) -> BrokerResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> BrokerResult<Then<T>> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(Queued { changes, answer });
        self.jobs.send(job).await.map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

fn stopped() -> BrokerError {
    BrokerError::FailedPrecondition("the broker is stopping".into())
}

/// The writer thread: takes every queued call (up to [`MAX_BATCH`]), runs
/// them in one transaction, commits, then finishes them in order.
fn write_batches(
    conn: &Connection,
    mut queue: mpsc::Receiver<Job>,
    scheduler: &Mutex<Scheduler>,
    metrics: &CommitMetrics,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut finished = Vec::with_capacity(batch.len());
        let started = std::time::Instant::now();
        let calls = batch.len();
        match run_batch(conn, &mut batch, &mut finished) {
            Ok(()) => {
                metrics.batch_calls.observe(calls as f64);
                metrics
                    .batch_seconds
                    .observe(started.elapsed().as_secs_f64());
                let mut scheduler = scheduler.blocking_lock();
                for finish in finished {
                    finish(Ok(&mut scheduler));
                }
            }
            Err(error) => {
                tracing::warn!(%error, calls = finished.len() + batch.len(), "group commit failed; its calls are refused");
                let error = Arc::new(error);
                for finish in finished {
                    finish(Err(BrokerError::Commit(Arc::clone(&error))));
                }
                for call in batch.drain(..) {
                    call.refuse(BrokerError::Commit(Arc::clone(&error)));
                }
            }
        }
    }
}

/// Runs the calls of `batch` in one transaction and commits it. The calls
/// run are taken from `batch` and end up in `finished`; on an error, those
/// not run yet stay in `batch`.
fn run_batch(
    conn: &Connection,
    batch: &mut Vec<Job>,
    finished: &mut Vec<Finish>,
) -> rusqlite::Result<()> {
    // Rows read in the last batch may have changed since its commit.
    crate::store::writer::workloads::forget_batch();
    execute(conn, "BEGIN IMMEDIATE")?;
    // In order: the calls were queued in the order they came.
    batch.reverse();
    while let Some(job) = batch.pop() {
        let step = (|| {
            execute(conn, "SAVEPOINT call")?;
            match catch_unwind(AssertUnwindSafe(|| job.run(conn))) {
                Ok((succeeded, finish)) => {
                    finished.push(finish);
                    if !succeeded {
                        execute(conn, "ROLLBACK TO call")?;
                    }
                }
                Err(_) => {
                    // A bug, not the caller's input: its caller learns the
                    // broker failed, and the batch goes on without it.
                    tracing::error!("a store call panicked; its changes are rolled back");
                    execute(conn, "ROLLBACK TO call")?;
                }
            }
            execute(conn, "RELEASE call")
        })();
        if let Err(error) = step {
            rollback(conn);
            return Err(error);
        }
    }
    if let Err(error) = execute(conn, "COMMIT") {
        rollback(conn);
        return Err(error);
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
