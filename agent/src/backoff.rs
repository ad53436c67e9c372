//! Exponential backoff with jitter, used for every transient failure talking
//! to the broker (connection refused, `Unavailable`, timeouts).

use std::time::Duration;

/// First delay after a failure: short, so a blip (a broker restart, one
/// dropped connection) costs the agent almost nothing.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);

/// Longest delay between two attempts. A broker that is away for a long time
/// is still tried this often, so the agent resumes within seconds of its
/// return, while thousands of agents knocking on a down broker stay cheap.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The shape of a backoff: where it starts and where it stops growing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Cap on the delay, however many failures in a row.
    pub max: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: INITIAL_BACKOFF,
            max: MAX_BACKOFF,
        }
    }
}

/// Delays for one sequence of failures: each doubles the ceiling until
/// [`BackoffConfig::max`]; [`Backoff::reset`] after a success.
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    failures: u32,
}

impl Backoff {
    /// A backoff that has seen no failure yet.
    pub fn new(config: BackoffConfig) -> Self {
        Backoff {
            config,
            failures: 0,
        }
    }

    /// The longest the next delay can be: `initial × 2^failures`, capped.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32 << self.failures.min(31);
        self.config
            .initial
            .saturating_mul(factor)
            .min(self.config.max)
    }

    /// Records a failure and returns how long to wait before trying again:
    /// a random duration between half the ceiling and the ceiling. The jitter
    /// spreads out agents cut off by the same outage, so they do not all come
    /// back in the same instant and knock the broker over again.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let high = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let low = high / 2;
        if low >= high {
            return ceiling;
        }
        Duration::from_nanos(rand::random_range(low..=high))
    }

    /// Failures seen since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Forgets past failures, after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BackoffConfig {
        BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }

    #[test]
    fn ceiling_doubles_until_the_cap() {
        let mut backoff = Backoff::new(config());
        let mut ceilings = Vec::new();
        for _ in 0..10 {
            ceilings.push(backoff.ceiling().as_millis());
            backoff.next_delay();
        }
        assert_eq!(
            ceilings,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]
        );
    }

    #[test]
    fn delays_are_jittered_within_half_the_ceiling_and_the_ceiling() {
        let mut backoff = Backoff::new(config());
        for _ in 0..200 {
            let ceiling = backoff.ceiling();
            let delay = backoff.next_delay();
            assert!(delay <= ceiling, "{delay:?} > {ceiling:?}");
            assert!(delay >= ceiling / 2, "{delay:?} < {ceiling:?} / 2");
        }
        // After many failures the delay never passes the cap, and no
        // arithmetic overflows.
        assert!(backoff.next_delay() <= Duration::from_secs(10));
        assert_eq!(backoff.failures(), 201);
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::new(config());
        for _ in 0..5 {
            backoff.next_delay();
        }
        backoff.reset();
        assert_eq!(backoff.failures(), 0);
        assert_eq!(backoff.ceiling(), Duration::from_millis(100));
    }
}
