//! Child processes that must not outlive the command that started them:
//! `demo` runs a broker and agents this way. Each writes its stdout and
//! stderr to a log file; dropping the group stops whatever still runs.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// How long a child has to exit after SIGTERM before it gets SIGKILL:
/// enough for an agent to give its leases back and for the broker to
/// checkpoint its store, short enough that a stuck child does not hang the
/// command.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// How often stopping children checks whether they have exited.
const EXIT_POLL: Duration = Duration::from_millis(20);

/// One started program.
#[derive(Debug)]
struct Running {
    name: String,
    child: Child,
    /// Set once the child has been reaped.
    exit: Option<ExitStatus>,
}

/// A group of children, stopped together (SIGTERM, then SIGKILL after
/// [`STOP_GRACE`]) by [`Children::stop`] or, on every other path, on drop.
#[derive(Debug, Default)]
pub struct Children {
    running: Vec<Running>,
}

impl Children {
    /// Starts `command` with stdin closed and stdout and stderr appended to
    /// `log`; `name` identifies it in messages.
    pub fn spawn(&mut self, name: &str, command: &mut Command, log: &Path) -> anyhow::Result<()> {
        let file = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let stderr = file.try_clone()?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {name} ({:?})", command.get_program()))?;
        self.running.push(Running {
            name: name.to_owned(),
            child,
            exit: None,
        });
        Ok(())
    }

    /// The first child found to have exited, with its exit status.
    pub fn exited(&mut self) -> Option<(String, ExitStatus)> {
        self.running.iter_mut().find_map(|running| {
            if running.exit.is_none() {
                running.exit = running.child.try_wait().ok().flatten();
            }
            running.exit.map(|status| (running.name.clone(), status))
        })
    }

    /// Asks every child to stop (SIGTERM), waits up to [`STOP_GRACE`] for
    /// them, kills the rest (SIGKILL). Returns the names of the children
    /// that had to be killed.
    pub fn stop(&mut self) -> Vec<String> {
        for running in self
            .running
            .iter_mut()
            .filter(|running| running.exit.is_none())
        {
            if running.child.try_wait().ok().flatten().is_none() {
                terminate(&running.child);
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        let mut killed = Vec::new();
        for running in &mut self.running {
            while running.exit.is_none() {
                running.exit = running.child.try_wait().ok().flatten();
                if running.exit.is_some() {
                    break;
                }
                if Instant::now() >= deadline {
                    let _ = running.child.kill();
                    running.exit = running.child.wait().ok();
                    killed.push(running.name.clone());
                    break;
                }
                std::thread::sleep(EXIT_POLL);
            }
        }
        killed
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGTERM: the programs we start stop gracefully on it.
#[cfg(unix)]
fn terminate(child: &Child) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
}

/// Without signals there is no graceful stop: the grace period passes and
/// the child is killed.
#[cfg(not(unix))]
fn terminate(_child: &Child) {}

/// The last `lines` lines of a log file, or a note saying why there are none.
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) if bytes.is_empty() => "(empty)\n".to_owned(),
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let tail = &all[all.len().saturating_sub(lines)..];
            tail.iter().map(|line| format!("{line}\n")).collect()
        }
        Err(error) => format!("(cannot read {}: {error})\n", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_group_stops_its_children() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("sleeper.log");
        let mut children = Children::default();
        children
            .spawn(
                "sleeper",
                Command::new("sh").args(["-c", "echo $$; exec sleep 60"]),
                &log,
            )
            .expect("sh starts");
        let started = Instant::now();
        let pid = loop {
            if let Ok(pid) = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .trim()
                .parse()
            {
                break nix::unistd::Pid::from_raw(pid);
            }
            assert!(started.elapsed() < Duration::from_secs(10), "sh never ran");
            std::thread::sleep(EXIT_POLL);
        };
        assert!(children.exited().is_none());
        drop(children);
        assert!(started.elapsed() < STOP_GRACE, "sleep stops on SIGTERM");
        assert_eq!(
            nix::sys::signal::kill(pid, None),
            Err(nix::errno::Errno::ESRCH),
            "the child is gone"
        );
    }

    #[test]
    fn an_exited_child_is_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut children = Children::default();
        children
            .spawn(
                "quitter",
                Command::new("sh").args(["-c", "exit 3"]),
                &dir.path().join("quitter.log"),
            )
            .expect("sh starts");
        let started = Instant::now();
        let (name, status) = loop {
            if let Some(exited) = children.exited() {
                break exited;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "sh never exited"
            );
            std::thread::sleep(EXIT_POLL);
        };
        assert_eq!((name.as_str(), status.code()), ("quitter", Some(3)));
        assert!(children.stop().is_empty());
    }

    #[test]
    fn a_log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("x.log");
        std::fs::write(&log, "1\n2\n3\n").expect("write");
        assert_eq!(log_tail(&log, 2), "2\n3\n");
        assert!(log_tail(&dir.path().join("none"), 2).starts_with("(cannot read"));
    }
}
