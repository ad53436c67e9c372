//! The load generator's agents: many simulated agents in this process,
//! each with its own connection, registration and token, speaking the real
//! agent protocol to the broker over loopback. A cycle is the real agent's:
//! `RequestWork(capacity = slots)`, `AcceptOffers` of the first `slots`
//! offers (which declines the others), `FetchModule` once per module, then
//! one `ReportResults` with every lease's result; with a task time, the agent first waits
//! that long, extending its leases (`ExtendLease`) every third of their
//! lease time as the real agent does. The task is not run: each report
//! carries what the real `echo` task produces (its input as output, and the
//! fuel, memory and time measured by running it once in this process), so
//! every replica of a task agrees and the broker does every step and every
//! store write it does for real agents.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Status};
use wasmgrid_proto::v1::agent_service_client::AgentServiceClient;
use wasmgrid_proto::v1::{self, TaskRef};
use wasmgrid_proto::{MAX_MESSAGE_BYTES, status_to_wire, usage_to_wire};
use wasmgrid_runtime::Usage;

use crate::dispatch::connection::Connection;
use crate::dispatch::latency::{Latencies, Rpc};

/// The metadata key real agents send their version in (every agent call;
/// `wasmgrid-agent`'s client). A broker without a minimum version only
/// notes it.
const AGENT_VERSION_HEADER: &str = "x-wasmgrid-agent-version";

/// The version the simulated agents announce: the workspace's, as a
/// `wasmgrid-agent` built from this tree would.
const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Registrations in flight at once: a thousand agents starting together
/// would measure the connect storm, not the broker's registration.
const REGISTRATIONS_IN_FLIGHT: usize = 32;

/// Wait after a failed call before the agent carries on, as a real agent
/// backs off.
const ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Error messages kept for the report (the count is kept in full).
const KEPT_ERRORS: usize = 8;

/// How the simulated agents behave.
#[derive(Clone, Copy, Debug)]
pub struct AgentPlan {
    pub agents: usize,
    /// Tasks each agent asks for and accepts per cycle (its free slots).
    pub slots: u32,
    /// Mean time each cycle spends "running" its leases before reporting
    /// them (each cycle draws from half to one and a half times it, and
    /// each agent's first request waits up to it, so the agents do not
    /// move in lockstep): zero skips execution.
    pub task_time: Duration,
    /// Memory the agent declares free per slot (it must cover the
    /// workload's memory limit for a task to be offered).
    pub memory_per_slot: u64,
}

/// What every report says: the outcome of the real task on an input of the
/// bench's fixed length.
#[derive(Clone, Debug)]
pub struct Reply {
    pub usage: Usage,
}

/// Counts kept by all agents, read by the monitor while they work.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    idle_requests: AtomicU64,
    offers: AtomicU64,
    leases: AtomicU64,
    rejected: AtomicU64,
    fetches: AtomicU64,
    reports: AtomicU64,
    counted: AtomicU64,
    errors: AtomicU64,
}

/// A reading of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// `RequestWork` calls, and those answered without offers.
    pub requests: u64,
    pub idle_requests: u64,
    /// Offers received, leases granted, offers accepted but no longer
    /// available.
    pub offers: u64,
    pub leases: u64,
    pub rejected: u64,
    pub fetches: u64,
    /// Reports sent, and those the broker counted (its lease was live or
    /// its task still open).
    pub reports: u64,
    pub counted: u64,
    /// Calls that failed.
    pub errors: u64,
}

#[derive(Debug, Default)]
struct Shared {
    counters: Counters,
    /// Latencies are recorded only while this is set: the monitor measures
    /// a window of the run.
    recording: AtomicBool,
    stop: AtomicBool,
    kept_errors: Mutex<Vec<String>>,
}

impl Shared {
    fn failed(&self, agent: &str, error: &anyhow::Error) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        let mut kept = self
            .kept_errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if kept.len() < KEPT_ERRORS {
            kept.push(format!("{agent}: {error:#}"));
        }
    }
}

/// The agents of one phase, registered, each on its own tokio task.
#[derive(Debug)]
pub struct Swarm {
    shared: Arc<Shared>,
    go: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Latencies>>,
    /// Latency of each `Register`.
    pub registration: Latencies,
    /// Wall time to register them all.
    pub registered_in: Duration,
}

impl Swarm {
    /// Connects and registers `plan.agents` agents to the broker at `url`;
    /// they wait for [`Swarm::go`] before asking for work.
    pub async fn register(url: &str, plan: AgentPlan, reply: Arc<Reply>) -> Result<Swarm> {
        let shared = Arc::new(Shared::default());
        let (go, _) = watch::channel(false);
        let started = Instant::now();
        let registered: Vec<Result<(SimAgent, Duration)>> = futures::stream::iter(0..plan.agents)
            .map(|i| SimAgent::register(url, i, plan, Arc::clone(&reply)))
            .buffer_unordered(REGISTRATIONS_IN_FLIGHT)
            .collect()
            .await;
        let registered_in = started.elapsed();
        let mut registration = Latencies::default();
        let mut tasks = Vec::with_capacity(plan.agents);
        for agent in registered {
            let (agent, latency) = agent?;
            registration.record(Rpc::Register, latency);
            tasks.push(tokio::spawn(
                agent.work(Arc::clone(&shared), go.subscribe()),
            ));
        }
        Ok(Swarm {
            shared,
            go,
            tasks,
            registration,
            registered_in,
        })
    }

    /// Lets every agent start asking for work.
    pub fn go(&self) {
        self.go.send_replace(true);
    }

    /// Starts or stops recording latencies.
    pub fn record_latencies(&self, on: bool) {
        self.shared.recording.store(on, Ordering::Relaxed);
    }

    pub fn progress(&self) -> Progress {
        let c = &self.shared.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Progress {
            requests: load(&c.requests),
            idle_requests: load(&c.idle_requests),
            offers: load(&c.offers),
            leases: load(&c.leases),
            rejected: load(&c.rejected),
            fetches: load(&c.fetches),
            reports: load(&c.reports),
            counted: load(&c.counted),
            errors: load(&c.errors),
        }
    }

    /// The first errors the agents met.
    pub fn errors(&self) -> Vec<String> {
        self.shared
            .kept_errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops every agent after its current cycle and returns the latencies
    /// they recorded.
    pub async fn stop(self) -> Result<Latencies> {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Agents still waiting for the start go, see the stop, and end.
        self.go.send_replace(true);
        let mut latencies = Latencies::default();
        for task in self.tasks {
            latencies.merge(task.await.context("a simulated agent's task panicked")?);
        }
        Ok(latencies)
    }
}

/// Sends the agent's token and version with every call, as the real agent.
#[derive(Clone, Debug)]
struct AgentMetadata {
    authorization: Option<MetadataValue<Ascii>>,
    version: MetadataValue<Ascii>,
}

impl AgentMetadata {
    fn new(token: Option<&str>) -> Result<Self> {
        let authorization = token
            .map(|token| format!("Bearer {token}").parse())
            .transpose()
            .map_err(|_| anyhow!("the broker's agent token is not a header value"))?;
        Ok(AgentMetadata {
            authorization,
            version: MetadataValue::from_static(AGENT_VERSION),
        })
    }
}

impl Interceptor for AgentMetadata {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let metadata = request.metadata_mut();
        if let Some(authorization) = &self.authorization {
            metadata.insert("authorization", authorization.clone());
        }
        metadata.insert(AGENT_VERSION_HEADER, self.version.clone());
        Ok(request)
    }
}

type AgentClient = AgentServiceClient<InterceptedService<Connection, AgentMetadata>>;

fn agent_client(channel: Connection, metadata: AgentMetadata) -> AgentClient {
    AgentServiceClient::with_interceptor(channel, metadata)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// One simulated agent.
#[derive(Debug)]
struct SimAgent {
    name: String,
    client: AgentClient,
    plan: AgentPlan,
    reply: Arc<Reply>,
    /// Modules fetched, by sha256.
    modules: HashSet<String>,
    /// State of the jitter of the simulated task time (xorshift64).
    jitter: u64,
}

impl SimAgent {
    /// Opens the agent's own connection and registers; returns the agent
    /// and how long `Register` took.
    async fn register(
        url: &str,
        index: usize,
        plan: AgentPlan,
        reply: Arc<Reply>,
    ) -> Result<(SimAgent, Duration)> {
        let name = format!("sim-{index:05}");
        let channel = Connection::open(url)
            .await
            .with_context(|| format!("{name}: connect to {url}"))?;
        let memory_bytes = plan.memory_per_slot * u64::from(plan.slots);
        let started = Instant::now();
        let registered = agent_client(channel.clone(), AgentMetadata::new(None)?)
            .register(v1::RegisterRequest {
                name: name.clone(),
                os: std::env::consts::OS.to_owned(),
                arch: std::env::consts::ARCH.to_owned(),
                cores: plan.slots,
                memory_bytes,
                slots: plan.slots,
                version: AGENT_VERSION.to_owned(),
                owner: String::new(),
                enrolment_secret: String::new(),
            })
            .await
            .map_err(|status| rpc_error(Rpc::Register, &status))
            .with_context(|| name.clone())?
            .into_inner();
        let latency = started.elapsed();
        let client = agent_client(channel, AgentMetadata::new(Some(&registered.token))?);
        Ok((
            SimAgent {
                name,
                client,
                plan,
                reply,
                modules: HashSet::new(),
                // Any odd, agent-specific, non-zero start will do.
                jitter: (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            },
            latency,
        ))
    }

    /// Cycles until told to stop; returns the latencies recorded.
    async fn work(mut self, shared: Arc<Shared>, mut go: watch::Receiver<bool>) -> Latencies {
        let mut latencies = Latencies::default();
        if go.wait_for(|go| *go).await.is_err() {
            return latencies;
        }
        if !self.plan.task_time.is_zero() {
            let start = self.plan.task_time.mul_f64(self.next_fraction());
            tokio::time::sleep(start).await;
        }
        // Offers that came with the last cycle's report.
        let mut offered = None;
        while !shared.stop.load(Ordering::Relaxed) {
            match self.cycle(&shared, &mut latencies, offered.take()).await {
                Ok(Cycle::Reported(next)) => offered = next,
                Ok(Cycle::Idle(wait)) => tokio::time::sleep(wait).await,
                Err(error) => {
                    shared.failed(&self.name, &error);
                    tokio::time::sleep(ERROR_BACKOFF).await;
                }
            }
        }
        latencies
    }

    /// What this agent asks for when it asks for work: all its slots.
    fn work_request(&self) -> v1::RequestWorkRequest {
        v1::RequestWorkRequest {
            capacity: self.plan.slots,
            free_memory_bytes: self.plan.memory_per_slot * u64::from(self.plan.slots),
        }
    }

    /// One cycle, on the offers the last cycle's report brought, or on
    /// those of a `RequestWork` when there are none (the first cycle, or a
    /// broker that does not answer work with reports).
    async fn cycle(
        &mut self,
        shared: &Shared,
        latencies: &mut Latencies,
        offered: Option<Offered>,
    ) -> Result<Cycle> {
        let recording = shared.recording.load(Ordering::Relaxed);
        let counters = &shared.counters;
        let (offers, started, offered_at) = match offered {
            Some(offered) => (offered.offers, offered.asked_at, offered.answered_at),
            None => {
                let started = Instant::now();
                let offers = self
                    .client
                    .request_work(self.work_request())
                    .await
                    .map_err(|status| rpc_error(Rpc::RequestWork, &status))?
                    .into_inner();
                let offered_at = Instant::now();
                // A request that finds no work is held by the broker until
                // some arrives (`--work-wait`): its time is waiting, not
                // serving, and is left out of the latencies (it is counted
                // as an idle request).
                if recording && !offers.offers.is_empty() {
                    latencies.record(Rpc::RequestWork, offered_at - started);
                }
                (offers, started, offered_at)
            }
        };
        counters.requests.fetch_add(1, Ordering::Relaxed);
        if offers.offers.is_empty() {
            counters.idle_requests.fetch_add(1, Ordering::Relaxed);
            // The broker's hint, as the real agent follows it; never a
            // busy loop.
            let wait = Duration::from_millis(offers.retry_after_ms.into());
            return Ok(Cycle::Idle(wait.max(Duration::from_millis(10))));
        }
        counters
            .offers
            .fetch_add(offers.offers.len() as u64, Ordering::Relaxed);
        let tasks: Vec<TaskRef> = offers
            .offers
            .into_iter()
            .filter_map(|offer| offer.task)
            .take(self.plan.slots as usize)
            .collect();
        let accepted = self
            .client
            .accept_offers(v1::AcceptOffersRequest { tasks })
            .await
            .map_err(|status| rpc_error(Rpc::AcceptOffers, &status))?
            .into_inner();
        let leased_at = Instant::now();
        if recording {
            latencies.record(Rpc::AcceptOffers, leased_at - offered_at);
            if !accepted.leases.is_empty() {
                latencies.record(Rpc::Dispatch, leased_at - started);
            }
        }
        counters
            .leases
            .fetch_add(accepted.leases.len() as u64, Ordering::Relaxed);
        counters
            .rejected
            .fetch_add(accepted.rejected.len() as u64, Ordering::Relaxed);
        for lease in &accepted.leases {
            if !self.modules.contains(&lease.module_sha256) {
                let fetch_started = Instant::now();
                self.fetch_module(&lease.module_sha256).await?;
                counters.fetches.fetch_add(1, Ordering::Relaxed);
                if recording {
                    latencies.record(Rpc::FetchModule, fetch_started.elapsed());
                }
            }
        }
        if !self.plan.task_time.is_zero() {
            let run = self.plan.task_time.mul_f64(0.5 + self.next_fraction());
            self.run_for(run, &accepted.leases, recording, latencies)
                .await?;
        }
        // Every result of the cycle in one call, as the real agent's
        // reporter sends what it has ready.
        let reports: Vec<v1::ReportResultRequest> = accepted
            .leases
            .into_iter()
            .map(|lease| v1::ReportResultRequest {
                lease_id: lease.lease_id,
                status: Some(status_to_wire(&wasmgrid_runtime::Status::Ok)),
                // What `echo` outputs: its input.
                output: lease.input,
                stderr: Vec::new(),
                task: lease.task,
                usage: Some(usage_to_wire(&self.reply.usage)),
            })
            .collect();
        if reports.is_empty() {
            return Ok(Cycle::Reported(None));
        }
        // The slots the reports free are asked to be filled in the same
        // call, as the real agent does; not when the run is stopping.
        let work = (!shared.stop.load(Ordering::Relaxed)).then(|| self.work_request());
        let report_started = Instant::now();
        let answer = self
            .client
            .report_results(v1::ReportResultsRequest { reports, work })
            .await
            .map_err(|status| rpc_error(Rpc::ReportResults, &status))?
            .into_inner();
        let answered_at = Instant::now();
        if recording {
            latencies.record(Rpc::ReportResults, answered_at - report_started);
        }
        let next = answer.work.map(|offers| Offered {
            offers,
            asked_at: report_started,
            answered_at,
        });
        for outcome in answer.outcomes {
            if outcome.code != tonic::Code::Ok as i32 {
                return Err(rpc_error(
                    Rpc::ReportResults,
                    &tonic::Status::new(tonic::Code::from(outcome.code), outcome.message),
                ));
            }
            counters.reports.fetch_add(1, Ordering::Relaxed);
            if outcome.counted {
                counters.counted.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(Cycle::Reported(next))
    }

    /// "Runs" the leases for `run`, extending them every third of their
    /// lease time as the real agent's lease keeper does.
    async fn run_for(
        &mut self,
        run: Duration,
        leases: &[v1::Lease],
        recording: bool,
        latencies: &mut Latencies,
    ) -> Result<()> {
        let ends = Instant::now() + run;
        let every = leases
            .iter()
            .map(|lease| Duration::from_millis(lease.lease_ms / 3))
            .min()
            .filter(|every| !every.is_zero())
            .unwrap_or(run);
        loop {
            let left = ends.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            tokio::time::sleep(left.min(every)).await;
            if Instant::now() >= ends {
                return Ok(());
            }
            for lease in leases {
                let started = Instant::now();
                self.client
                    .extend_lease(v1::ExtendLeaseRequest {
                        lease_id: lease.lease_id.clone(),
                    })
                    .await
                    .map_err(|status| rpc_error(Rpc::ExtendLease, &status))?;
                if recording {
                    latencies.record(Rpc::ExtendLease, started.elapsed());
                }
            }
        }
    }

    /// The next number of the agent's jitter, uniform in [0, 1).
    fn next_fraction(&mut self) -> f64 {
        let mut x = self.jitter;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.jitter = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Streams the module and checks it arrived whole (its bytes are not
    /// needed: the task is not run).
    async fn fetch_module(&mut self, sha256: &str) -> Result<()> {
        let mut stream = self
            .client
            .fetch_module(v1::FetchModuleRequest {
                sha256: sha256.to_owned(),
            })
            .await
            .map_err(|status| rpc_error(Rpc::FetchModule, &status))?
            .into_inner();
        let mut received = 0u64;
        let mut total = None;
        while let Some(chunk) = stream
            .message()
            .await
            .map_err(|status| rpc_error(Rpc::FetchModule, &status))?
        {
            total.get_or_insert(chunk.total_size);
            received += chunk.data.len() as u64;
        }
        if total != Some(received) {
            bail!("module {sha256}: {received} bytes arrived, announced {total:?}");
        }
        self.modules.insert(sha256.to_owned());
        Ok(())
    }
}

/// How a cycle ended.
enum Cycle {
    /// Its leases were reported; with the offers the report asked for,
    /// unless the broker does not answer work with reports.
    Reported(Option<Offered>),
    /// Nothing was offered: wait this long before asking again.
    Idle(Duration),
}

/// Offers, and when they were asked for and came.
struct Offered {
    offers: v1::RequestWorkResponse,
    asked_at: Instant,
    answered_at: Instant,
}

fn rpc_error(rpc: Rpc, status: &Status) -> anyhow::Error {
    anyhow!("{rpc} failed: {:?}: {}", status.code(), status.message())
}
