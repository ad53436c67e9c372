//! [`Broker`]: the broker's operations, each a store transaction followed by
//! the matching change to the in-memory scheduler (the agents' hot calls
//! through the group commit, in `group_commit`). The gRPC services in
//! `service/` are thin adapters over these.
//!
//! # Layout
//! - `submit`: validating and storing a new workload.
//! - `work`: offers and accepting them as leases.
//! - `report`: results, and settling a task from its leases.
//! - `lease`: extending, releasing and expiring leases.
//! - `cancel`: cancelling a workload.
//! - `group_commit`: one writer connection committing many calls at once.
//! - `aggregate`: building the end result when every task is finished.
//! - `recovery`: rebuilding the scheduler from the store at start.
//! - `agents`: registration, token checks, replica groups and speeds.
//! - `agent_version`: the minimum agent version, and the version each agent
//!   runs.
//! - `billing`: escrow, pay and close-out postings inside state changes.
//! - `accounts`: grants, balances, statements and earnings.
//! - `access`: issuers' and admins' tokens, the enrolment secret, ownership.

pub mod access;
mod accounts;
mod agent_version;
mod agents;
mod aggregate;
mod billing;
mod cancel;
mod group_commit;
mod lease;
mod recovery;
mod report;
mod submit;
mod work;

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};

use tokio::sync::{Mutex, watch};
use wasmgrid_runtime::{Runtime, RuntimeConfig};

pub use self::access::Caller;
pub use self::accounts::{AgentEarnings, LedgerTotals};
pub use self::group_commit::CommitMetrics;
use self::group_commit::GroupCommit;
pub use self::report::IncomingReport;
pub use self::submit::{NewWorkload, parse_sha256};
pub use self::work::GrantedLease;
pub use self::work::WorkRequestCounts;
use crate::agent_dist::AgentDist;
use crate::config::BrokerConfig;
use crate::error::{BrokerError, BrokerResult};
use crate::scheduler::Scheduler;
use crate::store::Store;
use crate::store::writer::checkpoint::Checkpointer;

/// The broker: store, scheduler and sandbox (for reducers and module checks).
#[derive(Debug)]
pub struct Broker {
    pub(crate) config: BrokerConfig,
    pub(crate) store: Store,
    pub(crate) scheduler: Arc<Mutex<Scheduler>>,
    /// The scheduler's signal that work became ready, reachable without
    /// its lock.
    work_ready: Arc<tokio::sync::Notify>,
    /// Requests for work answered, by how they came.
    work_requests: WorkRequestCounts,
    /// The writer the agents' hot calls commit through.
    pub(crate) commits: GroupCommit,
    /// Checkpoints the store's WAL beside the writer.
    _checkpoints: Checkpointer,
    pub(crate) runtime: Runtime,
    /// Token digest → agent id, filled as agents are seen.
    tokens: StdMutex<HashMap<String, String>>,
    /// Agent id → last time `last_seen_ms` was written.
    seen: StdMutex<HashMap<String, i64>>,
    /// Agent id → fuel and wall milliseconds of its OK runs: its speed.
    speeds: StdMutex<HashMap<String, (u128, u128)>>,
    /// Agent id → the version it runs, as recorded in the store.
    versions: StdMutex<HashMap<String, String>>,
    /// The agent builds hosted (`--agent-dist`), read at start.
    agent_builds: AgentDist,
    /// Bumped after every committed change, for progress watchers.
    changes: watch::Sender<u64>,
    /// Bumped when a workload ends (done, failed or cancelled), after its
    /// `changes`: progress watchers send an end at once, not coalesced.
    endings: watch::Sender<u64>,
    /// Turns true when the server starts shutting down, so long-lived
    /// streams (progress watchers) end instead of holding the shutdown.
    stopping: watch::Sender<bool>,
    /// Exclusive lock on the data dir, held for the broker's life: two
    /// brokers on one store would corrupt each other's scheduling state.
    _data_dir_lock: std::fs::File,
}

impl Broker {
    /// Opens the store in the configured data dir and rebuilds the
    /// scheduling state from it.
    pub async fn start(config: BrokerConfig) -> BrokerResult<Arc<Broker>> {
        let data_dir_lock = lock_data_dir(&config.data_dir)?;
        let agent_builds = match config.agent_dist.clone() {
            // Hashing builds of tens of MiB: off the async threads.
            Some(dir) => tokio::task::spawn_blocking(move || AgentDist::scan(&dir))
                .await
                .map_err(|error| BrokerError::Io {
                    context: "reading the agent builds".into(),
                    source: std::io::Error::other(error),
                })??,
            None => AgentDist::empty(),
        };
        if let Some(required) = &config.min_agent_version
            && agent_builds.lacks(required)
        {
            tracing::warn!(
                %required,
                "--min-agent-version: not every platform has a build of at least this version \
                 in --agent-dist; refused agents of those platforms find no update here"
            );
        }
        let store = Store::open(&config.data_dir).await?;
        let scheduler = Scheduler::default();
        let work_ready = scheduler.work_ready();
        let scheduler = Arc::new(Mutex::new(scheduler));
        let checkpoints = store.start_checkpoints()?;
        let commits = GroupCommit::start(
            store.writer_connection()?,
            Arc::clone(&scheduler),
            checkpoints.restart_requests(),
        )?;
        let runtime = Runtime::new(RuntimeConfig {
            max_concurrent_tasks: std::num::NonZeroUsize::MIN,
            // Reducers the broker compiled, kept across workloads and
            // restarts: one reducer (`sum-u64`) serves many workloads.
            cache_dir: Some(config.data_dir.join(COMPILED_DIR)),
            compiler: config.reducer_compiler,
            ..RuntimeConfig::default()
        })?;
        let broker = Arc::new(Broker {
            config,
            store,
            scheduler,
            work_ready,
            work_requests: WorkRequestCounts::default(),
            commits,
            _checkpoints: checkpoints,
            runtime,
            tokens: StdMutex::new(HashMap::new()),
            seen: StdMutex::new(HashMap::new()),
            speeds: StdMutex::new(HashMap::new()),
            versions: StdMutex::new(HashMap::new()),
            agent_builds,
            changes: watch::channel(0).0,
            endings: watch::channel(0).0,
            stopping: watch::channel(false).0,
            _data_dir_lock: data_dir_lock,
        });
        if let Some(path) = access::bootstrap_admin(
            &broker.store,
            &broker.config.data_dir,
            broker.config.admin_token.as_deref(),
        )
        .await?
        {
            tracing::info!(path = %path.display(), "admin token generated");
        }
        broker.recover().await?;
        Ok(broker)
    }

    /// A receiver that changes after every committed change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// A receiver that changes after a workload ends (is done, failed or
    /// cancelled), after its change reached [`Broker::subscribe`].
    pub fn subscribe_endings(&self) -> watch::Receiver<u64> {
        self.endings.subscribe()
    }

    /// A receiver that turns true when the broker begins to stop.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Tells long-lived streams to end: the server is shutting down.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    fn changed(&self) {
        self.changes.send_modify(|version| *version += 1);
    }

    /// A committed change that ended a workload.
    fn ended(&self) {
        self.changed();
        self.endings.send_modify(|version| *version += 1);
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The settings.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// Requests for work answered so far, by how they came.
    pub fn work_requests(&self) -> &WorkRequestCounts {
        &self.work_requests
    }

    /// What the group-commit writer measured of its batches.
    pub fn commit_metrics(&self) -> &CommitMetrics {
        self.commits.metrics()
    }

    /// The agent builds the broker hosts.
    pub fn agent_builds(&self) -> &AgentDist {
        &self.agent_builds
    }
}

/// Name of the lock file in the data dir.
const LOCK_FILE: &str = "broker.lock";

/// The data dir's folder of compiled reducers (the runtime's module cache
/// on disk, 0700).
const COMPILED_DIR: &str = "compiled";

/// Takes the data dir's exclusive lock, or says which broker holds it.
fn lock_data_dir(data_dir: &std::path::Path) -> BrokerResult<std::fs::File> {
    let io_error = |context: String| move |source| BrokerError::Io { context, source };
    std::fs::create_dir_all(data_dir).map_err(io_error(format!(
        "cannot create data dir {}",
        data_dir.display()
    )))?;
    let path = data_dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error(format!("cannot open {}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(BrokerError::FailedPrecondition(format!(
            "another broker is running on {}",
            data_dir.display()
        ))),
        Err(std::fs::TryLockError::Error(source)) => Err(BrokerError::Io {
            context: format!("cannot lock {}", path.display()),
            source,
        }),
    }
}
