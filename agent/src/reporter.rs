//! The reporter: sends finished results to the broker in the background,
//! in order, retrying with backoff while the broker is away, and removes each
//! from the outbox once the broker acknowledged it. Results ready together
//! go in one `ReportResults` call (up to [`MAX_REPORTS_PER_CALL`] and
//! [`REPORT_BATCH_BYTES`]); to a broker without that call, one
//! `ReportResult` each. When the work loop waits for the capacity a report
//! gives back, the call also asks for work for it ([`WorkAsk`]).
//!
//! The reporter also decides when results go to disk for good: a result
//! the broker acknowledges within [`SYNC_UNANSWERED_AFTER`] of sending is
//! never synced; once a call fails or is that slow, every result in the
//! outbox is synced, and so is each new one while the broker stays away
//! ([`Outbox::make_durable`]).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tonic::{Code, Status};
use wasmgrid_proto::v1::{ReportResultRequest, ReportResultsRequest, RequestWorkRequest};
use wasmgrid_proto::{MAX_REPORTS_PER_CALL, REPORT_BATCH_BYTES};

use crate::backoff::Backoff;
use crate::capacity::Reservation;
use crate::client::{BrokerClient, Retry};
use crate::counters::{Counters, add};
use crate::outbox::Outbox;
use crate::outdated::required_version;
use crate::work_ask::{self, WorkAnswer, WorkAsk};

/// How long a call may go unanswered before the results in the outbox are
/// synced to disk meanwhile: far above a broker's usual answer (a few
/// milliseconds, a synced commit included), short next to the time a
/// machine crash takes to matter.
const SYNC_UNANSWERED_AFTER: Duration = Duration::from_secs(1);

/// Where workers hand finished reports, already written to the outbox.
pub(crate) type ReportSender = mpsc::UnboundedSender<Finished>;

/// A finished task's report, as a worker hands it over.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) report: ReportResultRequest,
    /// The lease's share of the agent's capacity, given back by the
    /// reporter (which may ask for work for it with the report).
    pub(crate) frees: Option<Reservation>,
}

/// The running reporter.
#[derive(Debug)]
pub(crate) struct Reporter {
    /// Hands reports to the reporter; dropping every sender lets it finish.
    pub(crate) sender: ReportSender,
    /// Fires once every report found in the outbox at start was tried once.
    pub(crate) backlog_tried: oneshot::Receiver<()>,
    /// Ends when every report was delivered and every sender dropped.
    pub(crate) task: JoinHandle<()>,
}

/// What became of one delivery.
enum Delivery {
    /// Acknowledged, or refused for good: either way, done with.
    Done,
    /// The broker is away: keep it and try again later.
    Retry(Status),
}

/// Starts the reporter with the `backlog` left in the outbox by an earlier
/// run; it asks for work with its reports when `asks` says the work loop
/// waits.
pub(crate) fn spawn(
    client: BrokerClient,
    outbox: Outbox,
    counters: Arc<Counters>,
    backlog: Vec<ReportResultRequest>,
    asks: Arc<WorkAsk>,
) -> Reporter {
    let (sender, receiver) = mpsc::unbounded_channel();
    let (backlog_done, backlog_tried) = oneshot::channel();
    let task = tokio::spawn(deliver_all(
        client,
        outbox,
        counters,
        backlog,
        receiver,
        backlog_done,
        asks,
    ));
    Reporter {
        sender,
        backlog_tried,
        task,
    }
}

async fn deliver_all(
    client: BrokerClient,
    outbox: Outbox,
    counters: Arc<Counters>,
    backlog: Vec<ReportResultRequest>,
    mut receiver: mpsc::UnboundedReceiver<Finished>,
    backlog_done: oneshot::Sender<()>,
    asks: Arc<WorkAsk>,
) {
    if !backlog.is_empty() {
        tracing::info!(
            reports = backlog.len(),
            "resending results left in the outbox"
        );
    }
    let mut backlog_left = backlog.len();
    let mut backlog_done = Some(backlog_done);
    let mut queue = VecDeque::from(backlog);
    let mut backoff = Backoff::new(client.backoff);
    let mut senders_gone = false;
    let mut batching = true;
    loop {
        if backlog_left == 0
            && let Some(done) = backlog_done.take()
        {
            let _ = done.send(());
        }
        // Everything handed over by now; the capacity it frees is given
        // back with the next call.
        let mut freeing = Vec::new();
        if queue.is_empty() {
            match receiver.recv().await {
                Some(finished) => gather(finished, &mut queue, &mut freeing),
                None => return,
            }
        }
        while let Ok(finished) = receiver.try_recv() {
            gather(finished, &mut queue, &mut freeing);
        }
        // Only ReportResults can ask for work.
        let work = if batching {
            asks.claim(freeing)
        } else {
            drop(freeing);
            None
        };
        let batch = batch_size(&queue, batching);
        let delivering = async {
            if batch > 1 || work.is_some() {
                let asked = work.is_some();
                let (deliveries, answer) = deliver_batch(
                    &client,
                    &counters,
                    queue.range(..batch),
                    work,
                    &mut batching,
                )
                .await;
                if asked {
                    hand_over(&client, &asks, answer).await;
                }
                deliveries
            } else {
                match queue.front() {
                    Some(report) => vec![deliver(&client, &counters, report).await],
                    None => Vec::new(),
                }
            }
        };
        let deliveries = syncing_if_slow(&outbox, &counters, delivering).await;
        let mut retry = None;
        for delivery in deliveries {
            let Some(report) = queue.pop_front() else {
                break;
            };
            match delivery {
                Delivery::Done => {
                    let outbox = outbox.clone();
                    let lease_id = report.lease_id;
                    let removed =
                        tokio::task::spawn_blocking(move || outbox.remove(&lease_id)).await;
                    if let Ok(Err(error)) = removed {
                        tracing::error!(%error, "cannot remove a delivered report from the outbox");
                    }
                    backlog_left = backlog_left.saturating_sub(1);
                }
                Delivery::Retry(status) => {
                    // To the back of the queue: one report the broker keeps
                    // failing on must not hold up all the others.
                    queue.push_back(report);
                    retry = Some(status);
                }
            }
        }
        match retry {
            None => backoff.reset(),
            Some(status) => {
                if backoff.failures().is_multiple_of(10) {
                    tracing::warn!(
                        pending = queue.len(),
                        code = ?status.code(),
                        detail = status.message(),
                        "cannot report results yet; they stay in the outbox and are retried"
                    );
                }
                // The broker is away: the rest of the backlog would fail the
                // same way, so the work loop need not wait for it.
                backlog_left = 0;
                make_durable(&outbox, &counters).await;
                let pause = tokio::time::sleep(backoff.next_delay());
                tokio::pin!(pause);
                loop {
                    tokio::select! {
                        () = &mut pause => break,
                        // The capacity comes back at once: while the broker
                        // is away, no call asks for work for it.
                        finished = receiver.recv(), if !senders_gone => match finished {
                            Some(finished) => {
                                queue.push_back(finished.report);
                                make_durable(&outbox, &counters).await;
                            }
                            None => senders_gone = true,
                        },
                    }
                }
            }
        }
    }
}

/// Runs `delivery`; when it is not answered within
/// [`SYNC_UNANSWERED_AFTER`], syncs the outbox while it waits on.
async fn syncing_if_slow<T>(
    outbox: &Outbox,
    counters: &Counters,
    delivery: impl Future<Output = T>,
) -> T {
    tokio::pin!(delivery);
    tokio::select! {
        biased;
        delivered = &mut delivery => return delivered,
        () = tokio::time::sleep(SYNC_UNANSWERED_AFTER) => {}
    }
    let (delivered, ()) = tokio::join!(delivery, make_durable(outbox, counters));
    delivered
}

/// Syncs the results in the outbox that are not yet on disk for good (the
/// broker did not acknowledge them at once). A failure is logged: the
/// results are still written, safe from the agent's own crash.
pub(crate) async fn make_durable(outbox: &Outbox, counters: &Counters) {
    let outbox = outbox.clone();
    match tokio::task::spawn_blocking(move || outbox.make_durable()).await {
        Ok(Ok(0)) => {}
        Ok(Ok(synced)) => {
            add(&counters.reports_synced, synced);
            tracing::debug!(
                synced,
                "results the broker did not acknowledge at once synced to disk"
            );
        }
        Ok(Err(error)) => tracing::error!(
            %error,
            "cannot sync the outbox: its results survive the agent's crash, not the machine's"
        ),
        Err(error) => tracing::error!(%error, "syncing the outbox did not complete"),
    }
}

/// Queues a finished task's report and keeps the capacity it frees.
fn gather(
    finished: Finished,
    queue: &mut VecDeque<ReportResultRequest>,
    freeing: &mut Vec<Reservation>,
) {
    queue.push_back(finished.report);
    freeing.extend(finished.frees);
}

/// How many reports from the front of `queue` go in the next call: as many
/// as fit in one `ReportResults`, or 1 (always at least the front one).
fn batch_size(queue: &VecDeque<ReportResultRequest>, batching: bool) -> usize {
    if !batching {
        return 1;
    }
    let mut bytes = 0;
    let mut count = 0;
    for report in queue.iter().take(MAX_REPORTS_PER_CALL) {
        bytes += report.output.len() + report.stderr.len();
        if count > 0 && bytes > REPORT_BATCH_BYTES {
            break;
        }
        count += 1;
    }
    count.max(1)
}

/// Hands the answer to the reporter's request for work to the work loop;
/// when the work loop is gone (the agent stops), declines its offers.
async fn hand_over(client: &BrokerClient, asks: &WorkAsk, answer: WorkAnswer) {
    work_ask::decline(client, asks.answer(answer)).await;
}

/// Sends several reports in one `ReportResults` call, asking for `work`
/// too when it is given; says what to do with each report, in order, and
/// what the broker answered to `work` (`None` if it did not). Only a
/// report's own outcome may drop it. A broker without that call (an older
/// one) turns `batching` off and gets them one by one, as does a refusal of
/// the call as a whole; while the broker is away, all are retried later,
/// with no call per report.
async fn deliver_batch<'a>(
    client: &BrokerClient,
    counters: &Counters,
    reports: impl Iterator<Item = &'a ReportResultRequest> + Clone,
    work: Option<RequestWorkRequest>,
    batching: &mut bool,
) -> (Vec<Delivery>, WorkAnswer) {
    let request = ReportResultsRequest {
        reports: reports.clone().cloned().collect(),
        work,
    };
    let expected = request.reports.len();
    let sent = client
        .call("report results", Retry::Once, |mut grpc| {
            let request = request.clone();
            async move { grpc.report_results(request).await }
        })
        .await;
    let deliveries = match sent {
        Ok(response) if response.outcomes.len() == expected => {
            let deliveries = reports
                .zip(response.outcomes)
                .map(|(report, outcome)| {
                    let answer = match Code::from_i32(outcome.code) {
                        Code::Ok => Ok(outcome.counted),
                        code => Err(Status::new(code, outcome.message)),
                    };
                    judge(counters, &report.lease_id, answer)
                })
                .collect();
            return (deliveries, response.work);
        }
        Ok(response) => {
            tracing::warn!(
                sent = expected,
                answered = response.outcomes.len(),
                "the broker answered a different number of reports; sending them one by one"
            );
            deliver_each(client, counters, reports).await
        }
        Err(status) if status.code() == Code::Unimplemented => {
            tracing::info!("the broker takes results one at a time (no ReportResults)");
            *batching = false;
            deliver_each(client, counters, reports).await
        }
        // The call as a whole was refused (too many, too big): each report
        // may still be fine on its own.
        Err(status) if required_version(&status).is_none() && never_accepted(status.code()) => {
            tracing::debug!(code = ?status.code(), detail = status.message(), "batched report refused; sending one by one");
            deliver_each(client, counters, reports).await
        }
        // The broker is away or refuses this agent's version: every report
        // would fail the same way one by one; all are tried again later.
        Err(status) => reports.map(|_| Delivery::Retry(status.clone())).collect(),
    };
    (deliveries, None)
}

async fn deliver_each<'a>(
    client: &BrokerClient,
    counters: &Counters,
    reports: impl Iterator<Item = &'a ReportResultRequest>,
) -> Vec<Delivery> {
    let mut deliveries = Vec::new();
    for report in reports {
        deliveries.push(deliver(client, counters, report).await);
    }
    deliveries
}

/// Sends one report once and says what to do with it.
async fn deliver(
    client: &BrokerClient,
    counters: &Counters,
    report: &ReportResultRequest,
) -> Delivery {
    let lease = report.lease_id.as_str();
    let sent = client
        .call("report result", Retry::Once, |mut grpc| {
            let report = report.clone();
            async move { grpc.report_result(report).await }
        })
        .await;
    judge(counters, lease, sent.map(|response| response.counted))
}

/// What to do with a report the broker answered `answer` to: whether it
/// counted, or why not.
fn judge(counters: &Counters, lease: &str, answer: Result<bool, Status>) -> Delivery {
    match answer {
        Ok(counted) => {
            add(&counters.reports_acknowledged, 1);
            if counted {
                add(&counters.reports_counted, 1);
                tracing::info!(lease, "result reported");
            } else {
                tracing::warn!(
                    lease,
                    "result reported, but it did not count: the lease had already ended"
                );
            }
            Delivery::Done
        }
        // The broker refuses the agent's version, not the result: the
        // updated agent sends it.
        Err(status) if required_version(&status).is_some() => Delivery::Retry(status),
        Err(status) if never_accepted(status.code()) => {
            add(&counters.reports_dropped, 1);
            tracing::warn!(lease, code = ?status.code(), detail = status.message(), "the broker will never accept this result; dropping it");
            Delivery::Done
        }
        Err(status) => {
            tracing::debug!(lease, code = ?status.code(), detail = status.message(), "cannot report the result yet");
            Delivery::Retry(status)
        }
    }
}

/// Codes meaning the broker understood the report and refuses it for good.
/// Anything else (`Unavailable`, `Internal`, `Unimplemented` during an
/// upgrade, …) keeps the report: dropping finished work is the one thing a
/// retry cannot undo.
fn never_accepted(code: Code) -> bool {
    matches!(
        code,
        Code::NotFound
            | Code::PermissionDenied
            | Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::AlreadyExists
            | Code::OutOfRange
    )
}
