//! Agent builds and versions, as broker and agent agree on them: the
//! metadata that carries an agent's version on every call (and the broker's
//! minimum when it refuses one), and the file names of the builds a broker
//! hosts, `wasmgrid-agent-<version>-<os>-<arch>[.exe]`.

use std::fmt;

/// A semantic version (`1.2.3`, `1.3.0-rc.1`), compared by semver's rules.
pub use semver::Version as AgentVersion;

/// Metadata on every agent call: the version the agent runs.
pub const AGENT_VERSION_HEADER: &str = "x-wasmgrid-agent-version";

/// Metadata on a `FAILED_PRECONDITION` that refuses an agent for its
/// version: the lowest version the broker accepts. An agent tells this
/// refusal from every other by it.
pub const REQUIRED_AGENT_VERSION_HEADER: &str = "x-wasmgrid-required-agent-version";

/// What every build's file name starts with.
const FILE_PREFIX: &str = "wasmgrid-agent-";

/// Longest OS or CPU name accepted in a file name (Rust's are under 16).
const MAX_PLATFORM_NAME: usize = 32;

/// What an agent build's file name says: its version and platform, with
/// `os` and `arch` as Rust's `std::env::consts::OS` and `ARCH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentBuildName {
    /// The version the build reports.
    pub version: AgentVersion,
    /// e.g. `linux`, `macos`, `windows`.
    pub os: String,
    /// e.g. `x86_64`, `aarch64`.
    pub arch: String,
}

/// Why a file name is not an agent build's.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not wasmgrid-agent-<version>-<os>-<arch>[.exe]: {why}")]
pub struct BuildNameError {
    /// The name looked at.
    pub name: String,
    /// What is wrong with it.
    pub why: String,
}

impl AgentBuildName {
    /// The build of this very program for this machine, at `version`.
    pub fn for_this_machine(version: AgentVersion) -> Self {
        AgentBuildName {
            version,
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
        }
    }

    /// Reads `wasmgrid-agent-<version>-<os>-<arch>[.exe]`. The version may
    /// hold dashes (`0.2.0-rc.1`), so OS and CPU are the last two parts;
    /// they hold only lowercase letters, digits and `_`, as Rust's do. Only
    /// Windows builds end in `.exe`, and they must.
    pub fn parse(file_name: &str) -> Result<Self, BuildNameError> {
        let error = |why: &str| BuildNameError {
            name: file_name.to_owned(),
            why: why.to_owned(),
        };
        let rest = file_name
            .strip_prefix(FILE_PREFIX)
            .ok_or_else(|| error("it does not start with wasmgrid-agent-"))?;
        let (rest, exe) = match rest.strip_suffix(".exe") {
            Some(rest) => (rest, true),
            None => (rest, false),
        };
        let mut parts = rest.rsplitn(3, '-');
        let (Some(arch), Some(os), Some(version)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(error("it lacks the version, OS or CPU"));
        };
        for name in [os, arch] {
            let valid = !name.is_empty()
                && name.len() <= MAX_PLATFORM_NAME
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                return Err(error(&format!(
                    "{name:?} is not an OS or CPU name (lowercase letters, digits, _)"
                )));
            }
        }
        if exe != (os == "windows") {
            return Err(error("Windows builds, and only they, end in .exe"));
        }
        let version = AgentVersion::parse(version)
            .map_err(|why| error(&format!("version {version:?}: {why}")))?;
        Ok(AgentBuildName {
            version,
            os: os.to_owned(),
            arch: arch.to_owned(),
        })
    }

    /// The file name, as [`AgentBuildName::parse`] reads it.
    pub fn file_name(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for AgentBuildName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exe = if self.os == "windows" { ".exe" } else { "" };
        write!(
            f,
            "{FILE_PREFIX}{}-{}-{}{exe}",
            self.version, self.os, self.arch
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(name: &str) -> Option<(String, String, String)> {
        AgentBuildName::parse(name)
            .ok()
            .map(|build| (build.version.to_string(), build.os, build.arch))
    }

    fn triple(version: &str, os: &str, arch: &str) -> Option<(String, String, String)> {
        Some((version.to_owned(), os.to_owned(), arch.to_owned()))
    }

    #[test]
    fn names_are_read_back_to_front() {
        assert_eq!(
            parsed("wasmgrid-agent-0.2.0-linux-x86_64"),
            triple("0.2.0", "linux", "x86_64")
        );
        assert_eq!(
            parsed("wasmgrid-agent-1.0.0-rc.1-macos-aarch64"),
            triple("1.0.0-rc.1", "macos", "aarch64")
        );
        assert_eq!(
            parsed("wasmgrid-agent-0.2.0-windows-x86_64.exe"),
            triple("0.2.0", "windows", "x86_64")
        );
    }

    #[test]
    fn malformed_names_are_refused() {
        for name in [
            "wasmgrid-agent",
            "agent-0.2.0-linux-x86_64",
            "wasmgrid-agent-0.2-linux-x86_64",
            "wasmgrid-agent-0.2.0-linux",
            "wasmgrid-agent-0.2.0-Linux-x86_64",
            "wasmgrid-agent-0.2.0-linux-x86_64.exe",
            "wasmgrid-agent-0.2.0-windows-x86_64",
            "wasmgrid-agent-0.2.0-linux-x86 64",
            "wasmgrid-agent-0.2.0-linux-x86_64.tar.gz",
            "wasmgrid-agent-0.2.0--x86_64",
        ] {
            assert!(AgentBuildName::parse(name).is_err(), "{name}");
        }
    }

    #[test]
    fn file_names_round_trip() {
        for name in [
            "wasmgrid-agent-0.2.0-linux-x86_64",
            "wasmgrid-agent-3.1.4-beta.2-windows-aarch64.exe",
        ] {
            let build = AgentBuildName::parse(name).expect("a build name");
            assert_eq!(build.file_name(), name);
        }
    }

    #[test]
    fn versions_compare_by_semver() {
        let version = |text| AgentVersion::parse(text).expect("a version");
        assert!(version("0.10.0") > version("0.9.9"));
        assert!(version("1.0.0") > version("1.0.0-rc.2"));
        assert!(version("1.0.0-rc.10") > version("1.0.0-rc.2"));
    }
}
