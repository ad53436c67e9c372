//! `wasmgrid wait`: follow a workload with a live progress bar until it
//! ends; the exit code says how it ended.

use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use wasmgrid_proto::v1::{WorkloadRequest, WorkloadState, WorkloadStatus};

use crate::client::{Broker, BrokerArgs, is_transient};
use crate::progress::{LiveProgress, counts_text, failure_lines, has_ended};

/// First pause before reconnecting after the progress stream broke.
const RECONNECT_FIRST_DELAY: Duration = Duration::from_millis(250);

/// Longest pause between reconnection attempts: a restarting broker is
/// noticed within seconds without hammering one that is down.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(5);

/// How long the broker may stay unreachable before `wait` gives up: long
/// enough for a broker restart, short enough that a dead broker ends the
/// command with an error rather than a silent hang.
const RECONNECT_GIVE_UP: Duration = Duration::from_secs(300);

/// Failed tasks listed when a workload fails.
const FAILURES_SHOWN: usize = 10;

/// Arguments of `wasmgrid wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The workload id, as printed by `wasmgrid submit`.
    id: String,
    #[command(flatten)]
    broker: BrokerArgs,
}

/// Follows the workload; `Ok(true)` when it is done, `Ok(false)` when it
/// failed or was cancelled.
pub async fn run(args: WaitArgs) -> anyhow::Result<bool> {
    let mut broker = Broker::connect(&args.broker).await?;
    let mut progress = LiveProgress::new();
    let status = follow(&mut broker, &args.id, &mut progress).await?;
    progress.finish(&status);
    report_end(&status);
    Ok(status.state() == WorkloadState::Done)
}

/// Prints how the workload ended, on stderr; returns whether it is done.
pub fn report_end(status: &WorkloadStatus) -> bool {
    let id = &status.workload_id;
    match status.state() {
        WorkloadState::Done => {
            eprintln!("workload {id} done: {}", counts_text(status));
            return true;
        }
        WorkloadState::Cancelled => {
            eprintln!("workload {id} was cancelled: {}", counts_text(status));
        }
        _ => {
            let why = if status.error.is_empty() {
                "no reason given"
            } else {
                &status.error
            };
            eprintln!("workload {id} failed: {why}");
        }
    }
    for line in failure_lines(status, FAILURES_SHOWN) {
        eprintln!("  {line}");
    }
    false
}

/// Follows `WatchProgress` until the workload ends and returns its last
/// status. A stream that breaks (or closes) while the workload runs is
/// opened again, with growing pauses, for up to [`RECONNECT_GIVE_UP`].
pub async fn follow(
    broker: &mut Broker,
    id: &str,
    progress: &mut LiveProgress,
) -> anyhow::Result<WorkloadStatus> {
    let request = WorkloadRequest {
        workload_id: id.to_owned(),
    };
    let mut delay = RECONNECT_FIRST_DELAY;
    let mut unreachable_since: Option<Instant> = None;
    loop {
        let broken = match broker.issuer.watch_progress(request.clone()).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(status)) => {
                            if unreachable_since.take().is_some() {
                                progress.println("reconnected to the broker");
                            }
                            delay = RECONNECT_FIRST_DELAY;
                            progress.update(&status);
                            if has_ended(&status) {
                                return Ok(status);
                            }
                        }
                        Ok(None) => break "the progress stream closed early".to_owned(),
                        Err(status) if is_transient(&status) => {
                            break broker.error(status).to_string();
                        }
                        Err(status) => return Err(broker.error(status)),
                    }
                }
            }
            Err(status) if is_transient(&status) => broker.error(status).to_string(),
            Err(status) => return Err(broker.error(status)),
        };
        let since = *unreachable_since.get_or_insert_with(|| {
            progress.println(&format!(
                "lost the progress stream ({broken}); reconnecting"
            ));
            Instant::now()
        });
        if since.elapsed() >= RECONNECT_GIVE_UP {
            bail!(
                "gave up following workload {id} after {}s without the broker: {broken}",
                RECONNECT_GIVE_UP.as_secs()
            );
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RECONNECT_MAX_DELAY);
    }
}
