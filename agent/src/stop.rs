//! Stopping in order: how far the agent is in its stop (as the caller's
//! shutdown futures say), letting running tasks finish or releasing them,
//! and giving the reporter a last chance to deliver.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::counters::Counters;
use crate::outbox::Outbox;
use crate::reporter::make_durable;

/// Where the agent is in its stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum StopPhase {
    /// Taking work.
    Running,
    /// Asked to stop: no new work, running tasks finish.
    Stopping,
    /// Asked again: release running tasks and exit now.
    Forced,
}

/// Watches the stop phase. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct StopSignal {
    receiver: watch::Receiver<StopPhase>,
    /// Shared by every clone: the caller's signals and the agent itself
    /// (refused by the broker) move the stop on.
    sender: Arc<watch::Sender<StopPhase>>,
}

impl StopSignal {
    /// A signal in [`StopPhase::Running`].
    pub(crate) fn new() -> Self {
        let (sender, receiver) = watch::channel(StopPhase::Running);
        StopSignal {
            receiver,
            sender: Arc::new(sender),
        }
    }

    /// Moves the stop on to `phase`; never back (a forced stop stays forced
    /// when a signal asks for a graceful one afterwards).
    pub(crate) fn advance(&self, phase: StopPhase) {
        self.sender.send_if_modified(|now| {
            let later = phase > *now;
            if later {
                *now = phase;
            }
            later
        });
    }

    /// Returns once a stop was asked for.
    pub(crate) async fn stopping(&self) {
        self.reached(StopPhase::Stopping).await;
    }

    /// Returns once a forced stop was asked for.
    pub(crate) async fn forced(&self) {
        self.reached(StopPhase::Forced).await;
    }

    /// True once a stop was asked for.
    pub(crate) fn is_stopping(&self) -> bool {
        *self.receiver.borrow() >= StopPhase::Stopping
    }

    async fn reached(&self, phase: StopPhase) {
        let mut receiver = self.receiver.clone();
        // The signal holds the sender, so waiting cannot fail.
        let _ = receiver.wait_for(|now| *now >= phase).await;
    }
}

/// Waits for running workers; after `stop_timeout` or a forced stop, tells
/// them to release their leases, and waits for that.
pub(crate) async fn finish_workers(
    workers: &mut JoinSet<()>,
    stop: &StopSignal,
    stop_timeout: Duration,
    release: &watch::Sender<bool>,
) {
    if !workers.is_empty() {
        tracing::info!(tasks = workers.len(), timeout = ?stop_timeout, "waiting for running tasks to finish");
    }
    let timeout = tokio::time::sleep(stop_timeout);
    tokio::pin!(timeout);
    let mut releasing = false;
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined {
                None => return,
                Some(Err(error)) => tracing::error!(%error, "a worker failed"),
                Some(Ok(())) => {}
            },
            () = &mut timeout, if !releasing => {
                tracing::warn!(tasks = workers.len(), "stop timeout reached; releasing the running tasks");
                releasing = true;
                release.send_replace(true);
            }
            () = stop.forced(), if !releasing => {
                tracing::warn!(tasks = workers.len(), "forced stop; releasing the running tasks");
                releasing = true;
                release.send_replace(true);
            }
        }
    }
}

/// Lets the reporter deliver what is queued, for at most `timeout` (none at
/// all after a forced stop); what is left stays in the outbox, synced to
/// disk.
pub(crate) async fn drain_reports(
    mut reporter: JoinHandle<()>,
    stop: &StopSignal,
    timeout: Duration,
    outbox: &Outbox,
    counters: &Counters,
) {
    tokio::select! {
        biased;
        finished = &mut reporter => {
            if let Err(error) = finished {
                tracing::error!(%error, "the reporter failed");
            }
            return;
        }
        () = stop.forced() => {}
        () = tokio::time::sleep(timeout) => {}
    }
    reporter.abort();
    let _ = reporter.await;
    make_durable(outbox, counters).await;
    let pending = outbox.pending();
    if pending > 0 {
        tracing::warn!(
            pending,
            "results not yet acknowledged stay in the outbox and are sent at the next start"
        );
    }
}
