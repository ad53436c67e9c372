//! The agent's life: start (state, sandbox, registration, outbox backlog),
//! take work while running, then stop in order — no new work, let running
//! tasks finish (or release them), deliver what is left to report. A broker
//! that refuses the agent's version forces the stop, and the agent ends with
//! [`AgentError::Outdated`].

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use wasmgrid_proto::v1::{
    AcceptOffersRequest, AcceptOffersResponse, RequestWorkRequest, RequestWorkResponse, TaskRef,
};
use wasmgrid_runtime::{Runtime, RuntimeConfig};

use crate::backoff::Backoff;
use crate::capacity::CapacityPool;
use crate::client::{BrokerClient, Retry};
use crate::config::AgentConfig;
use crate::control::{self, AgentStatus, RunningTasks};
use crate::counters::{AgentSummary, Counters, add};
use crate::error::AgentError;
use crate::module_store::ModuleStore;
use crate::offer_policy::{AgentProfile, Capacity, choose_offers};
use crate::outbox::Outbox;
use crate::registration::Session;
use crate::reporter::{self, Reporter};
use crate::speed::SpeedEstimate;
use crate::stop::{StopPhase, StopSignal, drain_reports, finish_workers};
use crate::work_ask::{self, WorkAnswer, WorkAsk};
use crate::worker::{self, WorkerContext};

/// Bounds on the broker's `retry_after_ms`: at least 50 ms, so a broker that
/// answers 0 cannot make the agent spin; at most 5 s, so the agent notices
/// new work soon even when the broker asks for more patience.
const MIN_POLL_PAUSE: Duration = Duration::from_millis(50);
const MAX_POLL_PAUSE: Duration = Duration::from_secs(5);

/// Pause when offers came but none was taken: the same offers will not fit
/// better until a running task ends (which also ends the pause), and asking
/// at once would only bring back the offers just declined.
const NOTHING_FITTED_PAUSE: Duration = Duration::from_secs(1);

/// How often a paused agent looks whether it was resumed.
const PAUSED_POLL: Duration = Duration::from_millis(250);

/// How long `AcceptOffers` is retried. Offers are held for the agent only
/// briefly; past this they are gone anyway, and asking anew is better.
const ACCEPT_RETRY: Duration = Duration::from_secs(10);

/// At stop, how long the reporter may keep delivering once tasks are done
/// (the stop timeout, within these bounds). Undelivered results stay in the
/// outbox and go out at the next start, so waiting longer for an absent
/// broker would only delay the exit; but even an impatient stop gives the
/// last results a moment to reach a broker that is there.
const REPORT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
const MIN_REPORT_DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs the agent until `stop` says so and everything is wound down.
pub(crate) async fn run_agent(
    config: AgentConfig,
    stop: StopSignal,
) -> Result<AgentSummary, AgentError> {
    let broker_url = config.validate()?;
    let state_dir = config.state_dir.clone();
    std::fs::create_dir_all(&state_dir)
        .map_err(|error| AgentError::state_dir(&state_dir, error))?;
    let outbox_dir = state_dir.join("outbox");
    let outbox =
        Outbox::open(&outbox_dir).map_err(|error| AgentError::state_dir(&outbox_dir, error))?;
    let modules_dir = state_dir.join("modules");
    let modules = ModuleStore::open(&modules_dir)
        .map_err(|error| AgentError::state_dir(&modules_dir, error))?;
    let runtime = Runtime::new(runtime_config(&config))?;
    let counters = Arc::new(Counters::default());
    let session = Session::new(&config, broker_url.clone());
    let client = BrokerClient::new(
        &broker_url,
        config.ca_cert.as_deref(),
        session,
        config.backoff,
    )?;
    tracing::info!(
        broker = %broker_url,
        slots = config.slots,
        memory_bytes = config.memory_bytes,
        state_dir = %state_dir.display(),
        "agent starting"
    );

    tokio::select! {
        signed_in = client.sign_in() => { signed_in?; }
        () = stop.stopping() => {
            tracing::info!("stopped before registering");
            return Ok(counters.summary(String::new(), outbox.pending()));
        }
    }
    // Any call may meet the refusal of the agent's version: it ends the
    // agent at once (running tasks are released, results stay in the outbox).
    let refusal_watch = tokio::spawn({
        let session = Arc::clone(&client.session);
        let stop = stop.clone();
        async move {
            session.outdated.refused().await;
            stop.advance(StopPhase::Forced);
        }
    });
    let backlog = outbox
        .load_all()
        .map_err(|error| AgentError::state_dir(&outbox_dir, error))?;
    let pool = CapacityPool::new(lease_capacity(&config));
    let (asks, answers) = WorkAsk::new(Arc::clone(&pool), config.memory_bytes);
    let Reporter {
        sender,
        backlog_tried,
        task: reporter,
    } = reporter::spawn(
        client.clone(),
        outbox.clone(),
        Arc::clone(&counters),
        backlog,
        Arc::clone(&asks),
    );
    tokio::select! {
        _ = backlog_tried => {}
        () = stop.stopping() => {}
    }

    let running = Arc::new(RunningTasks::default());
    let ctx = Arc::new(WorkerContext {
        client: client.clone(),
        runtime,
        modules: Arc::new(modules),
        outbox: outbox.clone(),
        reports: sender,
        counters: Arc::clone(&counters),
        speed: SpeedEstimate::default(),
        running: Arc::clone(&running),
        slots: CapacityPool::new(total_capacity(&config)),
        stop: stop.clone(),
    });
    let status_writer = tokio::spawn(write_status_until_stopped(
        config.clone(),
        broker_url.clone(),
        client.session.agent_id(),
        Arc::clone(&counters),
        running,
        outbox.clone(),
    ));
    let (release_sender, release) = watch::channel(false);
    let mut workers = JoinSet::new();
    let mut asking = Asking {
        asks: &asks,
        answers,
    };
    take_work(
        &config,
        &ctx,
        &pool,
        &mut asking,
        &release,
        &mut workers,
        &stop,
    )
    .await;
    asking.decline_unused(&client).await;
    tracing::info!(running = workers.len(), "stopping: no new work");
    finish_workers(&mut workers, &stop, config.stop_timeout, &release_sender).await;
    // The workers are done: this drops the last sender, so the reporter
    // ends once it delivered what is queued.
    drop(ctx);
    let drain_timeout = config
        .stop_timeout
        .clamp(MIN_REPORT_DRAIN_TIMEOUT, REPORT_DRAIN_TIMEOUT);
    drain_reports(reporter, &stop, drain_timeout, &outbox, &counters).await;

    status_writer.abort();
    refusal_watch.abort();
    control::clear_status(&state_dir);
    if let Some(refusal) = client.session.outdated.refusal() {
        return Err(AgentError::Outdated {
            required: refusal.required,
            message: refusal.message,
        });
    }
    let summary = counters.summary(client.session.agent_id(), outbox.pending());
    tracing::info!(
        tasks_run = summary.tasks_run,
        tasks_ok = summary.tasks_ok,
        tasks_failed = summary.tasks_failed,
        fuel_consumed = summary.fuel_consumed,
        reports_pending = summary.reports_pending,
        "agent stopped"
    );
    Ok(summary)
}

/// Rewrites `status.json` every [`control::STATUS_INTERVAL`] until
/// [`run_agent`] aborts it and removes the file, at the very end.
async fn write_status_until_stopped(
    config: AgentConfig,
    broker: String,
    agent_id: String,
    counters: Arc<Counters>,
    running: Arc<RunningTasks>,
    outbox: Outbox,
) {
    loop {
        let summary = counters.summary(agent_id.clone(), outbox.pending());
        let answered = counters.broker_answered_ms.load(Ordering::Relaxed);
        let status = AgentStatus {
            pid: std::process::id(),
            broker: broker.clone(),
            agent_id: agent_id.clone(),
            updated_unix_ms: control::now_unix_ms(),
            paused: control::is_paused(&config.state_dir),
            slots: config.slots,
            memory_bytes: config.memory_bytes,
            broker_answered_unix_ms: (answered > 0).then(|| i64::try_from(answered).unwrap_or(0)),
            running: running.list(),
            tasks_run: summary.tasks_run,
            tasks_ok: summary.tasks_ok,
            tasks_failed: summary.tasks_failed,
            fuel_consumed: summary.fuel_consumed,
            reports_pending: summary.reports_pending,
        };
        if let Err(error) = control::write_status(&config.state_dir, &status) {
            tracing::warn!(%error, "cannot write status.json");
        }
        // Also while stopping: running tasks may take a while to finish.
        tokio::time::sleep(control::STATUS_INTERVAL).await;
    }
}

/// The sandbox for this agent: one task thread per slot, no task above the
/// agent's whole memory, compiled modules kept in the state directory.
fn runtime_config(config: &AgentConfig) -> RuntimeConfig {
    let defaults = RuntimeConfig::default();
    // Whole wasm pages, as the pooling allocator sizes memory slots in pages.
    let memory = config.memory_bytes - config.memory_bytes % (64 << 10);
    RuntimeConfig {
        max_concurrent_tasks: NonZeroUsize::new(config.slots).unwrap_or(NonZeroUsize::MIN),
        max_memory_bytes: memory.min(defaults.max_memory_bytes),
        cache_dir: Some(config.state_dir.join("compiled")),
        cpu_percent: config.cpu_percent.clamp(1, 100),
        ..defaults
    }
}

/// Everything the volunteer gives: what running tasks may use together.
fn total_capacity(config: &AgentConfig) -> Capacity {
    Capacity {
        slots: config.slots,
        memory_bytes: config.memory_bytes,
    }
}

/// What the agent may hold leases for: the slots and the work buffer, with
/// as much memory again per buffered task as a slot's share, so a buffer
/// of tasks as large as the running ones fits. Running tasks still share
/// only [`total_capacity`]: a buffered task takes its memory when it starts.
fn lease_capacity(config: &AgentConfig) -> Capacity {
    let per_slot = config.memory_bytes / config.slots.max(1) as u64;
    let buffer = config.work_buffer_tasks();
    Capacity {
        slots: config.slots.saturating_add(buffer),
        memory_bytes: config
            .memory_bytes
            .saturating_add(per_slot.saturating_mul(buffer as u64)),
    }
}

/// The work loop's side of [`WorkAsk`].
struct Asking<'a> {
    asks: &'a WorkAsk,
    answers: mpsc::UnboundedReceiver<WorkAnswer>,
}

impl Asking<'_> {
    /// Once the work loop is done: declines the offers of answers that came
    /// too late; from now on the reporter declines them itself.
    async fn decline_unused(mut self, client: &BrokerClient) {
        self.answers.close();
        while let Ok(answer) = self.answers.try_recv() {
            work_ask::decline(client, answer).await;
        }
    }

    /// Waits until a lease's capacity comes back, or a stop; returns the
    /// offers when the reporter asked for work with the report that gave
    /// it back (`None` when it did not, or got none: ask as usual).
    async fn wait_for_capacity(
        &mut self,
        pool: &CapacityPool,
        stop: &StopSignal,
    ) -> Option<RequestWorkResponse> {
        self.asks.park();
        let answered = tokio::select! {
            () = pool.freed() => None,
            answer = self.answers.recv() => Some(answer.flatten()),
            () = stop.stopping() => None,
        };
        if !self.asks.unpark() {
            return None;
        }
        // The reporter asked: its answer comes once its call returns.
        let answer = match answered {
            Some(answer) => answer,
            None => tokio::select! {
                answer = self.answers.recv() => answer.flatten(),
                () = stop.stopping() => None,
            },
        };
        answer.filter(|answer| !answer.offers.is_empty())
    }
}

/// Asks for work, accepts what fits and starts a worker per lease, until a
/// stop is asked for. Every answer with offers gets exactly one
/// `AcceptOffers`: the offers chosen, or none, which declines them all so the
/// broker hands them to other agents at once. While every lease's capacity
/// is taken, the report that gives some back may bring the next offers
/// (`Asking`); otherwise the loop asks with `RequestWork`.
async fn take_work(
    config: &AgentConfig,
    ctx: &Arc<WorkerContext>,
    pool: &Arc<CapacityPool>,
    asking: &mut Asking<'_>,
    release: &watch::Receiver<bool>,
    workers: &mut JoinSet<()>,
    stop: &StopSignal,
) {
    let mut backoff = Backoff::new(config.backoff);
    let mut was_paused = false;
    // Offers that came with a report, taken instead of asking.
    let mut in_hand: Option<RequestWorkResponse> = None;
    loop {
        reap(workers);
        if stop.is_stopping() {
            work_ask::decline(&ctx.client, in_hand.take()).await;
            return;
        }
        let paused = control::is_paused(&config.state_dir);
        if paused != was_paused {
            if paused {
                tracing::info!(running = workers.len(), "paused: taking no new work");
            } else {
                tracing::info!("resumed: taking work again");
            }
            was_paused = paused;
        }
        if paused {
            work_ask::decline(&ctx.client, in_hand.take()).await;
            pause(PAUSED_POLL, stop).await;
            continue;
        }
        // No single task may need more than the volunteer's whole memory,
        // however much the lease pool has left with a work buffer.
        let free = pool.free();
        let free = Capacity {
            memory_bytes: free.memory_bytes.min(config.memory_bytes),
            ..free
        };
        if free.slots == 0 {
            // Offers in hand cannot be taken now (a task held on to its
            // capacity): declined, and asked for again once it is back.
            work_ask::decline(&ctx.client, in_hand.take()).await;
            in_hand = asking.wait_for_capacity(pool, stop).await;
            continue;
        }
        let response = match in_hand.take() {
            Some(offers) => Ok(offers),
            None => {
                let request = RequestWorkRequest {
                    capacity: u32::try_from(free.slots).unwrap_or(u32::MAX),
                    free_memory_bytes: free.memory_bytes,
                };
                let asked =
                    ctx.client
                        .call("request work", Retry::Forever, |mut grpc| async move {
                            grpc.request_work(request).await
                        });
                tokio::select! {
                    response = asked => response,
                    () = stop.stopping() => return,
                }
            }
        };
        let response = match response {
            Ok(response) => {
                backoff.reset();
                let now = u64::try_from(control::now_unix_ms()).unwrap_or(0);
                ctx.counters
                    .broker_answered_ms
                    .store(now, Ordering::Relaxed);
                response
            }
            Err(status) => {
                if ctx.client.session.outdated.refusal().is_none() {
                    tracing::error!(code = ?status.code(), detail = status.message(), "the broker refused the request for work");
                }
                pause(backoff.next_delay(), stop).await;
                continue;
            }
        };
        let retry_after = Duration::from_millis(response.retry_after_ms.into())
            .clamp(MIN_POLL_PAUSE, MAX_POLL_PAUSE);
        if response.offers.is_empty() {
            tracing::trace!(?retry_after, "no work offered");
            pause(retry_after, stop).await;
            continue;
        }
        let profile = AgentProfile {
            total: total_capacity(config),
            fuel_per_second: ctx.speed.fuel_per_second(),
        };
        let chosen = choose_offers(
            config.offer_policy.as_ref(),
            &response.offers,
            free,
            &profile,
            config.min_rate,
        );
        if chosen.is_empty() {
            tracing::debug!(
                offers = response.offers.len(),
                ?free,
                min_rate = config.min_rate,
                "no offer fits or pays enough; declining them all"
            );
            // Not interrupted by a stop: the broker should hear the answer.
            // Nothing is leased for an empty list; the answer says nothing.
            let _ = accept(&ctx.client, Vec::new()).await;
            tokio::select! {
                () = pool.freed() => {}
                () = tokio::time::sleep(retry_after.max(NOTHING_FITTED_PAUSE)) => {}
                () = stop.stopping() => return,
            }
            continue;
        }
        // Not interrupted by a stop: leases granted meanwhile are released.
        let Some(accepted) = accept(&ctx.client, chosen).await else {
            pause(MIN_POLL_PAUSE, stop).await;
            continue;
        };
        if !accepted.rejected.is_empty() {
            tracing::debug!(
                rejected = accepted.rejected.len(),
                "some offers were no longer available"
            );
        }
        if accepted.leases.is_empty() {
            pause(MIN_POLL_PAUSE, stop).await;
            continue;
        }
        for lease in accepted.leases {
            add(&ctx.counters.leases_accepted, 1);
            if stop.is_stopping() {
                worker::release_lease(ctx, &lease.lease_id, "the agent is stopping").await;
                continue;
            }
            let memory = lease
                .limits
                .as_ref()
                .map_or(0, |limits| limits.memory_bytes);
            let reservation = pool.reserve(memory);
            workers.spawn(worker::work_on(
                Arc::clone(ctx),
                lease,
                reservation,
                release.clone(),
            ));
        }
    }
}

/// Accepts `tasks` (declining every other offer held for the agent); `None`
/// if the broker could not be asked.
async fn accept(client: &BrokerClient, tasks: Vec<TaskRef>) -> Option<AcceptOffersResponse> {
    let request = AcceptOffersRequest { tasks };
    let accepted = client
        .call(
            "accept offers",
            Retry::for_duration(ACCEPT_RETRY),
            |mut grpc| {
                let request = request.clone();
                async move { grpc.accept_offers(request).await }
            },
        )
        .await;
    match accepted {
        Ok(accepted) => Some(accepted),
        Err(status) => {
            tracing::warn!(code = ?status.code(), detail = status.message(), "cannot accept offers");
            None
        }
    }
}

/// Collects workers that ended, logging any that panicked.
fn reap(workers: &mut JoinSet<()>) {
    while let Some(joined) = workers.try_join_next() {
        if let Err(error) = joined {
            tracing::error!(%error, "a worker failed");
        }
    }
}

/// Sleeps for `duration`, or until a stop is asked for.
async fn pause(duration: Duration, stop: &StopSignal) {
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        () = stop.stopping() => {}
    }
}
