//! [`Broker`]: the broker's operations, each a store transaction followed by
//! the matching change to the in-memory scheduler. The gRPC services in
//! `service/` are thin adapters over these.
//!
//! # Layout
//! - `submit`: validating and storing a new workload.
//! - `work`: offers and accepting them as leases.
//! - `report`: results, and settling a task from its leases.
//! - `lease`: extending, releasing and expiring leases.
//! - `cancel`: cancelling a workload.
//! - `aggregate`: building the end result when every task is finished.
//! - `recovery`: rebuilding the scheduler from the store at start.
//! - `agents`: registration and token checks.

mod agents;
mod aggregate;
mod cancel;
mod lease;
mod recovery;
mod report;
mod submit;
mod work;

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};

use tokio::sync::{Mutex, watch};
use wasmgrid_runtime::{Runtime, RuntimeConfig};

pub use self::report::IncomingReport;
pub use self::submit::{NewWorkload, parse_sha256};
pub use self::work::GrantedLease;
use crate::config::BrokerConfig;
use crate::error::BrokerResult;
use crate::scheduler::Scheduler;
use crate::store::Store;

/// The broker: store, scheduler and sandbox (for reducers and module checks).
#[derive(Debug)]
pub struct Broker {
    pub(crate) config: BrokerConfig,
    pub(crate) store: Store,
    pub(crate) scheduler: Mutex<Scheduler>,
    pub(crate) runtime: Runtime,
    /// Token digest → agent id, filled as agents are seen.
    tokens: StdMutex<HashMap<String, String>>,
    /// Agent id → last time `last_seen_ms` was written.
    seen: StdMutex<HashMap<String, i64>>,
    /// Bumped after every committed change, for progress watchers.
    changes: watch::Sender<u64>,
    /// This broker, for background work it spawns.
    me: std::sync::OnceLock<std::sync::Weak<Broker>>,
}

impl Broker {
    /// Opens the store in the configured data dir and rebuilds the
    /// scheduling state from it.
    pub async fn start(config: BrokerConfig) -> BrokerResult<Arc<Broker>> {
        let store = Store::open(&config.data_dir).await?;
        let runtime = Runtime::new(RuntimeConfig {
            max_concurrent_tasks: std::num::NonZeroUsize::MIN,
            ..RuntimeConfig::default()
        })?;
        let broker = Arc::new(Broker {
            config,
            store,
            scheduler: Mutex::new(Scheduler::default()),
            runtime,
            tokens: StdMutex::new(HashMap::new()),
            seen: StdMutex::new(HashMap::new()),
            changes: watch::channel(0).0,
            me: std::sync::OnceLock::new(),
        });
        broker.recover().await?;
        Ok(broker)
    }

    /// A receiver that changes after every committed change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|version| *version += 1);
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The settings.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }
}
