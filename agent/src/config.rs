//! [`AgentConfig`]: what the volunteer gives (memory, slots), where the
//! broker is, where the agent keeps its state, and the defaults for each.

use std::fmt;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::backoff::BackoffConfig;
use crate::error::AgentError;
use crate::offer_policy::{BestReturn, OfferPolicy};

/// Memory tasks may use in total when the volunteer does not say: enough for
/// two tasks at the runtime's default 256 MiB limit, little enough that a
/// laptop does not notice.
pub const DEFAULT_MEMORY_BYTES: u64 = 512 << 20;

/// How long a stopping agent lets running tasks finish before it gives their
/// leases back. Long enough for typical tasks (seconds) to complete and be
/// paid; short enough for a shutdown or a reboot to not hang.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Smallest memory an agent can give: one wasm page. Below this no task fits.
pub const MIN_MEMORY_BYTES: u64 = 64 << 10;

/// How the agent runs. Build with [`AgentConfig::new`] and change fields.
#[derive(Clone)]
pub struct AgentConfig {
    /// The broker's URL, e.g. `https://broker.example:7070` (a bare
    /// `host:port` means `http://host:port`, for an `--insecure` broker).
    pub broker: String,
    /// A CA certificate (PEM) to trust for the broker's TLS certificate,
    /// besides the public roots: e.g. a `--dev-tls` broker's
    /// `DATA_DIR/tls/ca.pem`.
    pub ca_cert: Option<PathBuf>,
    /// Where the identity, the module cache, compiled modules and unsent
    /// results live. Survives restarts.
    pub state_dir: PathBuf,
    /// Memory all running tasks may use together, in bytes. The agent only
    /// accepts tasks whose memory limits fit in what is left of it.
    pub memory_bytes: u64,
    /// Tasks run at once, each on its own thread (a core, when busy).
    pub slots: usize,
    /// Tasks leased beyond the slots, waiting for one to free up (BOINC's
    /// work buffer, counted in tasks). Their leases are kept alive by
    /// heartbeat like running ones; their memory is taken from
    /// `memory_bytes` only when they start. `None`: one per slot (see
    /// [`AgentConfig::work_buffer_tasks`]).
    pub work_buffer: Option<usize>,
    /// Name shown to the broker's operator.
    pub name: String,
    /// Who runs the machine (free text, e.g. an e-mail), sent when the agent
    /// registers: the broker can keep replicas of a task off agents of one
    /// owner. Empty when not given.
    pub owner: String,
    /// Percent of the time each task may compute (1 to 100): BOINC-style
    /// duty-cycle throttling, for a machine that should stay cool or quiet.
    pub cpu_percent: u8,
    /// The broker's enrolment secret, sent when registering; empty when the
    /// broker lets any machine join.
    pub enrolment_secret: String,
    /// How long a stop waits for running tasks before releasing their leases.
    pub stop_timeout: Duration,
    /// Delays between retries when the broker is away.
    pub backoff: BackoffConfig,
    /// Which offers to take.
    pub offer_policy: Arc<dyn OfferPolicy>,
    /// Offers paying fewer credits per unit of fuel than this are declined,
    /// whatever the policy; 0 takes any rate.
    pub min_rate: f64,
}

impl fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentConfig")
            .field("broker", &self.broker)
            .field("ca_cert", &self.ca_cert)
            .field("state_dir", &self.state_dir)
            .field("memory_bytes", &self.memory_bytes)
            .field("slots", &self.slots)
            .field("work_buffer", &self.work_buffer)
            .field("name", &self.name)
            .field("owner", &self.owner)
            .field("enrolment_secret", &"<hidden>")
            .field("cpu_percent", &self.cpu_percent)
            .field("stop_timeout", &self.stop_timeout)
            .field("backoff", &self.backoff)
            .field("offer_policy", &self.offer_policy)
            .field("min_rate", &self.min_rate)
            .finish()
    }
}

impl AgentConfig {
    /// Tasks leased ahead of a free slot: [`AgentConfig::work_buffer`], by
    /// default one per slot. So when a slot frees up its next task is
    /// already there, instead of the slot idling through a `RequestWork`
    /// and an `AcceptOffers` (12 % of a 2-slot agent's time with tasks of
    /// ~70 ms, docs/performance.md, "Platform efficiency"); and one per
    /// slot, not one per agent, because slots often free up together (2 %
    /// of the same agent's time with tasks of 16 ms, measured against one
    /// per agent). A held task waits for one running task at most, as with
    /// a buffer of one.
    pub fn work_buffer_tasks(&self) -> usize {
        self.work_buffer.unwrap_or(self.slots)
    }

    /// A configuration with the defaults: [`DEFAULT_MEMORY_BYTES`], one slot
    /// per core and one task leased ahead per slot, the host name, no owner,
    /// [`DEFAULT_STOP_TIMEOUT`], [`BestReturn`], any rate.
    pub fn new(broker: impl Into<String>, state_dir: impl Into<PathBuf>) -> Self {
        AgentConfig {
            broker: broker.into(),
            ca_cert: None,
            state_dir: state_dir.into(),
            memory_bytes: DEFAULT_MEMORY_BYTES,
            slots: default_slots(),
            work_buffer: None,
            name: default_name(),
            owner: String::new(),
            enrolment_secret: String::new(),
            cpu_percent: 100,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            backoff: BackoffConfig::default(),
            offer_policy: Arc::new(BestReturn),
            min_rate: 0.0,
        }
    }

    /// Checks the configuration and returns the broker URL in the form the
    /// identity file keeps.
    pub(crate) fn validate(&self) -> Result<String, AgentError> {
        if self.slots == 0 {
            return Err(AgentError::Config("slots must be at least 1".into()));
        }
        if self.memory_bytes < MIN_MEMORY_BYTES {
            return Err(AgentError::Config(format!(
                "memory must be at least {MIN_MEMORY_BYTES} bytes (one wasm page)"
            )));
        }
        if !(self.min_rate.is_finite() && self.min_rate >= 0.0) {
            return Err(AgentError::Config(format!(
                "the minimum rate must be a number of credits per unit of fuel, at least 0 (got {})",
                self.min_rate
            )));
        }
        if self.state_dir.as_os_str().is_empty() {
            return Err(AgentError::Config("the state directory is empty".into()));
        }
        broker_url(&self.broker)
    }
}

/// Normalises a broker address: adds `http://` to a bare `host:port` and
/// drops a trailing `/`, so `127.0.0.1:7070` and `http://127.0.0.1:7070/` are
/// the same broker for the identity file.
pub(crate) fn broker_url(broker: &str) -> Result<String, AgentError> {
    let broker = broker.trim().trim_end_matches('/');
    if broker.is_empty() {
        return Err(AgentError::Config("the broker URL is empty".into()));
    }
    let url = if broker.contains("://") {
        broker.to_owned()
    } else {
        format!("http://{broker}")
    };
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err(AgentError::Config(format!(
            "{url}: the broker URL must start with https:// (or http:// for a broker \
             started with --insecure)"
        )));
    }
    Ok(url)
}

/// One slot per core the OS lets this process use.
pub fn default_slots() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// The host name, or `wasmgrid-agent` if it cannot be found.
pub fn default_name() -> String {
    let from_file = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok();
    from_file
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "wasmgrid-agent".to_owned())
}

/// `$XDG_STATE_HOME/wasmgrid-agent`, else `~/.local/state/wasmgrid-agent`
/// (the XDG base directory rules for state that outlives a restart but is
/// not worth backing up). `None` when neither variable is set.
pub fn default_state_dir() -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(state) = non_empty("XDG_STATE_HOME") {
        return Some(Path::new(&state).join("wasmgrid-agent"));
    }
    non_empty("HOME").map(|home| Path::new(&home).join(".local/state/wasmgrid-agent"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_are_normalised() {
        let ok = |text: &str| broker_url(text).ok();
        assert_eq!(
            ok("127.0.0.1:7070").as_deref(),
            Some("http://127.0.0.1:7070")
        );
        assert_eq!(
            ok("http://127.0.0.1:7070/").as_deref(),
            Some("http://127.0.0.1:7070")
        );
        assert!(broker_url("").is_err());
        assert!(broker_url("ftp://host").is_err());
        assert_eq!(
            ok("https://broker.example:7070").as_deref(),
            Some("https://broker.example:7070")
        );
    }

    #[test]
    fn validation_rejects_zero_slots_and_tiny_memory() {
        let mut config = AgentConfig::new("127.0.0.1:1", "/tmp/x");
        assert!(config.validate().is_ok());
        config.slots = 0;
        assert!(config.validate().is_err());
        config.slots = 1;
        config.memory_bytes = 1000;
        assert!(config.validate().is_err());
    }

    #[test]
    fn validation_rejects_a_negative_or_nan_min_rate() {
        let mut config = AgentConfig::new("127.0.0.1:1", "/tmp/x");
        config.min_rate = 1e-9;
        assert!(config.validate().is_ok());
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            config.min_rate = bad;
            assert!(config.validate().is_err(), "{bad}");
        }
    }
}
