//! [`BrokerConfig`]: what a broker is started with, and why each default.

use std::path::PathBuf;
use std::time::Duration;

use wasmgrid_proto::AgentVersion;
use wasmgrid_runtime::Compiler;

/// The broker's settings.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Where the store (`broker.sqlite`) and the compiled reducers
    /// (`compiled/`) live.
    pub data_dir: PathBuf,
    /// How long a lease lasts without a report or an extension. Agents extend
    /// every third of it, so a live agent misses three heartbeats before its
    /// task is reissued; a dead one delays its tasks by at most this long.
    pub lease_timeout: Duration,
    /// How long an offer is held for the agent it was made to. Offers are
    /// accepted within one round trip; a short hold returns unaccepted tasks
    /// to the queue quickly.
    pub offer_hold: Duration,
    /// How long a `RequestWork` that finds no work waits for some to arrive
    /// before it answers without offers. An idle agent then starts within
    /// a round trip of a submit instead of at its next poll, and asks about
    /// once per wait instead of four times a second. Zero answers at once.
    pub work_wait: Duration,
    /// How often expired leases are looked for.
    pub expiry_interval: Duration,
    /// Most offers made in one answer, whatever capacity the agent declares.
    pub max_offers_per_request: usize,
    /// Largest module accepted, in bytes. Modules are compiled by every agent
    /// that runs them: 128 MiB is far beyond real tasks and bounds the cost.
    pub max_module_bytes: u64,
    /// Largest total input of one workload, in bytes. A submit is held in
    /// memory until its end marker, so this bounds the broker's memory.
    pub max_workload_input_bytes: u64,
    /// Most tasks in one workload.
    pub max_tasks_per_workload: u32,
    /// Least time between two pushes of `WatchProgress` (changes in between
    /// are coalesced into one), and a tenth of the time between pushes when
    /// nothing changed. A workload's end is pushed at once.
    pub progress_interval: Duration,
    /// How long a stopping broker waits for open requests to finish before
    /// closing their connections (all acknowledged state is committed).
    pub shutdown_grace: Duration,
    /// The broker's fee on what agents are paid, in basis points (1/100 %),
    /// fixed into each workload at submit.
    pub fee_basis_points: u32,
    /// Agreeing results in a row (since it was last caught) after which an
    /// agent is trusted with solo runs under adaptive replication.
    pub trust_after: u64,
    /// Share of a trusted agent's runs that are still replicated, at random:
    /// a trusted agent that starts cheating is caught.
    pub spot_check_rate: f64,
    /// What replicas of one task must not share.
    pub replica_separation: ReplicaSeparation,
    /// An admin token to accept (stored hashed at start). Without one, a
    /// broker whose store holds no admin token generates one into
    /// `DATA_DIR/admin.token`: an admin can always reach a new broker, and
    /// nobody else can.
    pub admin_token: Option<String>,
    /// The secret an agent must present to register. Without one, any
    /// machine may join (volunteer computing is open by default); with one,
    /// only machines its operator gave it to.
    pub enrolment_secret: Option<String>,
    /// A directory of agent builds (`wasmgrid-agent-<version>-<os>-<arch>`)
    /// the broker hosts, read at start: volunteers install and update the
    /// agent from the broker they work for, never from an issuer.
    pub agent_dist: Option<PathBuf>,
    /// The oldest agent version accepted. Older agents are refused at
    /// registration and on every call but releasing a lease and asking for
    /// earnings, with a message that says how to update: a broker can retire
    /// an agent with a bug (in metering, say) without waiting for every
    /// volunteer to read the news.
    pub min_agent_version: Option<AgentVersion>,
    /// The URL volunteers reach the broker's gRPC port at, shown in the
    /// install script and in the message to outdated agents; `None` when it
    /// cannot be told (the broker listens on every address).
    pub public_url: Option<String>,
    /// The compiler of reducers. A reducer runs once per workload, over
    /// outputs that are mostly small, so its compile is most of its cost:
    /// [`Compiler::Baseline`] (Winch) compiles in a sixth of Cranelift's CPU.
    /// A reducer's fuel is a limit only, never billed, so Winch's own fuel
    /// rules change no bill. `Optimizing` suits reducers that compute a lot.
    pub reducer_compiler: Compiler,
}

/// What replicas of one task are kept apart by. An agent is always apart
/// from itself; by owner or address, one volunteer's many machines (or one
/// host's many agents) cannot form a quorum on their own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReplicaSeparation {
    #[default]
    Agent,
    Owner,
    Address,
}

impl std::str::FromStr for ReplicaSeparation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "agent" => Ok(ReplicaSeparation::Agent),
            "owner" => Ok(ReplicaSeparation::Owner),
            "address" => Ok(ReplicaSeparation::Address),
            other => Err(format!(
                "unknown replica separation {other:?}: use agent, owner or address"
            )),
        }
    }
}

impl BrokerConfig {
    /// Defaults with the given data dir.
    pub fn new(data_dir: PathBuf) -> Self {
        BrokerConfig {
            data_dir,
            lease_timeout: Duration::from_secs(30),
            offer_hold: Duration::from_secs(5),
            work_wait: Duration::from_secs(1),
            expiry_interval: Duration::from_millis(250),
            max_offers_per_request: 64,
            max_module_bytes: 128 << 20,
            max_workload_input_bytes: 512 << 20,
            max_tasks_per_workload: 10_000_000,
            progress_interval: Duration::from_millis(200),
            shutdown_grace: Duration::from_secs(5),
            fee_basis_points: 500,
            trust_after: 10,
            spot_check_rate: 0.1,
            replica_separation: ReplicaSeparation::Agent,
            admin_token: None,
            enrolment_secret: None,
            agent_dist: None,
            min_agent_version: None,
            public_url: None,
            reducer_compiler: Compiler::Baseline,
        }
    }
}
