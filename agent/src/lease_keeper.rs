//! The lease keeper: extends a lease with `ExtendLease` every third of its
//! length while its worker fetches and runs, and notices when the lease is
//! gone (revoked, cancelled, or expired because the broker was unreachable).

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::Code;
use wasmgrid_proto::v1::ExtendLeaseRequest;

use crate::backoff::Backoff;
use crate::client::{BrokerClient, Retry};

/// Shortest interval between extensions, whatever lease the broker grants:
/// a broker granting 0 ms leases must not turn the agent into a busy loop.
const MIN_EXTEND_INTERVAL: Duration = Duration::from_millis(100);

/// Lease length assumed when the broker states none (and its deadline is in
/// the past): extend often, in case.
const FALLBACK_LEASE: Duration = Duration::from_secs(3);

/// Longest lease length the agent believes: a broker stating more (a bug, or
/// `u64::MAX`) must neither overflow the agent's clock arithmetic nor stop
/// it from extending for days.
const MAX_LEASE: Duration = Duration::from_secs(3600);

/// Keeps one lease alive until dropped.
#[derive(Debug)]
pub(crate) struct LeaseKeeper {
    lost: watch::Receiver<Option<String>>,
    task: JoinHandle<()>,
}

impl LeaseKeeper {
    /// Starts extending `lease_id`, which lasts `lease_ms` from each
    /// extension (or until `deadline_unix_ms` when `lease_ms` is 0).
    pub(crate) fn spawn(
        client: BrokerClient,
        lease_id: String,
        lease_ms: u64,
        deadline_unix_ms: i64,
    ) -> Self {
        let length = lease_length(lease_ms, deadline_unix_ms);
        let (lost_sender, lost) = watch::channel(None);
        let task = tokio::spawn(async move {
            let why = keep(&client, &lease_id, length).await;
            tracing::warn!(lease = %lease_id, why, "lease lost; the result will not count");
            let _ = lost_sender.send(Some(why));
        });
        LeaseKeeper { lost, task }
    }

    /// Why the lease is gone, if it is.
    pub(crate) fn lost_reason(&self) -> Option<String> {
        self.lost.borrow().clone()
    }

    /// Returns why the lease is gone, once it is.
    pub(crate) async fn lost(&self) -> String {
        let mut lost = self.lost.clone();
        let why = match lost.wait_for(Option::is_some).await {
            Ok(why) => why.clone(),
            Err(_) => None,
        };
        match why {
            Some(why) => why,
            None => std::future::pending().await,
        }
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How long the lease lasts after each extension, by the agent's own clock.
/// The broker's absolute deadline is only a fallback: clocks of volunteer
/// machines cannot be trusted to agree with the broker's.
fn lease_length(lease_ms: u64, deadline_unix_ms: i64) -> Duration {
    if lease_ms > 0 {
        return Duration::from_millis(lease_ms).min(MAX_LEASE);
    }
    let now_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |now| i64::try_from(now.as_millis()).unwrap_or(i64::MAX));
    u64::try_from(deadline_unix_ms.saturating_sub(now_unix_ms))
        .ok()
        .filter(|&ms| ms > 0)
        .map_or(FALLBACK_LEASE, Duration::from_millis)
        .min(MAX_LEASE)
}

/// Extends the lease until it is lost; returns why it was.
async fn keep(client: &BrokerClient, lease_id: &str, length: Duration) -> String {
    let interval = (length / 3).max(MIN_EXTEND_INTERVAL);
    let mut expires = Instant::now() + length;
    let mut backoff = Backoff::new(client.backoff);
    let mut next = Instant::now() + interval;
    loop {
        tokio::time::sleep_until(next).await;
        if Instant::now() >= expires {
            return "no extension reached the broker before the lease ran out".to_owned();
        }
        let request = ExtendLeaseRequest {
            lease_id: lease_id.to_owned(),
        };
        let extended = client
            .call("extend lease", Retry::Once, |mut grpc| {
                let request = request.clone();
                async move { grpc.extend_lease(request).await }
            })
            .await;
        match extended {
            Ok(_) => {
                tracing::debug!(lease = %lease_id, "lease extended");
                expires = Instant::now() + length;
                backoff.reset();
                next = Instant::now() + interval;
            }
            Err(status)
                if matches!(
                    status.code(),
                    Code::NotFound | Code::FailedPrecondition | Code::PermissionDenied
                ) =>
            {
                return format!("the broker refused the extension: {}", status.message());
            }
            Err(status) => {
                tracing::warn!(lease = %lease_id, code = ?status.code(), detail = status.message(), "cannot extend the lease; retrying");
                next = Instant::now() + backoff.next_delay().min(interval);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_length_is_bounded() {
        assert_eq!(lease_length(9_000, 0), Duration::from_secs(9));
        assert_eq!(lease_length(u64::MAX, 0), MAX_LEASE);
        assert_eq!(lease_length(0, i64::MAX), MAX_LEASE);
        assert_eq!(lease_length(0, 0), FALLBACK_LEASE);
    }
}
