//! `IssuerService`: submit, follow and collect workloads.

use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use wasmgrid_proto::v1::issuer_service_server::IssuerService;
use wasmgrid_proto::v1::{self, result_item};
use wasmgrid_proto::{status_to_wire, usage_to_wire};
use wasmgrid_runtime::{METERING_VERSION, Usage};

use crate::core::Broker;
use crate::error::BrokerResult;
use crate::service::caller::caller;
use crate::service::convert::ledger_entry;
use crate::service::convert::{workload_state, workload_status};
use crate::service::submit_stream;
use crate::store::leases::LeaseState;
use crate::store::leases::RunVerdict;
use crate::store::ledger::issuer_account;
use crate::store::workloads::WorkloadRow;
use crate::store::{leases, tasks, workloads};

/// Task results read from the store per page when streaming results.
const RESULTS_PAGE: u32 = 256;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The issuer service over a broker.
#[derive(Debug, Clone)]
pub struct IssuerApi {
    broker: Arc<Broker>,
}

impl IssuerApi {
    pub fn new(broker: Arc<Broker>) -> Self {
        IssuerApi { broker }
    }

    async fn status(&self, workload_id: &str) -> BrokerResult<v1::WorkloadStatus> {
        let mut conn = self.broker.store().conn().await?;
        let workload = workloads::require(&mut conn, workload_id).await?;
        workload_status(&mut conn, &workload).await
    }

    /// The workload `workload_id`, when the caller may see and act on it:
    /// the issuer that owns it, or an admin.
    async fn authorize<T>(
        &self,
        request: &Request<T>,
        workload_id: &str,
    ) -> Result<WorkloadRow, Status> {
        let caller = caller(&self.broker, request).await?;
        let mut conn = self.broker.store().conn().await?;
        let workload = workloads::require(&mut conn, workload_id).await?;
        caller.check_owns(workload_id, &workload.issuer)?;
        Ok(workload)
    }
}

#[tonic::async_trait]
impl IssuerService for IssuerApi {
    #[tracing::instrument(name = "SubmitWorkload", skip_all, fields(caller = tracing::field::Empty, workload = tracing::field::Empty))]
    async fn submit_workload(
        &self,
        request: Request<Streaming<v1::SubmitWorkloadRequest>>,
    ) -> Result<Response<v1::SubmitWorkloadResponse>, Status> {
        let caller = caller(&self.broker, &request).await?;
        tracing::Span::current().record("caller", tracing::field::debug(&caller));
        let mut stream = request.into_inner();
        let submission = submit_stream::receive(&mut stream, self.broker.config(), &caller).await?;
        let (workload_id, task_count) = self.broker.submit(submission).await?;
        tracing::Span::current().record("workload", workload_id.as_str());
        Ok(Response::new(v1::SubmitWorkloadResponse {
            workload_id,
            task_count,
        }))
    }

    #[tracing::instrument(name = "GetStatus", skip_all, fields(workload = %request.get_ref().workload_id))]
    async fn get_status(
        &self,
        request: Request<v1::WorkloadRequest>,
    ) -> Result<Response<v1::WorkloadStatus>, Status> {
        let workload = self
            .authorize(&request, &request.get_ref().workload_id)
            .await?;
        let mut conn = self.broker.store().conn().await?;
        Ok(Response::new(workload_status(&mut conn, &workload).await?))
    }

    type WatchProgressStream = BoxStream<v1::WorkloadStatus>;

    #[tracing::instrument(name = "WatchProgress", skip_all, fields(workload = %request.get_ref().workload_id))]
    async fn watch_progress(
        &self,
        request: Request<v1::WorkloadRequest>,
    ) -> Result<Response<Self::WatchProgressStream>, Status> {
        let workload = self
            .authorize(&request, &request.get_ref().workload_id)
            .await?;
        let workload_id = request.into_inner().workload_id;
        // Subscribed before the first read: a change committed after it
        // cannot be missed.
        let mut changes = self.broker.subscribe();
        let mut endings = self.broker.subscribe_endings();
        let mut stopping = self.broker.stopping();
        let first = {
            let mut conn = self.broker.store().conn().await?;
            workload_status(&mut conn, &workload).await?
        };
        let (sender, receiver) = mpsc::channel(4);
        let api = self.clone();
        let interval = self.broker.config().progress_interval;
        tokio::spawn(async move {
            let mut last = first;
            if sender.send(Ok(last.clone())).await.is_err() {
                return;
            }
            while last.state == v1::WorkloadState::Running as i32 {
                tokio::select! {
                    _ = changes.changed() => {}
                    () = tokio::time::sleep(interval.saturating_mul(10)) => {}
                    _ = stopping.changed() => {
                        let _ = sender.send(Err(Status::unavailable("the broker is shutting down"))).await;
                        return;
                    }
                }
                // Coalesce bursts of changes into one update per interval;
                // a workload's end cuts the wait short, so that an issuer
                // waiting for it learns of it at once (this one's, or
                // another's, which costs one read too early).
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    _ = endings.changed() => {}
                }
                let status = match api.status(&workload_id).await {
                    Ok(status) => status,
                    Err(error) => {
                        let _ = sender.send(Err(error.into())).await;
                        return;
                    }
                };
                if status != last {
                    if sender.send(Ok(status.clone())).await.is_err() {
                        return;
                    }
                    last = status;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    type FetchResultsStream = BoxStream<v1::ResultItem>;

    #[tracing::instrument(name = "FetchResults", skip_all, fields(workload = %request.get_ref().workload_id))]
    async fn fetch_results(
        &self,
        request: Request<v1::WorkloadRequest>,
    ) -> Result<Response<Self::FetchResultsStream>, Status> {
        let workload = self
            .authorize(&request, &request.get_ref().workload_id)
            .await?;
        let workload_id = request.into_inner().workload_id;
        let mut conn = self.broker.store().conn().await?;
        if !workload.state.is_final() {
            let counts = workloads::counts(&mut conn, &workload_id).await?;
            return Err(Status::failed_precondition(format!(
                "workload {workload_id} is still running ({} of {} tasks done)",
                counts.done, workload.task_count
            )));
        }
        drop(conn);
        let (sender, receiver) = mpsc::channel(16);
        let broker = Arc::clone(&self.broker);
        tokio::spawn(async move {
            if let Err(error) = stream_results(&broker, &workload_id, &sender).await {
                let _ = sender.send(Err(error.into())).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    #[tracing::instrument(name = "Cancel", skip_all, fields(workload = %request.get_ref().workload_id))]
    async fn cancel(
        &self,
        request: Request<v1::WorkloadRequest>,
    ) -> Result<Response<v1::CancelResponse>, Status> {
        self.authorize(&request, &request.get_ref().workload_id)
            .await?;
        let state = self.broker.cancel(&request.get_ref().workload_id).await?;
        Ok(Response::new(v1::CancelResponse {
            state: workload_state(state) as i32,
        }))
    }

    #[tracing::instrument(name = "ListTasks", skip_all, fields(workload = %request.get_ref().workload_id))]
    async fn list_tasks(
        &self,
        request: Request<v1::WorkloadRequest>,
    ) -> Result<Response<v1::ListTasksResponse>, Status> {
        let workload = self
            .authorize(&request, &request.get_ref().workload_id)
            .await?;
        let mut conn = self.broker.store().conn().await?;
        let infos = task_infos(&mut conn, &workload).await?;
        Ok(Response::new(v1::ListTasksResponse { tasks: infos }))
    }

    #[tracing::instrument(name = "GetBalance", skip_all, fields(issuer = %request.get_ref().issuer))]
    async fn get_balance(
        &self,
        request: Request<v1::BalanceRequest>,
    ) -> Result<Response<v1::Balance>, Status> {
        let issuer = caller(&self.broker, &request)
            .await?
            .acting_for(&request.get_ref().issuer)?;
        let (balance, escrowed) = self.broker.balance(&issuer).await?;
        Ok(Response::new(v1::Balance {
            account: issuer_account(&issuer),
            balance_micro: balance,
            escrowed_micro: escrowed,
        }))
    }

    #[tracing::instrument(name = "GetLedger", skip_all, fields(issuer = %request.get_ref().issuer, workload = %request.get_ref().workload_id))]
    async fn get_ledger(
        &self,
        request: Request<v1::LedgerRequest>,
    ) -> Result<Response<v1::LedgerResponse>, Status> {
        let issuer = caller(&self.broker, &request)
            .await?
            .acting_for(&request.get_ref().issuer)?;
        let r = request.into_inner();
        let workload_id = (!r.workload_id.is_empty()).then_some(r.workload_id.as_str());
        let (entries, balance) = self.broker.statement(&issuer, workload_id, r.limit).await?;
        Ok(Response::new(v1::LedgerResponse {
            entries: entries.into_iter().map(ledger_entry).collect(),
            balance_micro: balance,
        }))
    }
}

/// Every task of `workload` with its runs: state, attempts, agents,
/// durations, fuel and pay.
pub(crate) async fn task_infos(
    conn: &mut sqlx::SqliteConnection,
    workload: &WorkloadRow,
) -> BrokerResult<Vec<v1::TaskInfo>> {
    let states = tasks::states(conn, &workload.id).await?;
    let all_leases = leases::of_workload(conn, &workload.id).await?;
    let mut infos: Vec<v1::TaskInfo> = states
        .into_iter()
        .map(|(index, state)| v1::TaskInfo {
            index,
            state: task_state(&state) as i32,
            attempts: 0,
            history: Vec::new(),
            quorum: workload.quorum,
            fuel_consumed: 0,
            paid_micro: 0,
        })
        .collect();
    for lease in all_leases {
        let Some(info) = infos.get_mut(lease.index as usize) else {
            continue;
        };
        info.attempts += 1;
        if lease.state == LeaseState::Active && info.state == v1::TaskState::Queued as i32 {
            info.state = v1::TaskState::Leased as i32;
        }
        if lease.verdict == Some(RunVerdict::Agreed) {
            info.fuel_consumed = lease.fuel_consumed;
            if lease.solo {
                info.quorum = 1;
            }
        }
        info.paid_micro += lease.paid_micro;
        info.history.push(v1::TaskAttempt {
            lease_id: lease.id,
            agent_id: lease.agent_id,
            state: lease.state.as_str().to_owned(),
            started_unix_ms: lease.started_ms,
            ended_unix_ms: lease.ended_ms.unwrap_or(0),
            status: lease.status.as_ref().map(status_to_wire),
            fuel_consumed: lease.fuel_consumed,
            wall_time_ms: lease.wall_time_ms,
            paid_micro: lease.paid_micro,
            verdict: lease
                .verdict
                .map(|verdict| verdict.as_str().to_owned())
                .unwrap_or_default(),
        });
    }
    Ok(infos)
}

fn task_state(state: &str) -> v1::TaskState {
    match state {
        "pending" => v1::TaskState::Queued,
        "done" => v1::TaskState::Done,
        "failed" => v1::TaskState::Failed,
        "cancelled" => v1::TaskState::Cancelled,
        _ => v1::TaskState::Unspecified,
    }
}

async fn stream_results(
    broker: &Broker,
    workload_id: &str,
    sender: &mpsc::Sender<Result<v1::ResultItem, Status>>,
) -> BrokerResult<()> {
    let mut from = 0;
    loop {
        let mut conn = broker.store().conn().await?;
        let page = tasks::results_page(&mut conn, workload_id, from, RESULTS_PAGE).await?;
        drop(conn);
        let Some(last) = page.last() else { break };
        from = last.index + 1;
        for row in page {
            let usage = Usage {
                fuel_consumed: row.fuel_consumed,
                peak_memory_bytes: row.peak_memory,
                wall_time: std::time::Duration::from_millis(row.wall_time_ms),
                output_bytes: row.output.len() as u64,
                metering_version: METERING_VERSION,
            };
            let status = row.status.as_ref().map(status_to_wire).or_else(|| {
                // A task that never ran to a status (cancelled, or failed on
                // expiries only) reports its reason as a trap message.
                Some(v1::TaskStatus {
                    kind: v1::TaskStatusKind::Trap as i32,
                    exit_code: 0,
                    message: row.error.clone().unwrap_or_else(|| row.state.clone()),
                })
            });
            let item = v1::ResultItem {
                item: Some(result_item::Item::Task(v1::TaskResult {
                    index: row.index,
                    status,
                    output: row.output,
                    usage: Some(usage_to_wire(&usage)),
                })),
            };
            if sender.send(Ok(item)).await.is_err() {
                return Ok(());
            }
        }
    }
    let mut conn = broker.store().conn().await?;
    let result = workloads::result(&mut conn, workload_id).await?;
    let end = v1::EndResult {
        reduced: result.is_some(),
        output: result.unwrap_or_default(),
    };
    let _ = sender
        .send(Ok(v1::ResultItem {
            item: Some(result_item::Item::End(end)),
        }))
        .await;
    Ok(())
}
