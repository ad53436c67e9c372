//! Waiting for a condition in tests: polled, with a deadline and a message
//! that says what never happened. Never a blind sleep for readiness.

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `condition` every `every` until it holds; panics after `timeout`
/// with `what` and the `context` (e.g. a process's log tail).
pub async fn eventually<F, Fut>(
    timeout: Duration,
    every: Duration,
    what: &str,
    context: impl Fn() -> String,
    mut condition: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !condition().await {
        assert!(
            started.elapsed() < timeout,
            "{what} within {timeout:?}:\n{}",
            context()
        );
        tokio::time::sleep(every).await;
    }
}
