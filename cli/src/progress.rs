//! How a workload's progress is shown, shared by `status`, `wait` and
//! `demo`: a live indicatif bar on a terminal, plain text lines otherwise
//! (logs, pipes, tests), and the words for states and counts.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use wasmgrid_proto::v1::{WorkloadState, WorkloadStatus};

/// Width of the bar, in characters, both drawn and plain.
const BAR_WIDTH: usize = 40;

/// The live bar: elapsed time, the bar (ended tasks), and the counts.
const BAR_TEMPLATE: &str =
    "{spinner:.green} {elapsed_precise} [{bar:40.cyan/blue}] {percent:>3}% {msg}";

/// Least time between two plain progress lines: often enough to see a
/// workload move in a log, rarely enough not to flood it.
const PLAIN_LINE_INTERVAL: Duration = Duration::from_secs(2);

/// The state as a word, e.g. `running`.
pub fn state_name(state: i32) -> &'static str {
    match WorkloadState::try_from(state) {
        Ok(WorkloadState::Running) => "running",
        Ok(WorkloadState::Done) => "done",
        Ok(WorkloadState::Failed) => "failed",
        Ok(WorkloadState::Cancelled) => "cancelled",
        Ok(WorkloadState::Unspecified) | Err(_) => "unknown",
    }
}

/// Whether the workload has ended: done, failed or cancelled.
pub fn has_ended(status: &WorkloadStatus) -> bool {
    matches!(
        status.state(),
        WorkloadState::Done | WorkloadState::Failed | WorkloadState::Cancelled
    )
}

/// The task counts, e.g. `45/100 done, 3 running, 50 queued, 2 failed`.
pub fn counts_text(status: &WorkloadStatus) -> String {
    format!(
        "{}/{} done, {} running, {} queued, {} failed",
        status.done, status.total, status.running, status.queued, status.failed
    )
}

/// Share of tasks that have ended (done or failed), in `0.0..=1.0`.
fn finished_fraction(status: &WorkloadStatus) -> f64 {
    if status.total == 0 {
        return 1.0;
    }
    (f64::from(status.done) + f64::from(status.failed)) / f64::from(status.total)
}

/// A text bar for places without a terminal, e.g.
/// `[################........................]  40% 40/100 done, …`.
pub fn plain_bar(status: &WorkloadStatus) -> String {
    let fraction = finished_fraction(status).clamp(0.0, 1.0);
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "fraction is in 0..=1, so the product is in 0..=BAR_WIDTH"
    )]
    let filled = (fraction * BAR_WIDTH as f64).floor() as usize;
    format!(
        "[{}{}] {:>3}% {}",
        "#".repeat(filled),
        ".".repeat(BAR_WIDTH - filled),
        (fraction * 100.0).floor(),
        counts_text(status)
    )
}

/// The lines listing failed tasks, at most `limit` of them and a count of
/// the rest.
pub fn failure_lines(status: &WorkloadStatus, limit: usize) -> Vec<String> {
    let mut lines: Vec<String> = status
        .failures
        .iter()
        .take(limit)
        .map(|failure| format!("task {} failed: {}", failure.index, failure.reason))
        .collect();
    if status.failures.len() > limit {
        lines.push(format!(
            "… and {} more failed tasks",
            status.failures.len() - limit
        ));
    }
    lines
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(BAR_TEMPLATE)
        .map(|style| style.progress_chars("#>-"))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Length and position of the bar: tasks that have ended count as progress.
fn bar_position(status: &WorkloadStatus) -> (u64, u64) {
    (
        u64::from(status.total),
        u64::from(status.done) + u64::from(status.failed),
    )
}

/// Prints the progress once on stderr: the bar drawn by indicatif on a
/// terminal, a plain bar line otherwise.
pub fn draw_once(status: &WorkloadStatus) {
    if std::io::stderr().is_terminal() {
        let (length, position) = bar_position(status);
        let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr())
            .with_style(bar_style())
            .with_position(position)
            .with_message(counts_text(status));
        bar.abandon();
    } else {
        eprintln!("{}", plain_bar(status));
    }
}

/// A bar that follows a workload as its status changes.
#[derive(Debug)]
pub struct LiveProgress {
    /// `None` when stderr is not a terminal: plain lines are printed instead.
    bar: Option<ProgressBar>,
    last_plain: Option<(Instant, String)>,
}

impl LiveProgress {
    /// A bar on stderr, or plain lines when stderr is not a terminal.
    pub fn new() -> LiveProgress {
        let bar = std::io::stderr().is_terminal().then(|| {
            // Length 1, not 0: indicatif shows an empty bar as 100% done.
            let bar = ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stderr())
                .with_style(bar_style())
                .with_message("waiting for the first status");
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        LiveProgress {
            bar,
            last_plain: None,
        }
    }

    /// Shows a new status.
    pub fn update(&mut self, status: &WorkloadStatus) {
        match &self.bar {
            Some(bar) => {
                let (length, position) = bar_position(status);
                bar.set_length(length);
                bar.set_position(position);
                bar.set_message(counts_text(status));
            }
            None => {
                let line = plain_bar(status);
                let due = match &self.last_plain {
                    None => true,
                    Some((at, last)) => *last != line && at.elapsed() >= PLAIN_LINE_INTERVAL,
                };
                if due || has_ended(status) {
                    self.print_plain(line);
                }
            }
        }
    }

    /// Prints a message above the bar without disturbing it.
    pub fn println(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{message}")),
            None => eprintln!("{message}"),
        }
    }

    /// Leaves the bar (or a last plain line) showing the final status.
    pub fn finish(&mut self, status: &WorkloadStatus) {
        match self.bar.take() {
            Some(bar) => {
                let (length, position) = bar_position(status);
                bar.set_length(length);
                bar.set_position(position);
                bar.abandon_with_message(counts_text(status));
            }
            None => {
                let line = plain_bar(status);
                if self
                    .last_plain
                    .as_ref()
                    .is_none_or(|(_, last)| *last != line)
                {
                    self.print_plain(line);
                }
            }
        }
    }

    fn print_plain(&mut self, line: String) {
        eprintln!("{line}");
        self.last_plain = Some((Instant::now(), line));
    }
}

impl Drop for LiveProgress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use wasmgrid_proto::v1::TaskFailure;

    use super::*;

    fn status(total: u32, done: u32, failed: u32) -> WorkloadStatus {
        WorkloadStatus {
            total,
            done,
            failed,
            running: 3,
            queued: total - done - failed - 3,
            state: WorkloadState::Running as i32,
            ..WorkloadStatus::default()
        }
    }

    #[test]
    fn the_plain_bar_fills_with_finished_tasks() {
        assert_eq!(
            plain_bar(&status(100, 45, 5)),
            format!(
                "[{}{}]  50% 45/100 done, 3 running, 47 queued, 5 failed",
                "#".repeat(20),
                ".".repeat(20)
            )
        );
        assert!(plain_bar(&status(10, 0, 0)).starts_with(&format!("[{}]   0%", ".".repeat(40))));
        let all_done = WorkloadStatus {
            total: 3,
            done: 3,
            ..WorkloadStatus::default()
        };
        assert!(plain_bar(&all_done).starts_with(&format!("[{}] 100%", "#".repeat(40))));
    }

    #[test]
    fn states_and_failures_read_as_words() {
        assert_eq!(state_name(WorkloadState::Done as i32), "done");
        assert_eq!(state_name(99), "unknown");
        let mut failing = status(10, 0, 3);
        failing.failures = (0..3)
            .map(|index| TaskFailure {
                index,
                reason: "out of fuel".into(),
            })
            .collect();
        assert_eq!(
            failure_lines(&failing, 2),
            [
                "task 0 failed: out of fuel",
                "task 1 failed: out of fuel",
                "… and 1 more failed tasks"
            ]
        );
        assert!(!has_ended(&failing));
    }

    #[test]
    fn the_bar_template_is_valid() {
        ProgressStyle::with_template(BAR_TEMPLATE).expect("template parses");
    }
}
