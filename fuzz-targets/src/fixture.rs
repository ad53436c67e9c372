//! The in-process broker the service targets send their requests to: a real
//! `Broker` on a real SQLite store, with one registered agent, an issuer
//! with credits and a running workload, shared by every input of a process
//! (starting a broker per input would cost more than the input).
//!
//! Fuzzed requests rarely name anything that exists, so three string values
//! stand for real names when a request carries them exactly:
//! [`WORKLOAD`] for the fixture's current workload, [`MODULE`] for its
//! module's sha256 and [`LEASE`] for a lease taken for that one input (and
//! released after it). The seeds use them; libFuzzer finds them too, from
//! the comparisons.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tonic::Request;
use wasmgrid_broker::core::NewWorkload;
use wasmgrid_broker::core::access::create_token;
use wasmgrid_broker::service::{AdminApi, AgentApi, IssuerApi};
use wasmgrid_broker::store::api_tokens::TokenRole;
use wasmgrid_broker::{Broker, BrokerConfig, BrokerError};
use wasmgrid_proto::v1;
use wasmgrid_proto::v1::agent_service_server::AgentService;
use wasmgrid_runtime::{Limits, TaskModule};

use crate::findings;

/// Stands for the fixture's current workload id.
pub const WORKLOAD: &str = "@w";
/// Stands for the sha256 of the fixture workload's module.
pub const MODULE: &str = "@m";
/// Stands for a lease of the fixture agent, taken for one input.
pub const LEASE: &str = "@l";
/// The issuer the fixture grants credits to and submits as.
pub const ISSUER: &str = "fuzz";

/// The fixture broker's admin token.
const ADMIN_TOKEN: &str = "wasmgrid-fuzz-admin-token";

/// Credits granted to [`ISSUER`] whenever it runs short, in micro-credits.
const GRANT_MICRO: i64 = 1_000_000_000_000;
/// Tasks per fixture workload: leases are taken from them.
const FIXTURE_TASKS: usize = 256;
/// Data dirs are named this plus the process id.
const DATA_DIR_PREFIX: &str = "wasmgrid-fuzz-broker-";

/// The smallest runnable task, the fixture workload's module.
pub fn noop_module() -> Vec<u8> {
    wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#)
        .unwrap_or_else(|error| panic!("noop module: {error}"))
}

/// How an agent request authenticates.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Auth {
    /// `Bearer <the fixture agent's token>`.
    Valid,
    /// No `authorization` metadata.
    Missing,
    /// A well-formed bearer token no agent has.
    Unknown,
    /// The token without `Bearer `.
    NotBearer,
}

impl Auth {
    /// Two bits of a selector byte; valid unless they say otherwise.
    pub(crate) fn from_bits(bits: u8) -> Auth {
        match bits & 3 {
            1 => Auth::Missing,
            2 => Auth::Unknown,
            3 => Auth::NotBearer,
            _ => Auth::Valid,
        }
    }
}

/// Who an issuer or admin request comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum CallerAuth {
    /// The broker's admin token.
    Admin,
    /// [`ISSUER`]'s token (it owns the fixture workloads).
    Issuer,
    /// No `authorization` metadata.
    Missing,
    /// A well-formed bearer token nobody has.
    Unknown,
}

impl CallerAuth {
    /// Two bits of a selector byte; the admin unless they say otherwise.
    pub(crate) fn from_bits(bits: u8) -> CallerAuth {
        match bits & 3 {
            1 => CallerAuth::Issuer,
            2 => CallerAuth::Missing,
            3 => CallerAuth::Unknown,
            _ => CallerAuth::Admin,
        }
    }
}

/// The broker and what the targets need of it.
pub(crate) struct Fixture {
    pub(crate) broker: Arc<Broker>,
    pub(crate) agent_api: AgentApi,
    pub(crate) issuer_api: IssuerApi,
    pub(crate) admin_api: AdminApi,
    agent_id: String,
    token: String,
    issuer_token: String,
    module_sha256: String,
    workload: Mutex<String>,
    /// One lease taken at a time.
    leasing: tokio::sync::Mutex<()>,
}

/// The tokio runtime the broker runs on: two workers, so tasks the broker
/// spawns (progress watchers, result streams, aggregation) run while a
/// target waits.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    static TOKIO: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    TOKIO
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("fuzz-broker")
                .enable_all()
                .build()
                .unwrap_or_else(|error| panic!("tokio runtime: {error}"))
        })
        .block_on(future)
}

/// A request carrying `header` as its `authorization` metadata, if any.
fn with_authorization<T>(message: T, header: Option<String>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(value) = header.and_then(|header| header.parse().ok()) {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// The process's fixture, started on first use.
pub(crate) fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        findings::install();
        block_on(Fixture::start())
    })
}

impl Fixture {
    async fn start() -> Fixture {
        let mut config = BrokerConfig::new(data_dir());
        config.admin_token = Some(ADMIN_TOKEN.to_owned());
        let broker = Broker::start(config)
            .await
            .unwrap_or_else(|error| panic!("fixture broker: {error}"));
        let agent_api = AgentApi::new(Arc::clone(&broker));
        let registered = agent_api
            .register(Request::new(v1::RegisterRequest {
                name: "fuzz-agent".into(),
                os: "linux".into(),
                arch: "x86_64".into(),
                cores: 2,
                memory_bytes: 1 << 30,
                slots: 4,
                version: "fuzz".into(),
                owner: "fuzz".into(),
                enrolment_secret: String::new(),
            }))
            .await
            .unwrap_or_else(|status| panic!("fixture agent: {status}"))
            .into_inner();
        let issuer_token = create_token(
            broker.store(),
            &TokenRole::Issuer(ISSUER.to_owned()),
            "fuzz",
        )
        .await
        .unwrap_or_else(|error| panic!("fixture issuer token: {error}"));
        let fixture = Fixture {
            issuer_api: IssuerApi::new(Arc::clone(&broker)),
            admin_api: AdminApi::new(Arc::clone(&broker)),
            agent_api,
            broker,
            agent_id: registered.agent_id,
            token: registered.token,
            issuer_token,
            module_sha256: TaskModule::new(noop_module()).hash().to_hex(),
            workload: Mutex::new(String::new()),
            leasing: tokio::sync::Mutex::new(()),
        };
        fixture.new_workload().await;
        fixture
    }

    /// The current fixture workload's id.
    pub(crate) fn workload(&self) -> String {
        self.workload
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces [`WORKLOAD`] by the current workload id.
    pub(crate) fn fill_workload(&self, id: &mut String) {
        if id == WORKLOAD {
            *id = self.workload();
        }
    }

    /// Replaces [`MODULE`] by the fixture module's sha256.
    pub(crate) fn fill_module(&self, sha256: &mut String) {
        if sha256 == MODULE {
            sha256.clone_from(&self.module_sha256);
        }
    }

    /// Replaces [`LEASE`] by a fresh lease of the fixture agent; returns it,
    /// to be given back with [`Fixture::give_back`].
    pub(crate) async fn fill_lease(&self, lease_id: &mut String) -> Option<String> {
        if lease_id != LEASE {
            return None;
        }
        let lease = self.take_lease().await?;
        lease_id.clone_from(&lease);
        Some(lease)
    }

    /// Releases a lease from [`Fixture::fill_lease`] if the input left it
    /// active, so the fixture's tasks go back to the queue.
    pub(crate) async fn give_back(&self, lease: Option<String>) {
        if let Some(lease) = lease {
            let _ = self
                .broker
                .release(&self.agent_id, &lease, "fuzz input done")
                .await;
        }
    }

    /// An agent request with `authorization` metadata as `auth` says.
    pub(crate) fn request<T>(&self, message: T, auth: Auth) -> Request<T> {
        let header = match auth {
            Auth::Missing => None,
            Auth::Valid => Some(format!("Bearer {}", self.token)),
            Auth::Unknown => Some(format!("Bearer {}", "0".repeat(self.token.len()))),
            Auth::NotBearer => Some(self.token.clone()),
        };
        with_authorization(message, header)
    }

    /// An issuer or admin request with `authorization` as `auth` says.
    pub(crate) fn caller_request<T>(&self, message: T, auth: CallerAuth) -> Request<T> {
        let token = match auth {
            CallerAuth::Missing => None,
            CallerAuth::Admin => Some(ADMIN_TOKEN.to_owned()),
            CallerAuth::Issuer => Some(self.issuer_token.clone()),
            CallerAuth::Unknown => Some("0".repeat(self.issuer_token.len())),
        };
        with_authorization(message, token.map(|token| format!("Bearer {token}")))
    }

    /// A lease on a task of the fixture agent's offers, submitting a new
    /// fixture workload when none is on offer.
    async fn take_lease(&self) -> Option<String> {
        let _one_at_a_time = self.leasing.lock().await;
        for _ in 0..2 {
            let offers = self
                .broker
                .request_work(&self.agent_id, 1, u64::MAX)
                .await
                .unwrap_or_default();
            if let Some(offer) = offers.first() {
                let task = (offer.workload.id.clone(), offer.index);
                if let Ok((granted, _)) = self.broker.accept(&self.agent_id, &[task]).await
                    && let Some(lease) = granted.into_iter().next()
                {
                    return Some(lease.lease_id);
                }
            }
            self.new_workload().await;
        }
        None
    }

    /// Submits a fixture workload (granting credits first if the issuer ran
    /// short) and makes it the current one.
    async fn new_workload(&self) {
        for _ in 0..2 {
            match self.broker.submit(fixture_workload()).await {
                Ok((id, _)) => {
                    *self.workload.lock().unwrap_or_else(PoisonError::into_inner) = id;
                    return;
                }
                Err(BrokerError::FailedPrecondition(_)) => {
                    self.broker
                        .grant(ISSUER, GRANT_MICRO, "fuzzing")
                        .await
                        .unwrap_or_else(|error| panic!("fixture grant: {error}"));
                }
                Err(error) => panic!("fixture workload: {error}"),
            }
        }
        panic!("the fixture workload cannot be submitted even after a grant");
    }
}

fn fixture_workload() -> NewWorkload {
    NewWorkload {
        issuer: ISSUER.into(),
        name: "fuzz fixture".into(),
        limits: Limits {
            memory_bytes: 1 << 20,
            fuel: 1_000_000,
            wall_time: Duration::from_secs(10),
            max_output_bytes: 1 << 20,
            max_stack_bytes: 1 << 20,
        },
        replicas: 1,
        quorum: 0,
        adaptive: false,
        max_attempts: 3,
        credits_per_fuel: 1e-9,
        credits_per_mib_second: 0.0,
        module: noop_module(),
        reducer: None,
        inputs: vec![b"{}".to_vec(); FIXTURE_TASKS],
    }
}

/// A fresh data dir for this process: in `/dev/shm` where there is one
/// (the store syncs every commit; on tmpfs that is free), else in the temp
/// dir. Data dirs of processes that have exited are removed first.
fn data_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let root = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    remove_stale_data_dirs(&root);
    let dir = root.join(format!("{DATA_DIR_PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn remove_stale_data_dirs(root: &Path) {
    let proc = Path::new("/proc");
    if !proc.is_dir() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(DATA_DIR_PREFIX))
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !proc.join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
