//! The dashboard's JSON API, read-only, each call behind an
//! `Authorization: Bearer` issuer or admin token:
//!
//! - `GET /api/me`: who the token is.
//! - `GET /api/workloads`: workloads with progress and bill (the issuer's
//!   own; all for an admin).
//! - `GET /api/workloads/{id}`: one workload and its end result.
//! - `GET /api/workloads/{id}/tasks?from=N&limit=M`: its tasks with their
//!   runs (agents, attempts, durations, fuel, pay).
//! - `GET /api/agents`: agents with reputation, speed and earnings (for an
//!   issuer: those that ran its tasks, without owner and address).
//! - `GET /api/ledger`: an issuer's balance and statement; for an admin,
//!   every account and the ledger's totals.
//! - `GET /api/throughput?minutes=N`: tasks finished per time bucket.
//!
//! The messages are the gRPC API's own (`wasmgrid.v1`), as JSON, built by
//! the same functions, so the two cannot tell different stories.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use wasmgrid_proto::v1;

use crate::core::{Broker, Caller};
use crate::error::BrokerError;
use crate::ids::now_ms;
use crate::service::admin::agent_infos;
use crate::service::caller::bearer_of;
use crate::service::convert::{accounts_list, ledger_entry, workload_status};
use crate::service::issuer::task_infos;
use crate::store::dashboard_views;
use crate::store::ledger::issuer_account;
use crate::store::workloads::{self, WorkloadRow};

/// Most tasks one page of the task table carries.
const MAX_TASK_PAGE: usize = 1000;
/// Ledger lines shown to an issuer.
const STATEMENT_LINES: u32 = 200;
/// Bytes of an end result shown as text.
const MAX_RESULT_TEXT: usize = 64 * 1024;
/// Longest throughput window, in minutes.
const MAX_WINDOW_MINUTES: u32 = 24 * 60;
/// Buckets the throughput window is cut into.
const THROUGHPUT_BUCKETS: i64 = 60;

type BrokerState = State<Arc<Broker>>;

pub(super) fn routes() -> Router<Arc<Broker>> {
    Router::new()
        .route("/api/me", get(me))
        .route("/api/workloads", get(list_workloads))
        .route("/api/workloads/{id}", get(one_workload))
        .route("/api/workloads/{id}/tasks", get(tasks))
        .route("/api/agents", get(agents))
        .route("/api/ledger", get(ledger))
        .route("/api/throughput", get(throughput))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such page") })
}

/// An error as the API returns it: an HTTP status and `{"error": "..."}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl From<BrokerError> for ApiError {
    fn from(error: BrokerError) -> Self {
        let status = match &error {
            BrokerError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            BrokerError::NotFound(_) => StatusCode::NOT_FOUND,
            BrokerError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            BrokerError::PermissionDenied(_) => StatusCode::FORBIDDEN,
            BrokerError::FailedPrecondition(_) => StatusCode::CONFLICT,
            BrokerError::Store(_) | BrokerError::Writer(_) | BrokerError::Commit(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(%error, "dashboard request failed");
        }
        ApiError::new(status, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body {
            error: String,
        }
        let mut response = (
            self.status,
            Json(Body {
                error: self.message,
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// The caller behind the request's bearer token.
async fn caller(broker: &Broker, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_of)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing authorization: Bearer <issuer or admin token>",
            )
        })?;
    Ok(broker.caller(token).await?)
}

/// The issuer whose data the caller sees: `None` for an admin (all).
fn seen_issuer(caller: &Caller) -> Option<&str> {
    match caller {
        Caller::Issuer(issuer) => Some(issuer),
        Caller::Admin => None,
    }
}

/// The workload `id`, when the caller may see it.
async fn visible_workload(
    broker: &Broker,
    caller: &Caller,
    id: &str,
) -> Result<WorkloadRow, ApiError> {
    let mut conn = broker.store().conn().await?;
    let workload = workloads::require(&mut conn, id).await?;
    caller.check_owns(id, &workload.issuer)?;
    Ok(workload)
}

#[derive(Serialize)]
struct Me {
    /// `issuer` or `admin`.
    role: &'static str,
    /// The issuer's name; empty for an admin.
    issuer: String,
}

async fn me(State(broker): BrokerState, headers: HeaderMap) -> ApiResult<Me> {
    Ok(Json(match caller(&broker, &headers).await? {
        Caller::Issuer(issuer) => Me {
            role: "issuer",
            issuer,
        },
        Caller::Admin => Me {
            role: "admin",
            issuer: String::new(),
        },
    }))
}

async fn list_workloads(
    State(broker): BrokerState,
    headers: HeaderMap,
) -> ApiResult<Vec<v1::WorkloadStatus>> {
    let caller = caller(&broker, &headers).await?;
    let mut conn = broker.store().conn().await?;
    let rows = dashboard_views::workloads_of(&mut conn, seen_issuer(&caller)).await?;
    let mut statuses = Vec::with_capacity(rows.len());
    for row in &rows {
        statuses.push(workload_status(&mut conn, row).await?);
    }
    Ok(Json(statuses))
}

/// A workload and, once it has ended, its end result.
#[derive(Serialize)]
struct WorkloadView {
    status: v1::WorkloadStatus,
    end_result: Option<EndResultView>,
}

/// An end result as a page can show it.
#[derive(Serialize)]
struct EndResultView {
    /// Whether a reducer made it (else it is the first task's output; the
    /// rest are fetched with `wasmgrid results`).
    reduced: bool,
    size: usize,
    /// The output as text, when it is UTF-8 (cut at 64 KiB).
    text: Option<String>,
    /// Its first 64 bytes in hex, when it is not text.
    hex_prefix: Option<String>,
}

impl EndResultView {
    fn of(reduced: bool, output: &[u8]) -> Self {
        let text = std::str::from_utf8(output).ok().map(|text| {
            let mut end = text.len().min(MAX_RESULT_TEXT);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text[..end].to_owned()
        });
        EndResultView {
            reduced,
            size: output.len(),
            hex_prefix: text
                .is_none()
                .then(|| hex::encode(&output[..output.len().min(64)])),
            text,
        }
    }
}

async fn one_workload(
    State(broker): BrokerState,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<WorkloadView> {
    let caller = caller(&broker, &headers).await?;
    let workload = visible_workload(&broker, &caller, &id).await?;
    let mut conn = broker.store().conn().await?;
    let status = workload_status(&mut conn, &workload).await?;
    let end_result = if !workload.state.is_final() {
        None
    } else if let Some(reduced) = workloads::result(&mut conn, &id).await? {
        Some(EndResultView::of(true, &reduced))
    } else {
        let first = crate::store::tasks::results_page(&mut conn, &id, 0, 1).await?;
        first
            .first()
            .map(|row| EndResultView::of(false, &row.output))
    };
    Ok(Json(WorkloadView { status, end_result }))
}

#[derive(Deserialize)]
struct PageQuery {
    #[serde(default)]
    from: usize,
    #[serde(default = "default_page")]
    limit: usize,
}

fn default_page() -> usize {
    100
}

#[derive(Serialize)]
struct TaskPage {
    /// Tasks in the workload.
    total: usize,
    from: usize,
    tasks: Vec<v1::TaskInfo>,
}

async fn tasks(
    State(broker): BrokerState,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> ApiResult<TaskPage> {
    let caller = caller(&broker, &headers).await?;
    let workload = visible_workload(&broker, &caller, &id).await?;
    let mut conn = broker.store().conn().await?;
    let all = task_infos(&mut conn, &workload).await?;
    let total = all.len();
    let tasks = all
        .into_iter()
        .skip(page.from)
        .take(page.limit.min(MAX_TASK_PAGE))
        .collect();
    Ok(Json(TaskPage {
        total,
        from: page.from,
        tasks,
    }))
}

async fn agents(State(broker): BrokerState, headers: HeaderMap) -> ApiResult<Vec<v1::AgentInfo>> {
    let caller = caller(&broker, &headers).await?;
    let mut conn = broker.store().conn().await?;
    let all = agent_infos(&broker, &mut conn).await?;
    let Some(issuer) = seen_issuer(&caller) else {
        return Ok(Json(all));
    };
    // An issuer sees the machines that worked for it, not who runs them or
    // where they are.
    let worked: HashSet<String> = dashboard_views::agents_working_for(&mut conn, issuer)
        .await?
        .into_iter()
        .collect();
    Ok(Json(
        all.into_iter()
            .filter(|agent| worked.contains(&agent.agent_id))
            .map(|agent| v1::AgentInfo {
                owner: String::new(),
                address: String::new(),
                ..agent
            })
            .collect(),
    ))
}

/// An issuer's account, or (for an admin) every account.
#[derive(Serialize)]
#[serde(tag = "view", rename_all = "snake_case")]
enum LedgerView {
    Issuer {
        balance: v1::Balance,
        /// The latest postings, newest first.
        entries: Vec<v1::LedgerEntry>,
    },
    Admin {
        accounts: v1::ListAccountsResponse,
    },
}

async fn ledger(State(broker): BrokerState, headers: HeaderMap) -> ApiResult<LedgerView> {
    let caller = caller(&broker, &headers).await?;
    Ok(Json(match caller {
        Caller::Issuer(issuer) => {
            let (balance, escrowed) = broker.balance(&issuer).await?;
            let (entries, _) = broker.statement(&issuer, None, STATEMENT_LINES).await?;
            LedgerView::Issuer {
                balance: v1::Balance {
                    account: issuer_account(&issuer),
                    balance_micro: balance,
                    escrowed_micro: escrowed,
                },
                entries: entries.into_iter().map(ledger_entry).collect(),
            }
        }
        Caller::Admin => LedgerView::Admin {
            accounts: accounts_list(broker.ledger_totals().await?),
        },
    }))
}

#[derive(Deserialize)]
struct WindowQuery {
    #[serde(default = "default_window")]
    minutes: u32,
}

fn default_window() -> u32 {
    30
}

/// Tasks finished per bucket over a window ending now.
#[derive(Serialize)]
struct Throughput {
    since_unix_ms: i64,
    now_unix_ms: i64,
    bucket_ms: i64,
    /// `[bucket start ms, tasks finished]`, only buckets with completions.
    buckets: Vec<(i64, u64)>,
}

async fn throughput(
    State(broker): BrokerState,
    headers: HeaderMap,
    Query(window): Query<WindowQuery>,
) -> ApiResult<Throughput> {
    let caller = caller(&broker, &headers).await?;
    let minutes = window.minutes.clamp(1, MAX_WINDOW_MINUTES);
    let now = now_ms();
    let window_ms = i64::from(minutes) * 60_000;
    let bucket_ms = window_ms / THROUGHPUT_BUCKETS;
    let since = (now - window_ms) / bucket_ms * bucket_ms;
    let mut conn = broker.store().conn().await?;
    let buckets =
        dashboard_views::completions(&mut conn, seen_issuer(&caller), since, bucket_ms).await?;
    Ok(Json(Throughput {
        since_unix_ms: since,
        now_unix_ms: now,
        bucket_ms,
        buckets,
    }))
}
