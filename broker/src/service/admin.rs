//! `AdminService`: the operator's lists of agents, workloads and accounts,
//! and grants of credits; every call needs an admin token.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use wasmgrid_proto::v1;
use wasmgrid_proto::v1::admin_service_server::AdminService;

use crate::core::Broker;
use crate::error::BrokerResult;
use crate::service::caller::caller;
use crate::service::convert::{accounts_list, ledger_entry, workload_status};
use crate::store::{agents, workloads};

/// The admin service over a broker.
#[derive(Debug, Clone)]
pub struct AdminApi {
    broker: Arc<Broker>,
}

impl AdminApi {
    pub fn new(broker: Arc<Broker>) -> Self {
        AdminApi { broker }
    }

    async fn require_admin<T>(&self, request: &Request<T>) -> Result<(), Status> {
        Ok(caller(&self.broker, request).await?.require_admin()?)
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    #[tracing::instrument(name = "ListAgents", skip_all)]
    async fn list_agents(
        &self,
        request: Request<v1::ListAgentsRequest>,
    ) -> Result<Response<v1::ListAgentsResponse>, Status> {
        self.require_admin(&request).await?;
        let mut conn = self.broker.store().conn().await?;
        let agents = agent_infos(&self.broker, &mut conn).await?;
        Ok(Response::new(v1::ListAgentsResponse { agents }))
    }

    #[tracing::instrument(name = "ListWorkloads", skip_all)]
    async fn list_workloads(
        &self,
        request: Request<v1::ListWorkloadsRequest>,
    ) -> Result<Response<v1::ListWorkloadsResponse>, Status> {
        self.require_admin(&request).await?;
        let mut conn = self.broker.store().conn().await?;
        let mut statuses = Vec::new();
        for workload in workloads::list(&mut conn, false).await? {
            statuses.push(workload_status(&mut conn, &workload).await?);
        }
        Ok(Response::new(v1::ListWorkloadsResponse {
            workloads: statuses,
        }))
    }

    #[tracing::instrument(name = "GrantCredits", skip_all, fields(issuer = %request.get_ref().issuer))]
    async fn grant_credits(
        &self,
        request: Request<v1::GrantCreditsRequest>,
    ) -> Result<Response<v1::GrantCreditsResponse>, Status> {
        self.require_admin(&request).await?;
        let r = request.into_inner();
        let (balance, entry) = self
            .broker
            .grant(&r.issuer, r.amount_micro, &r.memo)
            .await?;
        Ok(Response::new(v1::GrantCreditsResponse {
            balance_micro: balance,
            entry: Some(ledger_entry(entry)),
        }))
    }

    #[tracing::instrument(name = "ListAccounts", skip_all)]
    async fn list_accounts(
        &self,
        request: Request<v1::ListAccountsRequest>,
    ) -> Result<Response<v1::ListAccountsResponse>, Status> {
        self.require_admin(&request).await?;
        let totals = self.broker.ledger_totals().await?;
        Ok(Response::new(accounts_list(totals)))
    }
}

/// Every agent with its record, speed and earnings.
pub(crate) async fn agent_infos(
    broker: &Broker,
    conn: &mut sqlx::SqliteConnection,
) -> BrokerResult<Vec<v1::AgentInfo>> {
    Ok(agents::list_with_stats(conn)
        .await?
        .into_iter()
        .map(|stats| v1::AgentInfo {
            owner: stats.agent.owner,
            address: stats.agent.address,
            results_valid: stats.record.valid,
            results_invalid: stats.record.invalid,
            reputation: stats.record.reputation(),
            trusted: broker.trusts(&stats.record),
            earned_micro: stats.earned_micro,
            fuel_per_second: if stats.busy_ms > 0 {
                stats.fuel_consumed as f64 * 1000.0 / stats.busy_ms as f64
            } else {
                0.0
            },
            agent_id: stats.agent.id,
            name: stats.agent.name,
            os: stats.agent.os,
            arch: stats.agent.arch,
            cores: stats.agent.cores,
            memory_bytes: stats.agent.memory_bytes,
            slots: stats.agent.slots,
            registered_unix_ms: stats.agent.registered_ms,
            last_seen_unix_ms: stats.agent.last_seen_ms,
            tasks_ok: stats.tasks_ok,
            tasks_failed: stats.tasks_failed,
            fuel_consumed: stats.fuel_consumed,
            busy_ms: stats.busy_ms,
            version: stats.agent.version,
        })
        .collect())
}
