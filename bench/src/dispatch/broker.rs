//! The broker under test: the release `wasmgrid-broker` binary as a child
//! process on 127.0.0.1 with a fresh data dir, as an operator starts it
//! (embedded SQLite, durable settings as shipped), the bench's connection to
//! it with the admin token, and what it costs: CPU time and resident memory
//! from `/proc/PID`, store size on disk.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use wasmgrid_proto::v1::issuer_service_client::IssuerServiceClient;
use wasmgrid_proto::{Bearer, MAX_MESSAGE_BYTES};

use crate::release_build;

/// The admin token the bench starts every broker with. It only has to be
/// at least 16 characters; the broker is on loopback and lives for one phase.
pub const ADMIN_TOKEN: &str = "wasmgrid-bench-admin-token";

/// How long a broker may take to open its store and listen.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The kernel's clock ticks per second in `/proc/*/stat` (`USER_HZ`): 100 on
/// every Linux architecture the bench runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// The release `wasmgrid-broker`, built (or found up to date) with `cargo
/// build --release -p wasmgrid-broker`.
pub fn build_release_broker() -> Result<PathBuf> {
    release_build::build_release("wasmgrid-broker", "--broker")
}

/// Connects to the broker at `url`: the channel, and the admin token's
/// credentials (which may act for any issuer) for the clients on it.
pub async fn connect_as_admin(url: &str) -> Result<(Channel, Bearer)> {
    let channel = Endpoint::from_shared(url.to_owned())
        .context("broker url")?
        .connect()
        .await
        .with_context(|| format!("connect to {url}"))?;
    let bearer = Bearer::new(ADMIN_TOKEN).map_err(|e| anyhow!("{e}"))?;
    Ok((channel, bearer))
}

/// A channel that sends the admin token with every call.
pub type AdminChannel = InterceptedService<Channel, Bearer>;

/// An issuer client on `channel` with the admin's credentials, taking
/// messages as large as the broker's.
pub fn issuer_client(channel: Channel, bearer: Bearer) -> IssuerServiceClient<AdminChannel> {
    IssuerServiceClient::with_interceptor(channel, bearer)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// A running broker, killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct BrokerProcess {
    child: Child,
    pub data_dir: PathBuf,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl BrokerProcess {
    /// Starts `binary` on a free port of 127.0.0.1 with `data_dir` as its
    /// store, plain gRPC and the bench's admin token, and waits until it
    /// has written its address.
    pub fn start(binary: &Path, data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("create {}", data_dir.display()))?;
        let addr_file = data_dir.join("broker.addr");
        let log = data_dir.with_extension("log");
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let err_file = log_file.try_clone().context("duplicate the log file")?;
        let started = Instant::now();
        let mut child = Command::new(binary)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--insecure")
            .arg("--admin-token")
            .arg(ADMIN_TOKEN)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        let addr = loop {
            if let Ok(text) = std::fs::read_to_string(&addr_file)
                && let Ok(addr) = text.trim().parse()
            {
                break addr;
            }
            if let Some(status) = child.try_wait().context("wait for the broker")? {
                bail!(
                    "the broker exited with {status} before listening:\n{}",
                    log_tail(&log)
                );
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the broker did not start:\n{}", log_tail(&log));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Ok(BrokerProcess {
            child,
            data_dir: data_dir.to_path_buf(),
            addr,
            log,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error when the broker has exited (it must run until killed).
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait().context("wait for the broker")? {
            bail!(
                "the broker exited with {status} during the run:\n{}",
                log_tail(&self.log)
            );
        }
        Ok(())
    }

    /// Resident memory now (`VmRSS`) and at its peak (`VmHWM`), in bytes.
    pub fn memory(&self) -> Option<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        Some(Memory {
            rss: status_kib(&status, "VmRSS:")? * 1024,
            peak_rss: status_kib(&status, "VmHWM:")? * 1024,
        })
    }

    /// The broker's I/O counters (`/proc/PID/io`).
    pub fn io(&self) -> Option<Io> {
        Io::parse(&std::fs::read_to_string(format!("/proc/{}/io", self.pid())).ok()?)
    }

    /// Bytes of every file in the data dir: the database, its WAL and
    /// shared-memory index, and the broker's small files.
    pub fn store_size(&self) -> StoreSize {
        StoreSize::of(&self.data_dir)
    }

    /// The tail of the broker's log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of the broker.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss: u64,
    /// `VmHWM`: the most it was resident since it started.
    pub peak_rss: u64,
}

/// I/O of a process since it started (`/proc/PID/io`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Io {
    /// Read and write system calls (`read`, `pread`, `write`, `pwrite`,
    /// sockets included).
    pub read_calls: u64,
    pub write_calls: u64,
    /// Bytes sent to the storage device (page cache write-back included)
    /// and fetched from it.
    pub disk_read_bytes: u64,
    pub disk_write_bytes: u64,
}

impl Io {
    fn parse(text: &str) -> Option<Self> {
        let field = |key: &str| -> Option<u64> {
            text.lines()
                .find_map(|line| line.strip_prefix(key))?
                .trim()
                .parse()
                .ok()
        };
        Some(Io {
            read_calls: field("syscr:")?,
            write_calls: field("syscw:")?,
            disk_read_bytes: field("read_bytes:")?,
            disk_write_bytes: field("write_bytes:")?,
        })
    }

    /// The counts between `earlier` and `self`.
    pub fn since(&self, earlier: &Io) -> Io {
        Io {
            read_calls: self.read_calls.saturating_sub(earlier.read_calls),
            write_calls: self.write_calls.saturating_sub(earlier.write_calls),
            disk_read_bytes: self.disk_read_bytes.saturating_sub(earlier.disk_read_bytes),
            disk_write_bytes: self
                .disk_write_bytes
                .saturating_sub(earlier.disk_write_bytes),
        }
    }
}

/// The store's size on disk.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreSize {
    /// `broker.sqlite`.
    pub database: u64,
    /// `broker.sqlite-wal`: committed pages not yet checkpointed.
    pub wal: u64,
    /// Every file of the data dir, the two above included.
    pub total: u64,
}

impl StoreSize {
    fn of(dir: &Path) -> Self {
        let mut size = StoreSize::default();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(dir) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(meta) = entry.metadata() else {
                    continue;
                };
                if meta.is_dir() {
                    pending.push(entry.path());
                    continue;
                }
                size.total += meta.len();
                match entry.file_name().to_str() {
                    Some("broker.sqlite") => size.database = meta.len(),
                    Some("broker.sqlite-wal") => size.wal = meta.len(),
                    _ => {}
                }
            }
        }
        size
    }
}

/// utime + stime of a process, in clock ticks.
pub fn process_cpu_ticks(pid: u32) -> Option<f64> {
    stat_cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// utime + stime of this process (its threads; not its children).
pub fn own_cpu_ticks() -> Option<f64> {
    stat_cpu_ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

fn stat_cpu_ticks(stat: &str) -> Option<f64> {
    // Fields after the parenthesised command name: utime is the 12th, then
    // stime.
    let after_name = stat.rsplit_once(')')?.1;
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64)
}

/// Converts clock ticks to a duration.
pub fn ticks_to_duration(ticks: f64) -> Duration {
    Duration::from_secs_f64(ticks.max(0.0) / TICKS_PER_SECOND)
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The last 30 lines of a child process's log, for error messages.
pub(crate) fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_utime_plus_stime_after_the_command_name() {
        // A command name with spaces and a parenthesis, as the kernel
        // writes it.
        let stat = "1234 (tokio (rt) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9";
        assert_eq!(stat_cpu_ticks(stat), Some(325.0));
    }

    #[test]
    fn io_counters_are_read_by_name() {
        let text = "rchar: 10\nwchar: 20\nsyscr: 3\nsyscw: 4\nread_bytes: 4096\n\
                    write_bytes: 8192\ncancelled_write_bytes: 0\n";
        let io = Io::parse(text);
        assert_eq!(
            io,
            Some(Io {
                read_calls: 3,
                write_calls: 4,
                disk_read_bytes: 4096,
                disk_write_bytes: 8192,
            })
        );
    }

    #[test]
    fn status_values_are_read_in_kib() {
        let status = "Name:\tx\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(102_400));
        assert_eq!(status_kib(status, "VmHWM:"), Some(204_800));
        assert_eq!(status_kib(status, "VmSwap:"), None);
    }
}
