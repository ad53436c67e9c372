//! The broker's disk fails under it. Full: the broker refuses new work with
//! a clear, retryable gRPC status, keeps serving what it has, loses nothing
//! it acknowledged, and carries on once there is space. Read-only: the
//! broker will not start on it and says why; its store is intact once the
//! disk is writable again. (Linux refuses to remount a file system
//! read-only while the store has it open for writing.) The data dir is a small tmpfs mounted for the test
//! (this needs root, as on the CI machines; elsewhere the test says it was
//! skipped).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tonic::Code;
use wasmgrid_proto::v1;
use wasmgrid_tests::binaries::binary;
use wasmgrid_tests::prime_counts::PI_OF_1E6;
use wasmgrid_tests::queries::{end_value, workload_count};
use wasmgrid_tests::{AgentProcess, BrokerProcess, Submission, issuer, results, wait_until_final};

const TIMEOUT: Duration = Duration::from_secs(60);

/// A tmpfs mounted for the test's life.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).expect("mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .is_ok_and(|status| status.success());
        mounted.then(|| Tmpfs {
            path: path.to_owned(),
        })
    }

    fn remount(&self, mode: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.path)
            .status()
            .expect("mount");
        assert!(status.success(), "remount {mode}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fills the file system at `dir` with a file; returns its path.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0u8; 64 << 10];
    while file.write_all(&chunk).is_ok() {}
    // What is left is less than a chunk: fill it byte-sized.
    while file.write_all(&[0]).is_ok() {}
    let _ = file.sync_all();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_then_read_only_disk_refuses_new_work_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(disk) = Tmpfs::mount(&dir.path().join("broker"), "16m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root?)");
        return;
    };
    let broker = BrokerProcess::start(&disk.path, &[]);
    let url = broker.url();
    let agent = AgentProcess::start(&url, &dir.path().join("agent"), "agent", 2, &[]);
    let mut client = issuer(&url).await;

    let first = Submission::primes(1_000_000, 4)
        .submit(&mut client)
        .await
        .expect("submit");
    wait_until_final(&mut client, &first, TIMEOUT).await;

    // Full: a submit is refused as retryable, and nothing of it is stored.
    let filler = fill(&disk.path);
    let mut big = Submission::primes(1_000_000, 4);
    big.inputs = (0..8).map(|_| vec![b' '; 512 << 10]).collect();
    let refused = big
        .submit(&mut client)
        .await
        .expect_err("a full disk refuses the submit");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("disk is full"),
        "{}",
        refused.message()
    );
    assert_eq!(workload_count(&url).await, 1, "nothing of it was stored");
    let (_, end) = results(&mut client, &first).await.expect("still served");
    assert_eq!(end_value(&end), PI_OF_1E6);

    // Space again: the same submit goes through and completes.
    std::fs::remove_file(&filler).expect("free space");
    let second = Submission::primes(1_000_000, 4)
        .submit(&mut client)
        .await
        .expect("submit after space was freed");
    let status = wait_until_final(&mut client, &second, TIMEOUT).await;
    assert_eq!(status.state, v1::WorkloadState::Done as i32, "{status:?}");

    // Read-only: a broker cannot start on it (a store it cannot write is no
    // store), and says why; the data stays intact for when it is writable.
    let mut broker = broker;
    broker.kill9();
    disk.remount("ro");
    let refused = Command::new(binary("wasmgrid-broker"))
        .args(["--insecure", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&disk.path)
        .output()
        .expect("broker runs");
    assert!(!refused.status.success(), "started on a read-only data dir");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("Read-only file system"), "{stderr}");

    // Writable again: the same store, with every acknowledged workload.
    disk.remount("rw");
    broker.restart();
    let url = broker.url();
    let mut client = issuer(&url).await;
    let (_, end) = results(&mut client, &second)
        .await
        .expect("served after the restart");
    assert_eq!(end_value(&end), PI_OF_1E6);
    let third = Submission::primes(1_000_000, 4)
        .submit(&mut client)
        .await
        .expect("submit after the disk is writable again");
    let status = wait_until_final(&mut client, &third, TIMEOUT).await;
    assert_eq!(status.state, v1::WorkloadState::Done as i32, "{status:?}");
    assert_eq!(workload_count(&url).await, 3);
    assert!(
        !broker.log_tail().contains("panicked"),
        "{}",
        broker.log_tail()
    );
    drop(agent);
    drop(broker);
}
