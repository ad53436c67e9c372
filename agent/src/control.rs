//! Controlling a running agent from another process, through files in its
//! state directory (the same on every OS, no port to open): a `paused`
//! marker the work loop checks before asking for work, and `status.json`,
//! which the running agent rewrites every second — what `wasmgrid-agent
//! status`, `pause` and `resume` read and write.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::durable_file::{write_atomically, write_replacing};

/// The marker file: while it exists, the agent takes no new work.
pub const PAUSED_FILE: &str = "paused";
/// The running agent's status, rewritten every [`STATUS_INTERVAL`].
pub const STATUS_FILE: &str = "status.json";
/// How often a running agent rewrites its status.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(1);
/// A status older than this is an agent that is not running (it was killed,
/// or its machine stopped): a live one rewrites it every second.
pub const STATUS_STALE_AFTER: Duration = Duration::from_secs(5);

/// Pauses the agent of `state_dir`: it finishes what runs and takes no new
/// work until [`resume`]. Works whether the agent runs or not.
pub fn pause(state_dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(state_dir)?;
    write_atomically(
        &state_dir.join(PAUSED_FILE),
        b"paused by wasmgrid-agent pause\n",
    )
}

/// Lets a paused agent take work again; `false` when it was not paused.
pub fn resume(state_dir: &Path) -> io::Result<bool> {
    match std::fs::remove_file(state_dir.join(PAUSED_FILE)) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// Whether the agent of `state_dir` is paused.
pub fn is_paused(state_dir: &Path) -> bool {
    state_dir.join(PAUSED_FILE).exists()
}

/// A task the agent is working on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningTask {
    pub lease_id: String,
    pub workload_id: String,
    pub index: u32,
    pub started_unix_ms: i64,
}

/// What a running agent says of itself in `status.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub pid: u32,
    pub broker: String,
    pub agent_id: String,
    pub updated_unix_ms: i64,
    pub paused: bool,
    pub slots: usize,
    pub memory_bytes: u64,
    /// The last time the broker answered a request for work.
    pub broker_answered_unix_ms: Option<i64>,
    pub running: Vec<RunningTask>,
    pub tasks_run: u64,
    pub tasks_ok: u64,
    pub tasks_failed: u64,
    pub fuel_consumed: u64,
    /// Results finished but not yet acknowledged by the broker.
    pub reports_pending: u64,
}

impl AgentStatus {
    /// Whether this status was written recently enough to say the agent
    /// runs.
    pub fn is_fresh(&self) -> bool {
        let age_ms = now_unix_ms().saturating_sub(self.updated_unix_ms);
        u128::try_from(age_ms).unwrap_or(0) <= STATUS_STALE_AFTER.as_millis()
    }
}

/// The status as `wasmgrid-agent status` prints it.
pub fn status_text(status: &AgentStatus) -> String {
    let ago = |unix_ms: i64| {
        let seconds = now_unix_ms().saturating_sub(unix_ms).max(0) as f64 / 1000.0;
        format!("{seconds:.1} s ago")
    };
    let mut text = format!(
        "agent       {} (pid {})\nbroker      {} (answered {})\nstate       {}\n\
         capacity    {} slots, {} bytes of memory\n\
         tasks       {} run, {} ok, {} failed, {} fuel; {} results waiting for the broker\n\
         running     {}\n",
        status.agent_id,
        status.pid,
        status.broker,
        status
            .broker_answered_unix_ms
            .map_or_else(|| "never".to_owned(), ago),
        if status.paused {
            "paused (no new work; `wasmgrid-agent resume`)"
        } else {
            "working"
        },
        status.slots,
        status.memory_bytes,
        status.tasks_run,
        status.tasks_ok,
        status.tasks_failed,
        status.fuel_consumed,
        status.reports_pending,
        status.running.len(),
    );
    for task in &status.running {
        text.push_str(&format!(
            "  {} task {} (lease {}, started {})\n",
            task.workload_id,
            task.index,
            task.lease_id,
            ago(task.started_unix_ms)
        ));
    }
    text
}

/// The last status the agent of `state_dir` wrote, if any.
pub fn read_status(state_dir: &Path) -> io::Result<Option<AgentStatus>> {
    let text = match std::fs::read_to_string(status_path(state_dir)) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
}

/// Writes the status (atomically: a reader never sees half of it).
pub(crate) fn write_status(state_dir: &Path, status: &AgentStatus) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(status).map_err(io::Error::other)?;
    // Rewritten every second and worthless after a crash: not synced.
    write_replacing(&status_path(state_dir), &json)
}

/// Removes the status: the agent stopped.
pub(crate) fn clear_status(state_dir: &Path) {
    let _ = std::fs::remove_file(status_path(state_dir));
}

fn status_path(state_dir: &Path) -> PathBuf {
    state_dir.join(STATUS_FILE)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The tasks running now, by lease, kept by the workers for the status.
#[derive(Debug, Default)]
pub(crate) struct RunningTasks(Mutex<BTreeMap<String, RunningTask>>);

impl RunningTasks {
    pub(crate) fn started(&self, task: RunningTask) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(task.lease_id.clone(), task);
    }

    pub(crate) fn ended(&self, lease_id: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(lease_id);
    }

    pub(crate) fn list(&self) -> Vec<RunningTask> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_and_resume_toggle_the_marker() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(!is_paused(dir.path()));
        pause(dir.path()).expect("pause");
        assert!(is_paused(dir.path()));
        assert!(resume(dir.path()).expect("resume"));
        assert!(!is_paused(dir.path()));
        assert!(!resume(dir.path()).expect("resume again"), "was not paused");
    }

    #[test]
    fn the_status_round_trips_and_ages() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(read_status(dir.path()).expect("read"), None);
        let status = AgentStatus {
            pid: 7,
            updated_unix_ms: now_unix_ms(),
            running: vec![RunningTask {
                lease_id: "l-1".into(),
                workload_id: "w-1".into(),
                index: 3,
                started_unix_ms: 1,
            }],
            ..AgentStatus::default()
        };
        write_status(dir.path(), &status).expect("write");
        let read = read_status(dir.path()).expect("read").expect("a status");
        assert_eq!(read, status);
        assert!(read.is_fresh());
        let old = AgentStatus {
            updated_unix_ms: now_unix_ms() - 60_000,
            ..status
        };
        assert!(!old.is_fresh());
        clear_status(dir.path());
        assert_eq!(read_status(dir.path()).expect("read"), None);
    }
}
