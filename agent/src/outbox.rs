//! Finished results not yet acknowledged by the broker, one file each in
//! `STATE/outbox/<lease_id>.pb` (a prost-encoded `ReportResultRequest`).
//! A result is written here before it is sent and removed once the broker
//! acknowledged it, so a crash or a broker outage never loses work done.
//!
//! Written, a result survives the agent's own crash (the file is in the
//! kernel's page cache). It survives the machine's crash once synced, and
//! it is synced only when the broker does not acknowledge it at once
//! ([`Outbox::make_durable`], called by the reporter when a delivery fails
//! or is slow, and at a stop with results left): a result acknowledged
//! within its first call needs no disk write at all, and a volunteer's disk
//! is not synced twice per task. A machine crash within that first call
//! loses the result as it loses a running task: the lease expires and the
//! task is reissued (docs/promises.md).

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use prost::Message;
use sha2::{Digest, Sha256};
use wasmgrid_proto::v1::ReportResultRequest;

use crate::durable_file::{remove_leftover_temp_files, sync_dir, sync_file, write_replacing};

/// Extension of a pending report.
const REPORT_EXTENSION: &str = "pb";

/// Extension a report that cannot be decoded is renamed to: kept for a
/// human to look at, never retried.
const CORRUPT_EXTENSION: &str = "corrupt";

/// The outbox directory.
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    dir: PathBuf,
    /// Report files written since they were last synced (with their
    /// directory entry), or found at start and so not known to be synced.
    unsynced: Arc<Mutex<HashSet<PathBuf>>>,
}

impl Outbox {
    /// Opens (creating) the outbox in `dir`.
    pub(crate) fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        remove_leftover_temp_files(dir)?;
        let outbox = Outbox {
            dir: dir.to_owned(),
            unsynced: Arc::default(),
        };
        let found = outbox.report_paths()?;
        outbox.unsynced_files().extend(found);
        Ok(outbox)
    }

    /// Keeps `report` until [`Outbox::remove`]: whole (a crash never leaves
    /// half of it), across the agent's crash at once, and across the
    /// machine's once [`Outbox::make_durable`] synced it.
    pub(crate) fn put(&self, report: &ReportResultRequest) -> io::Result<()> {
        let path = self.path(&report.lease_id);
        write_replacing(&path, &report.encode_to_vec())?;
        // After the write: a sync running meanwhile may have taken the old
        // content for this name; the new one is synced by the next.
        self.unsynced_files().insert(path);
        Ok(())
    }

    /// Forgets the report of `lease_id` (acknowledged, or never acceptable).
    pub(crate) fn remove(&self, lease_id: &str) -> io::Result<()> {
        let path = self.path(lease_id);
        self.unsynced_files().remove(&path);
        match std::fs::remove_file(path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    /// Syncs every report written since its last sync, and the directory
    /// that names them, so they survive a crash of the machine; returns how
    /// many reports it synced. Writes and removals wait meanwhile (this is
    /// the slow path: the broker did not acknowledge them at once).
    pub(crate) fn make_durable(&self) -> io::Result<u64> {
        let mut unsynced = self.unsynced_files();
        let mut synced = Vec::with_capacity(unsynced.len());
        for path in unsynced.iter() {
            match sync_file(path) {
                Ok(()) => synced.push(path.clone()),
                // Acknowledged and removed meanwhile.
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
        if !synced.is_empty() {
            sync_dir(&self.dir)?;
        }
        unsynced.clear();
        Ok(synced.len() as u64)
    }

    fn unsynced_files(&self) -> MutexGuard<'_, HashSet<PathBuf>> {
        self.unsynced.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every pending report, in file name order. A file that does not
    /// decode to a report of the lease it is named after is renamed to
    /// `*.corrupt` with a warning, and skipped.
    pub(crate) fn load_all(&self) -> io::Result<Vec<ReportResultRequest>> {
        let mut paths = self.report_paths()?;
        paths.sort();
        let mut reports = Vec::with_capacity(paths.len());
        for path in paths {
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(error),
            };
            match ReportResultRequest::decode(bytes.as_slice()) {
                Ok(report) if path == self.path(&report.lease_id) => reports.push(report),
                Ok(_) => self.set_aside(&path, "it holds another lease's report"),
                Err(error) => self.set_aside(&path, &error.to_string()),
            }
        }
        Ok(reports)
    }

    /// How many reports are pending.
    pub(crate) fn len(&self) -> io::Result<usize> {
        Ok(self.report_paths()?.len())
    }

    /// How many reports are pending, 0 if the outbox cannot be read.
    pub(crate) fn pending(&self) -> u64 {
        self.len().map_or(0, |n| n as u64)
    }

    fn report_paths(&self) -> io::Result<Vec<PathBuf>> {
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|ext| ext == REPORT_EXTENSION) {
                paths.push(path);
            }
        }
        Ok(paths)
    }

    fn set_aside(&self, path: &Path, why: &str) {
        let aside = path.with_extension(CORRUPT_EXTENSION);
        tracing::warn!(file = %path.display(), why, renamed_to = %aside.display(), "skipping an unreadable report in the outbox");
        if let Err(error) = std::fs::rename(path, &aside) {
            tracing::warn!(file = %path.display(), %error, "cannot set the unreadable report aside");
        }
    }

    /// The file of `lease_id`'s report. Lease ids come from the broker: one
    /// that is not a plain file name is replaced by its sha256, so no id can
    /// point outside the outbox.
    fn path(&self, lease_id: &str) -> PathBuf {
        let plain = !lease_id.is_empty()
            && lease_id.len() <= 128
            && !lease_id.starts_with('.')
            && lease_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        let name = if plain {
            lease_id.to_owned()
        } else {
            format!(
                "sha256-{}",
                hex::encode(Sha256::digest(lease_id.as_bytes()))
            )
        };
        self.dir.join(format!("{name}.{REPORT_EXTENSION}"))
    }
}

#[cfg(test)]
mod tests {
    use wasmgrid_proto::v1::{TaskStatus, TaskStatusKind, Usage};

    use super::*;

    fn report(lease_id: &str, output: &[u8]) -> ReportResultRequest {
        ReportResultRequest {
            lease_id: lease_id.into(),
            status: Some(TaskStatus {
                kind: TaskStatusKind::Ok as i32,
                ..TaskStatus::default()
            }),
            output: output.to_vec(),
            stderr: Vec::new(),
            task: None,
            usage: Some(Usage {
                fuel_consumed: 42,
                ..Usage::default()
            }),
        }
    }

    #[test]
    fn reports_survive_a_reopen_until_removed() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let outbox = Outbox::open(dir.path())?;
        outbox.put(&report("lease-b", b"two"))?;
        outbox.put(&report("lease-a", b"one"))?;
        outbox.put(&report("../../escape", b"three"))?;

        let reopened = Outbox::open(dir.path())?;
        let mut loaded = reopened.load_all()?;
        loaded.sort_by(|a, b| a.lease_id.cmp(&b.lease_id));
        assert_eq!(
            loaded,
            [
                report("../../escape", b"three"),
                report("lease-a", b"one"),
                report("lease-b", b"two")
            ]
        );
        // The hostile id stayed inside the outbox.
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 3);

        reopened.remove("lease-a")?;
        reopened.remove("lease-a")?; // removing twice is fine
        reopened.remove("../../escape")?;
        assert_eq!(reopened.load_all()?, [report("lease-b", b"two")]);
        assert_eq!(reopened.len()?, 1);
        Ok(())
    }

    #[test]
    fn make_durable_syncs_each_report_once_after_each_write() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let outbox = Outbox::open(dir.path())?;
        outbox.put(&report("a", b"1"))?;
        outbox.put(&report("b", b"2"))?;
        assert_eq!(outbox.make_durable()?, 2);
        assert_eq!(outbox.make_durable()?, 0);

        outbox.put(&report("a", b"rewritten"))?;
        outbox.put(&report("c", b"3"))?;
        outbox.remove("b")?;
        assert_eq!(
            outbox.make_durable()?,
            2,
            "the rewritten one and the new one"
        );

        // Reports found at start (an earlier run's) are not known synced.
        let reopened = Outbox::open(dir.path())?;
        assert_eq!(reopened.make_durable()?, 2);
        assert_eq!(reopened.load_all()?.len(), 2);
        Ok(())
    }

    #[test]
    fn rewriting_a_report_replaces_it() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let outbox = Outbox::open(dir.path())?;
        outbox.put(&report("lease", b"first"))?;
        outbox.put(&report("lease", b"second"))?;
        assert_eq!(outbox.load_all()?, [report("lease", b"second")]);
        Ok(())
    }

    #[test]
    fn corrupt_report_is_skipped_and_set_aside() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let outbox = Outbox::open(dir.path())?;
        outbox.put(&report("good", b"ok"))?;
        std::fs::write(
            dir.path().join("garbage.pb"),
            [0xff, 0xff, 0xff, 0x0f, 0x02],
        )?;
        // A valid report under the wrong name is not trusted either.
        std::fs::write(
            dir.path().join("renamed.pb"),
            report("other", b"x").encode_to_vec(),
        )?;

        assert_eq!(outbox.load_all()?, [report("good", b"ok")]);
        assert!(dir.path().join("garbage.corrupt").exists());
        assert!(dir.path().join("renamed.corrupt").exists());
        // Set aside: not seen again.
        assert_eq!(outbox.load_all()?, [report("good", b"ok")]);
        assert_eq!(outbox.len()?, 1);
        Ok(())
    }
}
