//! An in-memory broker speaking the agent protocol, with knobs to misbehave
//! (refuse reports, serve corrupt modules, forget tokens). It lets the agent
//! be tested end to end over real sockets before and apart from the real
//! broker. It records the work calls in order (to check how the agent
//! answers offers) and pays counted reports into a small ledger that
//! `GetEarnings` answers from.

#![allow(dead_code, reason = "each test crate uses its part of the fake")]

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio_stream::Stream;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};
use wasmgrid_proto::v1::agent_service_server::{AgentService, AgentServiceServer};
use wasmgrid_proto::v1::{
    AcceptOffersRequest, AcceptOffersResponse, AgentBuildChunk, Earnings, EarningsRequest,
    ExtendLeaseRequest, ExtendLeaseResponse, FetchAgentBuildRequest, FetchModuleRequest, Lease,
    LedgerEntry, Limits, ModuleChunk, Offer, RegisterRequest, RegisterResponse,
    ReleaseLeaseRequest, ReleaseLeaseResponse, ReportResultRequest, ReportResultResponse,
    ReportResultsRequest, ReportResultsResponse, RequestWorkRequest, RequestWorkResponse, TaskRef,
};

/// Modules are streamed in chunks this small, so assembly is exercised.
const CHUNK_BYTES: usize = 7;

/// One task waiting for an agent or leased to one.
#[derive(Clone, Debug)]
pub struct Task {
    pub task: TaskRef,
    pub module_sha256: String,
    pub input: Vec<u8>,
    pub limits: Limits,
    pub credits_per_fuel: f64,
}

/// A work call the agent made, in the order the broker saw them.
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    /// `RequestWork`, answered with these offers.
    RequestWork(Vec<TaskRef>),
    /// `AcceptOffers` of these tasks (empty: every offer declined).
    AcceptOffers(Vec<TaskRef>),
}

/// Everything the broker knows and did, for tests to inspect and tune.
#[derive(Debug, Default)]
pub struct State {
    pub modules: HashMap<String, Vec<u8>>,
    pub queue: VecDeque<Task>,
    pub leases: HashMap<String, Task>,
    pub reports: Vec<ReportResultRequest>,
    pub releases: Vec<ReleaseLeaseRequest>,
    pub registrations: Vec<RegisterRequest>,
    pub tokens: HashSet<String>,
    /// Agent id by token, for tokens given by `Register`.
    pub agents: HashMap<String, String>,
    /// `RequestWork` and `AcceptOffers` calls, in order.
    pub calls: Vec<Call>,
    /// Payments: each counted report pays `fuel × credits_per_fuel`.
    pub ledger: Vec<LedgerEntry>,
    /// Reported by `GetEarnings` for every agent.
    pub results_invalid: u64,
    pub trusted: bool,
    pub fetches: u32,
    pub extensions: u32,
    pub accepted: u32,
    /// Answer this many `ReportResult` calls with `Unavailable`.
    pub refuse_reports: u32,
    /// Answer each `ReportResult` only after this long.
    pub report_delay: Duration,
    /// Serve this many module downloads with a flipped byte.
    pub corrupt_fetches: u32,
    /// Answer `ExtendLease` with `NotFound` (the lease was revoked).
    pub revoke_on_extend: bool,
    /// Refuse the agent's version, as a broker with this minimum version
    /// does: on every call but `ReleaseLease` and `GetEarnings`.
    pub required_version: Option<String>,
    pub lease_ms: u64,
    next_id: u64,
}

#[derive(Debug, Default)]
pub struct Shared {
    state: Mutex<State>,
    changed: Notify,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the state and wakes waiters.
    pub fn update<T>(&self, change: impl FnOnce(&mut State) -> T) -> T {
        let result = change(&mut self.lock());
        self.changed.notify_waiters();
        result
    }

    /// Waits (at most 60 s) until `condition` holds.
    pub async fn wait_for(&self, what: &str, condition: impl Fn(&State) -> bool) {
        let waited = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let notified = self.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if condition(&self.lock()) {
                    return;
                }
                notified.await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "timed out waiting for {what}: {:#?}",
            self.lock()
        );
    }

    /// The `AcceptOffers` calls so far.
    pub fn accept_calls(&self) -> Vec<Vec<TaskRef>> {
        self.lock()
            .calls
            .iter()
            .filter_map(|call| match call {
                Call::AcceptOffers(tasks) => Some(tasks.clone()),
                Call::RequestWork(_) => None,
            })
            .collect()
    }

    /// Refuses the call when the broker requires a newer agent, as the real
    /// broker does.
    fn check_version(&self) -> Result<(), Status> {
        let Some(required) = self.lock().required_version.clone() else {
            return Ok(());
        };
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert(
            wasmgrid_proto::REQUIRED_AGENT_VERSION_HEADER,
            required
                .parse()
                .map_err(|_| Status::internal("bad version"))?,
        );
        Err(Status::with_metadata(
            tonic::Code::FailedPrecondition,
            format!("this broker requires wasmgrid-agent >= {required}"),
            metadata,
        ))
    }

    /// The caller's agent id (its token, for tokens a test added).
    fn authenticate<T>(&self, request: &Request<T>) -> Result<String, Status> {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("no token"))?;
        let state = self.lock();
        if state.tokens.contains(token) {
            Ok(state
                .agents
                .get(token)
                .cloned()
                .unwrap_or_else(|| token.to_owned()))
        } else {
            Err(Status::unauthenticated("unknown token"))
        }
    }
}

/// A running fake broker.
#[derive(Debug)]
pub struct FakeBroker {
    pub shared: Arc<Shared>,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl FakeBroker {
    /// Starts a broker on a free port.
    pub async fn start() -> FakeBroker {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        FakeBroker::start_on(listener, Arc::default())
    }

    /// Starts a broker on `listener`, with `shared` state (kept across a
    /// restart of the broker).
    pub fn start_on(listener: TcpListener, shared: Arc<Shared>) -> FakeBroker {
        let addr = listener.local_addr().expect("local address");
        shared.update(|state| {
            if state.lease_ms == 0 {
                state.lease_ms = 30_000;
            }
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let service = AgentServiceServer::new(Service(Arc::clone(&shared)));
        tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                eprintln!("fake broker failed: {error}");
            }
        });
        FakeBroker {
            shared,
            addr,
            stop: Some(stop),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a module and one task per input; returns the module's sha256.
    pub fn add_workload(
        &self,
        workload: &str,
        module: &[u8],
        inputs: &[&[u8]],
        limits: Limits,
    ) -> String {
        let sha256 = hex::encode(Sha256::digest(module));
        self.shared.update(|state| {
            state.modules.insert(sha256.clone(), module.to_vec());
            for (index, input) in inputs.iter().enumerate() {
                state.queue.push_back(Task {
                    task: TaskRef {
                        workload_id: workload.to_owned(),
                        index: u32::try_from(index).expect("index"),
                    },
                    module_sha256: sha256.clone(),
                    input: input.to_vec(),
                    limits,
                    credits_per_fuel: 1.0,
                });
            }
        });
        sha256
    }
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

struct Service(Arc<Shared>);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |now| i64::try_from(now.as_millis()).unwrap_or(i64::MAX))
}

#[tonic::async_trait]
impl AgentService for Service {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        self.0.check_version()?;
        let request = request.into_inner();
        let response = self.0.update(|state| {
            state.next_id += 1;
            let response = RegisterResponse {
                agent_id: format!("agent-{}", state.next_id),
                token: format!("token-{}", state.next_id),
            };
            state.tokens.insert(response.token.clone());
            state
                .agents
                .insert(response.token.clone(), response.agent_id.clone());
            state.registrations.push(request);
            response
        });
        Ok(Response::new(response))
    }

    async fn request_work(
        &self,
        request: Request<RequestWorkRequest>,
    ) -> Result<Response<RequestWorkResponse>, Status> {
        self.0.check_version()?;
        self.0.authenticate(&request)?;
        let offers: Vec<Offer> = self.0.update(|state| {
            let offers: Vec<Offer> = state
                .queue
                .iter()
                .take(10)
                .map(|task| Offer {
                    task: Some(task.task.clone()),
                    limits: Some(task.limits),
                    module_sha256: task.module_sha256.clone(),
                    credits_per_fuel: task.credits_per_fuel,
                    estimated_fuel: 1000,
                    expires_unix_ms: now_ms() + 10_000,
                    ..Offer::default()
                })
                .collect();
            state.calls.push(Call::RequestWork(
                offers
                    .iter()
                    .filter_map(|offer| offer.task.clone())
                    .collect(),
            ));
            offers
        });
        Ok(Response::new(RequestWorkResponse {
            offers,
            retry_after_ms: 20,
        }))
    }

    async fn accept_offers(
        &self,
        request: Request<AcceptOffersRequest>,
    ) -> Result<Response<AcceptOffersResponse>, Status> {
        self.0.check_version()?;
        self.0.authenticate(&request)?;
        let response = self.0.update(|state| {
            let mut response = AcceptOffersResponse::default();
            let tasks = request.into_inner().tasks;
            state.calls.push(Call::AcceptOffers(tasks.clone()));
            for wanted in tasks {
                let Some(position) = state.queue.iter().position(|task| task.task == wanted) else {
                    response.rejected.push(wanted);
                    continue;
                };
                let Some(task) = state.queue.remove(position) else {
                    continue;
                };
                state.next_id += 1;
                state.accepted += 1;
                let lease_id = format!("lease-{}", state.next_id);
                response.leases.push(Lease {
                    lease_id: lease_id.clone(),
                    task: Some(task.task.clone()),
                    module_sha256: task.module_sha256.clone(),
                    limits: Some(task.limits),
                    input: task.input.clone(),
                    seed: 7,
                    deadline_unix_ms: now_ms() + i64::try_from(state.lease_ms).unwrap_or(0),
                    lease_ms: state.lease_ms,
                });
                state.leases.insert(lease_id, task);
            }
            response
        });
        Ok(Response::new(response))
    }

    type FetchModuleStream = Pin<Box<dyn Stream<Item = Result<ModuleChunk, Status>> + Send>>;

    async fn fetch_module(
        &self,
        request: Request<FetchModuleRequest>,
    ) -> Result<Response<Self::FetchModuleStream>, Status> {
        self.0.check_version()?;
        self.0.authenticate(&request)?;
        let sha256 = request.into_inner().sha256;
        let mut bytes = self
            .0
            .update(|state| {
                state.fetches += 1;
                state.modules.get(&sha256).cloned()
            })
            .ok_or_else(|| Status::not_found("no such module"))?;
        let corrupt = self.0.update(|state| {
            let corrupt = state.corrupt_fetches > 0;
            state.corrupt_fetches = state.corrupt_fetches.saturating_sub(1);
            corrupt
        });
        if corrupt && let Some(last) = bytes.last_mut() {
            *last ^= 0xff;
        }
        let total_size = bytes.len() as u64;
        let chunks: Vec<Result<ModuleChunk, Status>> = bytes
            .chunks(CHUNK_BYTES)
            .enumerate()
            .map(|(i, data)| {
                Ok(ModuleChunk {
                    data: data.to_vec(),
                    total_size: if i == 0 { total_size } else { 0 },
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    async fn extend_lease(
        &self,
        request: Request<ExtendLeaseRequest>,
    ) -> Result<Response<ExtendLeaseResponse>, Status> {
        self.0.check_version()?;
        self.0.authenticate(&request)?;
        let lease_id = request.into_inner().lease_id;
        self.0.update(|state| {
            state.extensions += 1;
            if state.revoke_on_extend || !state.leases.contains_key(&lease_id) {
                return Err(Status::not_found("no such lease"));
            }
            Ok(Response::new(ExtendLeaseResponse {
                deadline_unix_ms: now_ms() + i64::try_from(state.lease_ms).unwrap_or(0),
            }))
        })
    }

    /// A broker from before batched reports: the agent must fall back to
    /// one `ReportResult` per result.
    async fn report_results(
        &self,
        _request: Request<ReportResultsRequest>,
    ) -> Result<Response<ReportResultsResponse>, Status> {
        Err(Status::unimplemented("ReportResults"))
    }

    async fn report_result(
        &self,
        request: Request<ReportResultRequest>,
    ) -> Result<Response<ReportResultResponse>, Status> {
        self.0.check_version()?;
        let agent_id = self.0.authenticate(&request)?;
        let report = request.into_inner();
        let delay = self.0.lock().report_delay;
        tokio::time::sleep(delay).await;
        self.0.update(|state| {
            if state.refuse_reports > 0 {
                state.refuse_reports -= 1;
                return Err(Status::unavailable("not now"));
            }
            if state
                .reports
                .iter()
                .any(|known| known.lease_id == report.lease_id)
            {
                return Ok(Response::new(ReportResultResponse { counted: false }));
            }
            let leased = state.leases.remove(&report.lease_id);
            let counted = leased.is_some();
            if !counted && !report.lease_id.starts_with("old-") {
                return Err(Status::not_found("no such lease"));
            }
            if let Some(task) = leased {
                let fuel = report.usage.as_ref().map_or(0, |usage| usage.fuel_consumed);
                let seq = state.ledger.len() as u64 + 1;
                state.ledger.push(LedgerEntry {
                    seq,
                    at_unix_ms: now_ms(),
                    kind: "pay".into(),
                    from_account: format!("escrow:{}", task.task.workload_id),
                    to_account: format!("agent:{agent_id}"),
                    amount_micro: (fuel as f64 * task.credits_per_fuel * 1e6).round() as i64,
                    workload_id: task.task.workload_id.clone(),
                    has_task: true,
                    task_index: task.task.index,
                    lease_id: report.lease_id.clone(),
                    agent_id: agent_id.clone(),
                    fuel,
                    memo: String::new(),
                });
            }
            state.reports.push(report);
            Ok(Response::new(ReportResultResponse { counted }))
        })
    }

    async fn release_lease(
        &self,
        request: Request<ReleaseLeaseRequest>,
    ) -> Result<Response<ReleaseLeaseResponse>, Status> {
        self.0.authenticate(&request)?;
        let release = request.into_inner();
        self.0.update(|state| {
            state.leases.remove(&release.lease_id);
            state.releases.push(release);
        });
        Ok(Response::new(ReleaseLeaseResponse {}))
    }

    async fn get_earnings(
        &self,
        request: Request<EarningsRequest>,
    ) -> Result<Response<Earnings>, Status> {
        let agent_id = self.0.authenticate(&request)?;
        let state = self.0.lock();
        let account = format!("agent:{agent_id}");
        let mine: Vec<&LedgerEntry> = state
            .ledger
            .iter()
            .filter(|entry| entry.to_account == account || entry.from_account == account)
            .collect();
        let balance_micro = mine
            .iter()
            .map(|entry| {
                if entry.to_account == account {
                    entry.amount_micro
                } else {
                    -entry.amount_micro
                }
            })
            .sum();
        let results_valid = mine.iter().filter(|entry| entry.kind == "pay").count() as u64;
        let results = results_valid + state.results_invalid;
        Ok(Response::new(Earnings {
            agent_id,
            balance_micro,
            results_valid,
            results_invalid: state.results_invalid,
            reputation: if results == 0 {
                0.0
            } else {
                results_valid as f64 / results as f64
            },
            trusted: state.trusted,
            recent: mine.into_iter().rev().take(20).cloned().collect(),
        }))
    }

    type FetchAgentBuildStream =
        Pin<Box<dyn Stream<Item = Result<AgentBuildChunk, Status>> + Send>>;

    async fn fetch_agent_build(
        &self,
        _request: Request<FetchAgentBuildRequest>,
    ) -> Result<Response<Self::FetchAgentBuildStream>, Status> {
        Err(Status::not_found("the fake broker hosts no agent builds"))
    }
}
