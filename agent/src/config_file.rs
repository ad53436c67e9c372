//! The agent's config file (`wasmgrid-agent --config FILE`): TOML with the
//! same keys as the flags, so a volunteer writes them down once. A flag or
//! its environment variable wins over the file, the file over the default.
//!
//! ```toml
//! broker = "https://broker.example:7070"
//! ca_cert = "/etc/wasmgrid/ca.pem"
//! memory = "2GiB"
//! slots = 2
//! work_buffer = 1
//! cpu_percent = 50
//! owner = "alice@example.org"
//! min_rate = 1e-9
//! stop_timeout = "1m"
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The keys of the file; each is the flag of the same name (`-` as `_`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub broker: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    /// A size, e.g. `"512MiB"`.
    pub memory: Option<String>,
    pub slots: Option<usize>,
    pub work_buffer: Option<usize>,
    /// 1 to 100.
    pub cpu_percent: Option<u8>,
    pub name: Option<String>,
    pub owner: Option<String>,
    pub enrolment_secret: Option<String>,
    pub min_rate: Option<f64>,
    /// A duration, e.g. `"30s"`.
    pub stop_timeout: Option<String>,
    /// `"text"` or `"json"`.
    pub log_format: Option<String>,
}

/// Why the config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl ConfigFile {
    /// Reads and parses `path`; unknown keys are refused, so a typo does not
    /// pass silently.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|error| ConfigFileError::Invalid {
            path: path.to_path_buf(),
            message: error.message().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_keys_and_refuses_unknown_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("agent.toml");
        std::fs::write(
            &path,
            "broker = \"https://b:7070\"\nmemory = \"2GiB\"\nslots = 3\nwork_buffer = 2\nmin_rate = 1e-9\n",
        )
        .expect("write");
        let file = ConfigFile::load(&path).expect("valid");
        assert_eq!(file.broker.as_deref(), Some("https://b:7070"));
        assert_eq!(file.memory.as_deref(), Some("2GiB"));
        assert_eq!(file.slots, Some(3));
        assert_eq!(file.work_buffer, Some(2));
        assert_eq!(file.min_rate, Some(1e-9));
        assert_eq!(file.owner, None);

        std::fs::write(&path, "slotz = 3\n").expect("write");
        let error = ConfigFile::load(&path).expect_err("typo");
        assert!(error.to_string().contains("slotz"), "{error}");
        assert!(ConfigFile::load(&dir.path().join("missing.toml")).is_err());
    }
}
