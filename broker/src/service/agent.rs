//! `AgentService`: every call but `Register` and `FetchAgentBuild` is
//! authenticated by the bearer token in the `authorization` metadata. With
//! a minimum agent version, older agents are refused on every call but
//! `ReleaseLease` (giving work back early helps everyone) and `GetEarnings`
//! (what a volunteer earned stays theirs to see).

use std::pin::Pin;
use std::sync::Arc;

use futures::StreamExt;
use tokio_stream::Stream;
use tonic::{Code, Request, Response, Status};
use wasmgrid_proto::v1::agent_service_server::AgentService;
use wasmgrid_proto::v1::{self, TaskRef};
use wasmgrid_proto::{
    AGENT_VERSION_HEADER, MAX_REPORTS_PER_CALL, MODULE_CHUNK_BYTES, limits_to_wire,
    status_from_wire, usage_from_wire,
};

use crate::agent_dist::{self, AgentBuild};
use crate::core::parse_sha256;
use crate::core::{Broker, IncomingReport};
use crate::service::caller::bearer_token;
use crate::service::convert::ledger_entry;
use crate::store::agents::AgentRow;
use crate::store::{leases, modules};

/// How long an agent waits before asking again when there is no work and
/// the broker does not hold requests for work (`--work-wait 0s`).
const RETRY_WHEN_IDLE_MS: u32 = 250;

/// The agent service over a broker.
#[derive(Debug, Clone)]
pub struct AgentApi {
    broker: Arc<Broker>,
}

impl AgentApi {
    pub fn new(broker: Arc<Broker>) -> Self {
        AgentApi { broker }
    }

    /// The agent calling, refused when it is older than the broker's
    /// minimum version.
    async fn agent<T>(&self, request: &Request<T>) -> Result<String, Status> {
        let agent = self.agent_of_any_version(request).await?;
        let said = request
            .metadata()
            .get(AGENT_VERSION_HEADER)
            .map(|value| {
                value
                    .to_str()
                    .map_err(|_| Status::invalid_argument("the agent version is not ASCII"))
            })
            .transpose()?;
        self.broker.check_calling_agent(&agent, said).await?;
        Ok(agent)
    }

    /// The offers for a request for work. `RequestWork` is held while there
    /// are none, up to the broker's `--work-wait`; work asked for with
    /// reports is not (the reports' answer must not wait), and an answer
    /// without offers then says to ask again at once with `RequestWork`.
    async fn answer_work(
        &self,
        agent: &str,
        request: &v1::RequestWorkRequest,
        hold: bool,
    ) -> Result<v1::RequestWorkResponse, Status> {
        let (capacity, free_memory) = (request.capacity, request.free_memory_bytes);
        let counts = self.broker.work_requests();
        if hold {
            &counts.alone
        } else {
            &counts.with_reports
        }
        .inc();
        let offered = if hold {
            self.broker
                .request_work_waiting(agent, capacity, free_memory)
                .await?
        } else {
            self.broker
                .request_work(agent, capacity, free_memory)
                .await?
        };
        let offers: Vec<v1::Offer> = offered
            .iter()
            .map(|offer| v1::Offer {
                task: Some(TaskRef {
                    workload_id: offer.workload.id.clone(),
                    index: offer.index,
                }),
                limits: Some(limits_to_wire(&offer.workload.limits)),
                module_sha256: offer.workload.module_sha256.clone(),
                credits_per_fuel: offer.workload.credits_per_fuel,
                credits_per_mib_second: offer.workload.credits_per_mib_second,
                estimated_fuel: offer.estimated_fuel,
                estimated_memory_bytes: offer.estimated_memory,
                estimated_wall_ms: offer.estimated_wall_ms.unwrap_or(0),
                expires_unix_ms: offer.expires_ms,
            })
            .collect();
        // A request that already waited for work may ask again at once, as
        // may one that was not held (to be held next time).
        let retry_after_ms =
            if offers.is_empty() && hold && self.broker.config().work_wait.is_zero() {
                RETRY_WHEN_IDLE_MS
            } else {
                0
            };
        Ok(v1::RequestWorkResponse {
            offers,
            retry_after_ms,
        })
    }

    /// The agent calling, whatever version it runs.
    async fn agent_of_any_version<T>(&self, request: &Request<T>) -> Result<String, Status> {
        let token = bearer_token(request, "agent token")?;
        let agent = self.broker.authenticate(token).await?;
        // The calling handler's span carries the agent from here on.
        tracing::Span::current().record("agent", agent.as_str());
        Ok(agent)
    }
}

fn task_key(task: Option<&TaskRef>) -> Result<(String, u32), Status> {
    let task = task.ok_or_else(|| Status::invalid_argument("missing task"))?;
    Ok((task.workload_id.clone(), task.index))
}

#[tonic::async_trait]
impl AgentService for AgentApi {
    #[tracing::instrument(name = "Register", skip_all, fields(agent = tracing::field::Empty, name = %request.get_ref().name))]
    async fn register(
        &self,
        request: Request<v1::RegisterRequest>,
    ) -> Result<Response<v1::RegisterResponse>, Status> {
        let address = request.remote_addr();
        let r = request.into_inner();
        self.broker.check_enrolment(&r.enrolment_secret)?;
        let agent = AgentRow {
            id: String::new(),
            name: r.name,
            os: r.os,
            arch: r.arch,
            cores: r.cores,
            memory_bytes: r.memory_bytes,
            slots: r.slots,
            version: r.version,
            registered_ms: 0,
            last_seen_ms: 0,
            owner: r.owner,
            address: address.map(|a| a.ip().to_string()).unwrap_or_default(),
        };
        let (agent_id, token) = self.broker.register(agent).await?;
        tracing::Span::current().record("agent", agent_id.as_str());
        Ok(Response::new(v1::RegisterResponse { agent_id, token }))
    }

    #[tracing::instrument(name = "RequestWork", skip_all, fields(agent = tracing::field::Empty, capacity = request.get_ref().capacity))]
    async fn request_work(
        &self,
        request: Request<v1::RequestWorkRequest>,
    ) -> Result<Response<v1::RequestWorkResponse>, Status> {
        let agent = self.agent(&request).await?;
        let answer = self.answer_work(&agent, request.get_ref(), true).await?;
        Ok(Response::new(answer))
    }

    #[tracing::instrument(name = "AcceptOffers", skip_all, fields(agent = tracing::field::Empty, tasks = request.get_ref().tasks.len()))]
    async fn accept_offers(
        &self,
        request: Request<v1::AcceptOffersRequest>,
    ) -> Result<Response<v1::AcceptOffersResponse>, Status> {
        let agent = self.agent(&request).await?;
        let tasks = request
            .into_inner()
            .tasks
            .iter()
            .map(|task| task_key(Some(task)))
            .collect::<Result<Vec<_>, _>>()?;
        let lease_ms =
            u64::try_from(self.broker.config().lease_timeout.as_millis()).unwrap_or(u64::MAX);
        let (granted, rejected) = self.broker.accept(&agent, &tasks).await?;
        let leases = granted
            .into_iter()
            .map(|lease| v1::Lease {
                lease_id: lease.lease_id,
                task: Some(TaskRef {
                    workload_id: lease.workload.id.clone(),
                    index: lease.index,
                }),
                module_sha256: lease.workload.module_sha256.clone(),
                limits: Some(limits_to_wire(&lease.workload.limits)),
                input: lease.input,
                seed: lease.seed,
                deadline_unix_ms: lease.deadline_ms,
                lease_ms,
            })
            .collect();
        let rejected = rejected
            .into_iter()
            .map(|(workload_id, index)| TaskRef { workload_id, index })
            .collect();
        Ok(Response::new(v1::AcceptOffersResponse { leases, rejected }))
    }

    type FetchModuleStream = Pin<Box<dyn Stream<Item = Result<v1::ModuleChunk, Status>> + Send>>;

    #[tracing::instrument(name = "FetchModule", skip_all, fields(agent = tracing::field::Empty, module = %request.get_ref().sha256))]
    async fn fetch_module(
        &self,
        request: Request<v1::FetchModuleRequest>,
    ) -> Result<Response<Self::FetchModuleStream>, Status> {
        let agent = self.agent(&request).await?;
        let sha256 = parse_sha256(&request.get_ref().sha256, "sha256")?.to_hex();
        let mut conn = self.broker.store().conn().await?;
        if !leases::agent_may_fetch(&mut conn, &agent, &sha256).await? {
            return Err(Status::permission_denied(format!(
                "module {sha256} is not the module of a task this agent leases"
            )));
        }
        let bytes = modules::get(&mut conn, &sha256)
            .await?
            .ok_or_else(|| Status::not_found(format!("module {sha256} not found")))?;
        let total_size = bytes.len() as u64;
        let chunks: Vec<Result<v1::ModuleChunk, Status>> = bytes
            .chunks(MODULE_CHUNK_BYTES)
            .enumerate()
            .map(|(i, chunk)| {
                Ok(v1::ModuleChunk {
                    data: chunk.to_vec(),
                    total_size: if i == 0 { total_size } else { 0 },
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    #[tracing::instrument(name = "ExtendLease", skip_all, fields(agent = tracing::field::Empty, lease = %request.get_ref().lease_id))]
    async fn extend_lease(
        &self,
        request: Request<v1::ExtendLeaseRequest>,
    ) -> Result<Response<v1::ExtendLeaseResponse>, Status> {
        let agent = self.agent(&request).await?;
        let deadline_unix_ms = self
            .broker
            .extend(&agent, &request.get_ref().lease_id)
            .await?;
        Ok(Response::new(v1::ExtendLeaseResponse { deadline_unix_ms }))
    }

    #[tracing::instrument(name = "ReportResult", skip_all, fields(agent = tracing::field::Empty, lease = %request.get_ref().lease_id))]
    async fn report_result(
        &self,
        request: Request<v1::ReportResultRequest>,
    ) -> Result<Response<v1::ReportResultResponse>, Status> {
        let agent = self.agent(&request).await?;
        let report = incoming_report(request.into_inner())?;
        let counted = self.broker.report(&agent, report).await?;
        Ok(Response::new(v1::ReportResultResponse { counted }))
    }

    #[tracing::instrument(name = "ReportResults", skip_all, fields(agent = tracing::field::Empty, reports = request.get_ref().reports.len(), capacity = request.get_ref().work.as_ref().map(|work| work.capacity)))]
    async fn report_results(
        &self,
        request: Request<v1::ReportResultsRequest>,
    ) -> Result<Response<v1::ReportResultsResponse>, Status> {
        let agent = self.agent(&request).await?;
        let v1::ReportResultsRequest { reports, work } = request.into_inner();
        if reports.len() > MAX_REPORTS_PER_CALL {
            return Err(Status::invalid_argument(format!(
                "{} reports in one call; at most {MAX_REPORTS_PER_CALL}",
                reports.len()
            )));
        }
        // One call of the group commit for all of them; a report that
        // cannot be read is refused alone.
        let mut readable = Vec::with_capacity(reports.len());
        let slots: Vec<Result<(), Status>> = reports
            .into_iter()
            .map(|report| incoming_report(report).map(|report| readable.push(report)))
            .collect();
        let answered = if readable.is_empty() {
            Vec::new()
        } else {
            self.broker.report_all(&agent, readable).await?
        };
        let mut answered = answered.into_iter();
        let outcomes = slots
            .into_iter()
            .map(|slot| {
                let outcome = slot.and_then(|()| match answered.next() {
                    Some(answer) => answer.map_err(Status::from),
                    None => Err(Status::internal("a report went unanswered")),
                });
                match outcome {
                    Ok(counted) => v1::ReportOutcome {
                        counted,
                        code: Code::Ok as i32,
                        message: String::new(),
                    },
                    Err(status) => v1::ReportOutcome {
                        counted: false,
                        code: status.code() as i32,
                        message: status.message().to_owned(),
                    },
                }
            })
            .collect();
        // Asked after the reports are stored, so the slots they freed, and
        // the tasks they may have made ready (another replica), count.
        let work = match work {
            Some(work) => Some(self.answer_work(&agent, &work, false).await?),
            None => None,
        };
        Ok(Response::new(v1::ReportResultsResponse { outcomes, work }))
    }

    #[tracing::instrument(name = "ReleaseLease", skip_all, fields(agent = tracing::field::Empty, lease = %request.get_ref().lease_id))]
    async fn release_lease(
        &self,
        request: Request<v1::ReleaseLeaseRequest>,
    ) -> Result<Response<v1::ReleaseLeaseResponse>, Status> {
        let agent = self.agent_of_any_version(&request).await?;
        let r = request.into_inner();
        self.broker.release(&agent, &r.lease_id, &r.reason).await?;
        Ok(Response::new(v1::ReleaseLeaseResponse {}))
    }

    #[tracing::instrument(name = "GetEarnings", skip_all, fields(agent = tracing::field::Empty))]
    async fn get_earnings(
        &self,
        request: Request<v1::EarningsRequest>,
    ) -> Result<Response<v1::Earnings>, Status> {
        let agent = self.agent_of_any_version(&request).await?;
        let earnings = self.broker.earnings(&agent).await?;
        Ok(Response::new(v1::Earnings {
            agent_id: agent,
            balance_micro: earnings.balance,
            results_valid: earnings.record.valid,
            results_invalid: earnings.record.invalid,
            reputation: earnings.record.reputation(),
            trusted: earnings.trusted,
            recent: earnings
                .recent
                .into_iter()
                .rev()
                .map(ledger_entry)
                .collect(),
        }))
    }

    type FetchAgentBuildStream =
        Pin<Box<dyn Stream<Item = Result<v1::AgentBuildChunk, Status>> + Send>>;

    #[tracing::instrument(name = "FetchAgentBuild", skip_all, fields(os = %request.get_ref().os, arch = %request.get_ref().arch))]
    async fn fetch_agent_build(
        &self,
        request: Request<v1::FetchAgentBuildRequest>,
    ) -> Result<Response<Self::FetchAgentBuildStream>, Status> {
        let r = request.into_inner();
        let builds = self.broker.agent_builds();
        let build = builds.newest(&r.os, &r.arch).ok_or_else(|| {
            let hosted: Vec<String> = builds
                .newest_per_platform()
                .keys()
                .map(|(os, arch)| format!("{os}-{arch}"))
                .collect();
            Status::not_found(if hosted.is_empty() {
                "this broker hosts no agent builds".to_owned()
            } else {
                format!(
                    "this broker hosts no agent build for {:.32}-{:.32} (it has {})",
                    r.os,
                    r.arch,
                    hosted.join(", ")
                )
            })
        })?;
        let file = build.open().await?;
        tracing::info!(
            file = %build.file,
            from = %r.current_version.chars().take(64).collect::<String>(),
            "agent build sent"
        );
        let first = v1::AgentBuildChunk {
            build: Some(agent_build(build)),
            data: Vec::new(),
        };
        let data = agent_dist::chunks(file, build.size).map(|chunk| {
            chunk
                .map(|data| v1::AgentBuildChunk { build: None, data })
                .map_err(|error| Status::internal(format!("cannot read the agent build: {error}")))
        });
        Ok(Response::new(Box::pin(
            tokio_stream::once(Ok(first)).chain(data),
        )))
    }
}

/// A catalogue entry on the wire.
fn agent_build(build: &AgentBuild) -> v1::AgentBuild {
    v1::AgentBuild {
        file: build.file.clone(),
        version: build.name.version.to_string(),
        os: build.name.os.clone(),
        arch: build.name.arch.clone(),
        sha256: build.sha256.clone(),
        size: build.size,
    }
}

/// A report as the broker takes it, from the wire.
fn incoming_report(r: v1::ReportResultRequest) -> Result<IncomingReport, Status> {
    let status =
        status_from_wire(r.status.as_ref()).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let (usage, metering_version) =
        usage_from_wire(r.usage.as_ref()).map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok(IncomingReport {
        lease_id: r.lease_id,
        task: r.task.map(|task| (task.workload_id, task.index)),
        status,
        output: r.output,
        stderr: r.stderr,
        fuel_consumed: usage.fuel_consumed,
        peak_memory: usage.peak_memory_bytes,
        wall_time_ms: u64::try_from(usage.wall_time.as_millis()).unwrap_or(u64::MAX),
        metering_version,
    })
}
