//! Prometheus metrics, in the OpenMetrics text format: what the store holds
//! (tasks and workloads by state, task events by kind — dispatches,
//! reports, expiries, releases, revocations —, active and disagreeing runs,
//! agents registered and connected, ledger totals), read at each scrape;
//! how long writers wait for the store and how the group commit batches;
//! requests for work, alone or with reports.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::core::Broker;
use crate::error::{BrokerError, BrokerResult};
use crate::ids::now_ms;
use crate::store::stats;

/// An agent heard from this recently counts as connected. Agents poll
/// every few hundred milliseconds when idle and heartbeat their leases, and
/// the broker writes `last_seen_ms` every 10 s at most.
const CONNECTED_WITHIN_MS: i64 = 60_000;

type Labelled<M> = Family<Vec<(String, String)>, M>;

fn labelled<M>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    label: &str,
    values: &[(String, u64)],
    set: impl Fn(&M, u64),
) where
    M: Default
        + Clone
        + prometheus_client::metrics::TypedMetric
        + prometheus_client::encoding::EncodeMetric
        + Send
        + Sync
        + std::fmt::Debug
        + 'static,
{
    let family = Labelled::<M>::default();
    for (value, n) in values {
        set(
            &family.get_or_create(&vec![(label.to_owned(), value.clone())]),
            *n,
        );
    }
    registry.register(name, help, family);
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let gauge = Gauge::<i64>::default();
    gauge.set(value);
    registry.register(name, help, gauge);
}

fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The metrics text, read from the store now.
pub async fn render(broker: &Broker) -> BrokerResult<String> {
    let stats = {
        let mut conn = broker.store().conn().await?;
        stats::read(&mut conn, now_ms() - CONNECTED_WITHIN_MS).await?
    };
    let totals = broker.ledger_totals().await?;
    let mut registry = Registry::with_prefix("wasmgrid");
    labelled::<Gauge>(
        &mut registry,
        "tasks",
        "Tasks by state (pending tasks are queued or running)",
        "state",
        &stats.tasks_by_state,
        |gauge, n| {
            gauge.set(as_i64(n));
        },
    );
    labelled::<Gauge>(
        &mut registry,
        "workloads",
        "Workloads by state",
        "state",
        &stats.workloads_by_state,
        |gauge, n| {
            gauge.set(as_i64(n));
        },
    );
    labelled::<Counter>(
        &mut registry,
        "task_events",
        "Task events since the store was made: leased (a dispatch), reported, \
         reported-late, expired, released, revoked, done, failed, cancelled",
        "event",
        &stats.events_by_kind,
        |counter, n| {
            counter.inc_by(n);
        },
    );
    gauge(
        &mut registry,
        "leases_active",
        "Runs leased to agents now",
        as_i64(stats.active_leases),
    );
    let disagreeing = Counter::<u64>::default();
    disagreeing.inc_by(stats.disagreeing_runs);
    registry.register(
        "runs_disagreeing",
        "Runs whose result disagreed with the accepted one (unpaid)",
        disagreeing,
    );
    gauge(
        &mut registry,
        "agents_registered",
        "Agents ever registered",
        as_i64(stats.agents),
    );
    gauge(
        &mut registry,
        "agents_connected",
        "Agents heard from in the last minute",
        as_i64(stats.agents_seen),
    );
    let mut by_kind: Vec<(String, u64)> = Vec::new();
    for account in &totals.accounts {
        if account.kind == "mint" {
            continue;
        }
        let balance = u64::try_from(account.balance).unwrap_or(0);
        match by_kind.iter_mut().find(|(kind, _)| *kind == account.kind) {
            Some((_, sum)) => *sum += balance,
            None => by_kind.push((account.kind.clone(), balance)),
        }
    }
    labelled::<Gauge>(
        &mut registry,
        "credits_held_micro",
        "Micro-credits held, by kind of account (issuer, escrow, agent, broker)",
        "kind",
        &by_kind,
        |gauge, n| {
            gauge.set(as_i64(n));
        },
    );
    gauge(
        &mut registry,
        "credits_granted_micro",
        "Micro-credits ever granted; the held credits always sum to this",
        totals.granted,
    );
    registry.register(
        "store_write_wait_seconds",
        "Time a writing transaction waited for the store's write lock",
        broker.store().write_wait().clone(),
    );
    let asked = broker.work_requests();
    labelled::<Counter>(
        &mut registry,
        "work_requests",
        "Requests for work answered since the broker started: alone (RequestWork) or with \
         reports (ReportResults asking for work in the same call)",
        "asked",
        &[
            ("alone".to_owned(), asked.alone.get()),
            ("with_reports".to_owned(), asked.with_reports.get()),
        ],
        |counter, n| {
            counter.inc_by(n);
        },
    );
    let commits = broker.commit_metrics();
    registry.register(
        "store_group_commit_calls",
        "Agent calls committed together in one transaction (and one fsync, unless they only grant leases) by the group-commit writer",
        commits.batch_calls.clone(),
    );
    registry.register(
        "store_group_commit_seconds",
        "Time the group-commit writer took per batch, from BEGIN until its calls are answered (after the COMMIT and, unless the batch only grants leases, the sync of the WAL)",
        commits.batch_seconds.clone(),
    );
    registry.register(
        "store_group_commit_syncs",
        "Syncs of the WAL by the group-commit writer: one per batch with a call that must be durable before it is answered",
        commits.syncs.clone(),
    );
    let mut text = String::new();
    encode(&mut text, &registry)
        .map_err(|error| BrokerError::FailedPrecondition(format!("metrics: {error}")))?;
    Ok(text)
}
