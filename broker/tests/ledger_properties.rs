//! Property test of the ledger: random sequences of submits, offers,
//! honest, wrong and inflated reports, duplicated reports, timeouts,
//! releases, cancels and broker restarts, against a real broker (library,
//! real SQLite store in a temp dir). After every step: credits are
//! conserved (the only source is the grant), nothing is paid twice, only
//! the runs that made a task's quorum are paid, each exactly fuel × rate,
//! and a finished workload's escrow is closed out exactly.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use sqlx::Row;
use wasmgrid_broker::core::{IncomingReport, NewWorkload};
use wasmgrid_broker::store::agents::AgentRow;
use wasmgrid_broker::{Broker, BrokerConfig};
use wasmgrid_runtime::{Limits, Status};

const ISSUERS: [&str; 2] = ["alice", "bob"];
const AGENTS: usize = 3;
/// Credits granted to each issuer, in micro-credits: enough for some
/// workloads and not for others, so refused submits are exercised too.
const GRANT_MICRO: i64 = 40_000_000;
const FUEL_LIMIT: u64 = 2_000_000_000;

#[derive(Clone, Debug)]
enum Op {
    Submit {
        issuer: usize,
        tasks: u32,
        replicas: u32,
        quorum: u32,
        adaptive: bool,
        /// Pico-credits per fuel: 0 (free), 1000 (1e-9) or 3000.
        rate_pico: u64,
    },
    /// An agent asks for work and accepts its first `take` offers.
    Work {
        agent: usize,
        take: usize,
    },
    /// An agent reports one of its active leases.
    Report {
        agent: usize,
        pick: usize,
        kind: ReportKind,
    },
    /// An agent sends one of its earlier reports again.
    Duplicate {
        agent: usize,
        pick: usize,
    },
    Release {
        agent: usize,
        pick: usize,
    },
    /// Every active lease passes its deadline.
    Timeout,
    Cancel {
        pick: usize,
    },
    Restart,
}

#[derive(Clone, Copy, Debug)]
enum ReportKind {
    Honest,
    WrongOutput,
    InflatedFuel,
    Trap,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..ISSUERS.len(), 1u32..4, 1u32..4, 0u32..4, any::<bool>(), prop::sample::select(vec![0u64, 1000, 3000]))
            .prop_map(|(issuer, tasks, replicas, quorum, adaptive, rate_pico)| Op::Submit {
                issuer,
                tasks,
                replicas,
                quorum: quorum.min(replicas),
                adaptive,
                rate_pico,
            }),
        5 => (0..AGENTS, 1usize..3).prop_map(|(agent, take)| Op::Work { agent, take }),
        6 => (0..AGENTS, 0usize..4, prop_oneof![
                6 => Just(ReportKind::Honest),
                1 => Just(ReportKind::WrongOutput),
                1 => Just(ReportKind::InflatedFuel),
                1 => Just(ReportKind::Trap),
            ])
            .prop_map(|(agent, pick, kind)| Op::Report { agent, pick, kind }),
        2 => (0..AGENTS, 0usize..4).prop_map(|(agent, pick)| Op::Duplicate { agent, pick }),
        1 => (0..AGENTS, 0usize..4).prop_map(|(agent, pick)| Op::Release { agent, pick }),
        1 => Just(Op::Timeout),
        1 => (0usize..4).prop_map(|pick| Op::Cancel { pick }),
        1 => Just(Op::Restart),
    ]
}

/// The smallest runnable task.
fn noop_module() -> Vec<u8> {
    wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#)
        .expect("wat")
}

/// The honest fuel and output of a task: what every honest replica reports.
fn honest(workload: &str, index: u32) -> (u64, Vec<u8>) {
    let seed = workload.bytes().fold(u64::from(index), |acc, b| {
        acc.wrapping_mul(31) ^ u64::from(b)
    });
    (
        1_000 + seed % 1_000_000,
        format!("{workload}/{index}").into_bytes(),
    )
}

struct Grid {
    dir: tempfile::TempDir,
    /// `None` only while restarting.
    live: Option<Arc<Broker>>,
    agents: Vec<String>,
    workloads: Vec<String>,
    /// Reports sent, by agent: (lease id, report) for duplicates.
    sent: HashMap<usize, Vec<(String, IncomingReport)>>,
}

fn config(dir: &std::path::Path) -> BrokerConfig {
    let mut config = BrokerConfig::new(dir.to_path_buf());
    config.lease_timeout = Duration::from_millis(1);
    config.offer_hold = Duration::from_secs(3600);
    config.trust_after = 2;
    config.spot_check_rate = 0.3;
    config
}

async fn start(dir: &std::path::Path) -> Arc<Broker> {
    // The previous broker's last references (background aggregations) may
    // still hold the data dir's lock for a moment.
    for _ in 0..500 {
        match Broker::start(config(dir)).await {
            Ok(broker) => return broker,
            Err(error) if error.to_string().contains("another broker") => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(error) => panic!("broker start: {error}"),
        }
    }
    panic!("the data dir stayed locked");
}

impl Grid {
    async fn new() -> Grid {
        let dir = tempfile::tempdir().expect("temp dir");
        let broker = start(dir.path()).await;
        let mut agents = Vec::new();
        for i in 0..AGENTS {
            let (id, _token) = broker
                .register(AgentRow {
                    id: String::new(),
                    name: format!("agent-{i}"),
                    os: "linux".into(),
                    arch: "x86_64".into(),
                    cores: 1,
                    memory_bytes: 1 << 30,
                    slots: 4,
                    version: "test".into(),
                    registered_ms: 0,
                    last_seen_ms: 0,
                    owner: String::new(),
                    address: String::new(),
                })
                .await
                .expect("register");
            agents.push(id);
        }
        for issuer in ISSUERS {
            broker
                .grant(issuer, GRANT_MICRO, "property test")
                .await
                .expect("grant");
        }
        Grid {
            dir,
            live: Some(broker),
            agents,
            workloads: Vec::new(),
            sent: HashMap::new(),
        }
    }

    async fn active_leases(&self, agent: usize) -> Vec<(String, String, u32)> {
        let rows = sqlx::query(
            "SELECT id, workload_id, idx FROM leases WHERE agent_id = ? AND state = 'active'
             ORDER BY started_ms, id",
        )
        .bind(&self.agents[agent])
        .fetch_all(self.broker().store().pool())
        .await
        .expect("leases");
        rows.iter()
            .map(|row| {
                (
                    row.get("id"),
                    row.get("workload_id"),
                    row.get::<i64, _>("idx") as u32,
                )
            })
            .collect()
    }

    async fn apply(&mut self, op: &Op) {
        match *op {
            Op::Submit {
                issuer,
                tasks,
                replicas,
                quorum,
                adaptive,
                rate_pico,
            } => {
                let before = snapshot(self.broker()).await;
                let submitted = self
                    .broker()
                    .submit(NewWorkload {
                        issuer: ISSUERS[issuer].into(),
                        name: "prop".into(),
                        limits: Limits {
                            fuel: FUEL_LIMIT,
                            ..Limits::default()
                        },
                        replicas,
                        quorum,
                        adaptive,
                        max_attempts: 3,
                        credits_per_fuel: rate_pico as f64 / 1e12,
                        credits_per_mib_second: 0.0,
                        module: noop_module(),
                        reducer: None,
                        inputs: (0..tasks).map(|i| vec![i as u8]).collect(),
                    })
                    .await;
                match submitted {
                    Ok((id, _)) => self.workloads.push(id),
                    Err(error) => {
                        assert!(
                            error.to_string().contains("insufficient credits"),
                            "unexpected refusal: {error}"
                        );
                        assert_eq!(
                            before,
                            snapshot(self.broker()).await,
                            "a refusal changed nothing"
                        );
                    }
                }
            }
            Op::Work { agent, take } => {
                let offers = self
                    .broker()
                    .request_work(&self.agents[agent], 2, 1 << 30)
                    .await
                    .expect("request work");
                let chosen: Vec<(String, u32)> = offers
                    .iter()
                    .take(take)
                    .map(|offer| (offer.workload.id.clone(), offer.index))
                    .collect();
                self.broker()
                    .accept(&self.agents[agent], &chosen)
                    .await
                    .expect("accept");
            }
            Op::Report { agent, pick, kind } => {
                let leases = self.active_leases(agent).await;
                if leases.is_empty() {
                    return;
                }
                let (lease_id, workload, index) = leases[pick % leases.len()].clone();
                let (mut fuel, mut output) = honest(&workload, index);
                let mut status = Status::Ok;
                match kind {
                    ReportKind::Honest => {}
                    ReportKind::WrongOutput => output.push(b'!'),
                    ReportKind::InflatedFuel => fuel *= 2,
                    ReportKind::Trap => {
                        status = Status::Trap("unreachable".into());
                        output.clear();
                    }
                }
                // Half the reports name their task (the agent's hint), half
                // do not: both ways of finding the lease are exercised.
                let task = (pick % 2 == 0).then(|| (workload.clone(), index));
                let report = || IncomingReport {
                    lease_id: lease_id.clone(),
                    task: task.clone(),
                    status: status.clone(),
                    output: output.clone(),
                    stderr: Vec::new(),
                    fuel_consumed: fuel,
                    peak_memory: 65536,
                    wall_time_ms: 3,
                    metering_version: "test".into(),
                };
                self.broker()
                    .report(&self.agents[agent], report())
                    .await
                    .expect("report");
                self.sent
                    .entry(agent)
                    .or_default()
                    .push((lease_id.clone(), report()));
            }
            Op::Duplicate { agent, pick } => {
                let Some(sent) = self.sent.get(&agent).filter(|sent| !sent.is_empty()) else {
                    return;
                };
                let (_, report) = &sent[pick % sent.len()];
                let again = IncomingReport {
                    lease_id: report.lease_id.clone(),
                    task: report.task.clone(),
                    status: report.status.clone(),
                    output: report.output.clone(),
                    stderr: Vec::new(),
                    fuel_consumed: report.fuel_consumed,
                    peak_memory: report.peak_memory,
                    wall_time_ms: report.wall_time_ms,
                    metering_version: report.metering_version.clone(),
                };
                let before = snapshot(self.broker()).await;
                self.broker()
                    .report(&self.agents[agent], again)
                    .await
                    .expect("a repeated report is acknowledged");
                assert_eq!(
                    before.ledger,
                    snapshot(self.broker()).await.ledger,
                    "a duplicate paid"
                );
            }
            Op::Release { agent, pick } => {
                let leases = self.active_leases(agent).await;
                if leases.is_empty() {
                    return;
                }
                let (lease_id, _, _) = &leases[pick % leases.len()];
                self.broker()
                    .release(&self.agents[agent], lease_id, "property test")
                    .await
                    .expect("release");
            }
            Op::Timeout => {
                tokio::time::sleep(Duration::from_millis(3)).await;
                self.broker().expire_due().await.expect("expire");
            }
            Op::Cancel { pick } => {
                if self.workloads.is_empty() {
                    return;
                }
                let id = &self.workloads[pick % self.workloads.len()];
                // A finished workload refuses the cancel; either is fine.
                let _ = self.broker().cancel(id).await;
            }
            Op::Restart => {
                drop(self.live.take());
                self.live = Some(start(self.dir.path()).await);
            }
        }
    }

    fn broker(&self) -> &Arc<Broker> {
        self.live.as_ref().expect("a broker is running")
    }
}

/// The ledger and balances, to compare before and after a step that must
/// change nothing.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    ledger: Vec<(i64, String, String, String, i64)>,
    balances: Vec<(String, i64)>,
}

async fn snapshot(broker: &Broker) -> Snapshot {
    let pool = broker.store().pool();
    let ledger =
        sqlx::query("SELECT seq, kind, from_account, to_account, amount FROM ledger ORDER BY seq")
            .fetch_all(pool)
            .await
            .expect("ledger")
            .iter()
            .map(|row| {
                (
                    row.get("seq"),
                    row.get("kind"),
                    row.get("from_account"),
                    row.get("to_account"),
                    row.get("amount"),
                )
            })
            .collect();
    let balances = sqlx::query("SELECT id, balance FROM accounts ORDER BY id")
        .fetch_all(pool)
        .await
        .expect("accounts")
        .iter()
        .map(|row| (row.get("id"), row.get("balance")))
        .collect();
    Snapshot { ledger, balances }
}

async fn scalar(broker: &Broker, sql: &'static str) -> i64 {
    sqlx::query(sql)
        .fetch_one(broker.store().pool())
        .await
        .expect(sql)
        .get(0)
}

/// Every invariant of the ledger, on the store as it is now.
async fn check_invariants(broker: &Broker) {
    let granted = ISSUERS.len() as i64 * GRANT_MICRO;
    // Conservation: balances sum to zero with the mint, to the grants without.
    assert_eq!(scalar(broker, "SELECT SUM(balance) FROM accounts").await, 0);
    assert_eq!(
        scalar(
            broker,
            "SELECT SUM(balance) FROM accounts WHERE id != 'mint'"
        )
        .await,
        granted
    );
    // Every balance is the sum of its postings.
    assert_eq!(
        scalar(
            broker,
            "SELECT COUNT(*) FROM accounts a WHERE a.balance !=
                 (SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE to_account = a.id)
               - (SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE from_account = a.id)"
        )
        .await,
        0,
        "a balance differs from its postings"
    );
    // Exactly once: one pay per lease, on an agreeing run, of exactly what
    // the lease records, which is fuel × rate.
    assert_eq!(
        scalar(
            broker,
            "SELECT COUNT(*) FROM (SELECT lease_id FROM ledger WHERE kind = 'pay'
                                   GROUP BY lease_id HAVING COUNT(*) > 1)"
        )
        .await,
        0,
        "a lease was paid twice"
    );
    assert_eq!(
        scalar(
            broker,
            "SELECT COUNT(*) FROM ledger p JOIN leases l ON l.id = p.lease_id
             WHERE p.kind = 'pay' AND (l.verdict IS NOT 'agreed' OR l.paid_micro != p.amount
                                        OR p.to_account != 'agent:' || l.agent_id)"
        )
        .await,
        0,
        "a payment does not match its run"
    );
    let runs = sqlx::query(
        "SELECT l.fuel_consumed, l.paid_micro, w.credits_per_fuel, t.state
         FROM leases l JOIN workloads w ON w.id = l.workload_id
         JOIN tasks t ON t.workload_id = l.workload_id AND t.idx = l.idx
         WHERE l.verdict = 'agreed'",
    )
    .fetch_all(broker.store().pool())
    .await
    .expect("runs");
    for run in &runs {
        let fuel = run.get::<i64, _>("fuel_consumed") as u128;
        let rate_pico = (run.get::<f64, _>("credits_per_fuel") * 1e12).round() as u128;
        assert_eq!(
            run.get::<i64, _>("paid_micro") as u128,
            fuel * rate_pico / 1_000_000,
            "pay is fuel × rate"
        );
        assert_eq!(run.get::<&str, _>("state"), "done", "only done tasks pay");
    }
    // Disagreeing runs are never paid; no task pays more runs than its quorum.
    assert_eq!(
        scalar(
            broker,
            "SELECT COUNT(*) FROM leases WHERE verdict = 'disagreed' AND paid_micro != 0"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            broker,
            "SELECT COUNT(*) FROM (SELECT l.workload_id, l.idx, COUNT(*) AS n, w.quorum
                                   FROM leases l JOIN workloads w ON w.id = l.workload_id
                                   WHERE l.verdict = 'agreed' GROUP BY l.workload_id, l.idx
                                   HAVING n > w.quorum)"
        )
        .await,
        0,
        "a task paid more runs than its quorum"
    );
    // Escrow: what was escrowed minus what left it is what it holds; a
    // finished workload was closed out: fee exact, escrow empty.
    let workloads = sqlx::query(
        "SELECT w.id, w.state, w.escrow_micro, w.fee_basis_points, a.balance,
            (SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE workload_id = w.id AND kind = 'pay') AS paid,
            (SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE workload_id = w.id AND kind = 'fee') AS fee,
            (SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE workload_id = w.id AND kind = 'refund') AS refund
         FROM workloads w JOIN accounts a ON a.id = 'escrow:' || w.id",
    )
    .fetch_all(broker.store().pool())
    .await
    .expect("workloads");
    for w in &workloads {
        let (escrow, held): (i64, i64) = (w.get("escrow_micro"), w.get("balance"));
        let (paid, fee, refund): (i64, i64, i64) = (w.get("paid"), w.get("fee"), w.get("refund"));
        assert_eq!(
            escrow - paid - fee - refund,
            held,
            "escrow of {}",
            w.get::<&str, _>("id")
        );
        assert!(held >= 0);
        if w.get::<&str, _>("state") != "running" {
            assert_eq!(held, 0, "a finished workload's escrow is closed");
            let bp = w.get::<i64, _>("fee_basis_points");
            assert_eq!(fee, paid * bp / 10_000, "the fee is exact");
        } else {
            assert_eq!(fee + refund, 0, "a running workload is not closed out");
        }
    }
}

/// Lets background aggregations finish, so a workload whose tasks are all
/// finished is closed out before the checks.
async fn settle(broker: &Broker) {
    for _ in 0..200 {
        let open = scalar(
            broker,
            "SELECT COUNT(*) FROM workloads w WHERE w.state = 'running'
             AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.workload_id = w.id AND t.state = 'pending')",
        )
        .await;
        if open == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("a finished workload was not aggregated");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    #[test]
    fn credits_are_conserved_and_paid_exactly_once(ops in prop::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio");
        runtime.block_on(async {
            let mut grid = Grid::new().await;
            for op in &ops {
                grid.apply(op).await;
                settle(grid.broker()).await;
                check_invariants(grid.broker()).await;
            }
            // Finish honestly; a task whose honest replicas cannot reach its
            // quorum any more (too many agents disagreed) waits for new
            // agents, so what is still running at the end is cancelled.
            for _ in 0..20 {
                let running = scalar(grid.broker(), "SELECT COUNT(*) FROM workloads WHERE state = 'running'").await;
                if running == 0 {
                    break;
                }
                for agent in 0..AGENTS {
                    grid.apply(&Op::Work { agent, take: 2 }).await;
                    for _ in 0..2 {
                        grid.apply(&Op::Report { agent, pick: 0, kind: ReportKind::Honest }).await;
                    }
                }
                settle(grid.broker()).await;
                check_invariants(grid.broker()).await;
            }
            for id in grid.workloads.clone() {
                let _ = grid.broker().cancel(&id).await;
            }
            settle(grid.broker()).await;
            check_invariants(grid.broker()).await;
            assert_eq!(
                scalar(grid.broker(), "SELECT COALESCE(SUM(balance), 0) FROM accounts WHERE kind = 'escrow'").await,
                0,
                "every escrow is closed at the end"
            );
            eprintln!(
                "ops {:>2}: {} workloads, {} tasks done, {} payments, {} disagreed, {} solo runs, {} restarts",
                ops.len(),
                grid.workloads.len(),
                scalar(grid.broker(), "SELECT COUNT(*) FROM tasks WHERE state = 'done'").await,
                scalar(grid.broker(), "SELECT COUNT(*) FROM ledger WHERE kind = 'pay'").await,
                scalar(grid.broker(), "SELECT COUNT(*) FROM leases WHERE verdict = 'disagreed'").await,
                scalar(grid.broker(), "SELECT COUNT(*) FROM leases WHERE solo = 1").await,
                ops.iter().filter(|op| matches!(op, Op::Restart)).count(),
            );
        });
    }
}
