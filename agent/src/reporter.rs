//! The reporter: sends finished results to the broker in the background,
//! in order, retrying with backoff while the broker is away, and removes each
//! from the outbox once the broker acknowledged it.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tonic::{Code, Status};
use wasmgrid_proto::v1::ReportResultRequest;

use crate::backoff::Backoff;
use crate::client::{BrokerClient, Retry};
use crate::counters::{Counters, add};
use crate::outbox::Outbox;
use crate::outdated::required_version;

/// Where workers hand finished (and already persisted) reports.
pub(crate) type ReportSender = mpsc::UnboundedSender<ReportResultRequest>;

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

/// Starts the reporter with the `backlog` left in the outbox by an earlier run.
pub(crate) fn spawn(
    client: BrokerClient,
    outbox: Outbox,
    counters: Arc<Counters>,
    backlog: Vec<ReportResultRequest>,
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
    mut receiver: mpsc::UnboundedReceiver<ReportResultRequest>,
    backlog_done: oneshot::Sender<()>,
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
    loop {
        if backlog_left == 0
            && let Some(done) = backlog_done.take()
        {
            let _ = done.send(());
        }
        while let Ok(report) = receiver.try_recv() {
            queue.push_back(report);
        }
        let Some(report) = queue.front() else {
            match receiver.recv().await {
                Some(report) => {
                    queue.push_back(report);
                    continue;
                }
                None => return,
            }
        };
        match deliver(&client, &counters, report).await {
            Delivery::Done => {
                if let Some(report) = queue.pop_front() {
                    let outbox = outbox.clone();
                    let lease_id = report.lease_id;
                    let removed =
                        tokio::task::spawn_blocking(move || outbox.remove(&lease_id)).await;
                    if let Ok(Err(error)) = removed {
                        tracing::error!(%error, "cannot remove a delivered report from the outbox");
                    }
                }
                backlog_left = backlog_left.saturating_sub(1);
                backoff.reset();
            }
            Delivery::Retry(status) => {
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
                // To the back of the queue: one report the broker keeps
                // failing on must not hold up all the others.
                if let Some(report) = queue.pop_front() {
                    queue.push_back(report);
                }
                let pause = tokio::time::sleep(backoff.next_delay());
                tokio::pin!(pause);
                loop {
                    tokio::select! {
                        () = &mut pause => break,
                        report = receiver.recv(), if !senders_gone => match report {
                            Some(report) => queue.push_back(report),
                            None => senders_gone = true,
                        },
                    }
                }
            }
        }
    }
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
    match sent {
        Ok(response) => {
            add(&counters.reports_acknowledged, 1);
            if response.counted {
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
