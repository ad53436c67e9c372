//! The agent's identity at its broker, kept in `STATE/identity.json` so a
//! restarted agent is the same volunteer (same credits, same reputation).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::durable_file::write_atomically;

/// File name of the identity inside the state directory.
pub const IDENTITY_FILE: &str = "identity.json";

/// Who the agent is at one broker: what `Register` returned.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The broker URL the agent registered with. An identity is only reused
    /// with the same broker: another broker would not know it.
    pub broker: String,
    /// The agent's id at that broker.
    pub agent_id: String,
    /// The bearer token sent with every call but `Register`.
    pub token: String,
}

impl fmt::Debug for Identity {
    /// Leaves the token out, so it never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("broker", &self.broker)
            .field("agent_id", &self.agent_id)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Where the identity lives in `state_dir`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(IDENTITY_FILE)
    }

    /// Reads the identity kept in `state_dir`. `None` when there is none or
    /// it is unreadable as JSON (logged): the agent then registers anew,
    /// which beats refusing to start.
    pub fn load(state_dir: &Path) -> io::Result<Option<Identity>> {
        let path = Identity::path(state_dir);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        match serde_json::from_slice(&bytes) {
            Ok(identity) => Ok(Some(identity)),
            Err(error) => {
                tracing::warn!(file = %path.display(), %error, "ignoring unreadable identity file; registering anew");
                Ok(None)
            }
        }
    }

    /// Keeps the identity in `state_dir`, atomically.
    pub fn save(&self, state_dir: &Path) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        write_atomically(&Identity::path(state_dir), &json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_identity_loads_back() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        assert_eq!(Identity::load(dir.path())?, None);
        let identity = Identity {
            broker: "http://127.0.0.1:7070".into(),
            agent_id: "agent-1".into(),
            token: "secret".into(),
        };
        identity.save(dir.path())?;
        assert_eq!(Identity::load(dir.path())?, Some(identity.clone()));

        let replaced = Identity {
            token: "fresh".into(),
            ..identity
        };
        replaced.save(dir.path())?;
        assert_eq!(Identity::load(dir.path())?, Some(replaced));
        Ok(())
    }

    #[test]
    fn corrupt_identity_is_ignored() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(Identity::path(dir.path()), b"{ not json")?;
        assert_eq!(Identity::load(dir.path())?, None);
        Ok(())
    }

    #[test]
    fn debug_output_hides_the_token() {
        let identity = Identity {
            broker: "http://b".into(),
            agent_id: "a".into(),
            token: "very-secret".into(),
        };
        assert!(!format!("{identity:?}").contains("very-secret"));
    }

    #[cfg(unix)]
    #[test]
    fn identity_file_is_private() -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let identity = Identity {
            broker: "http://b".into(),
            agent_id: "a".into(),
            token: "t".into(),
        };
        identity.save(dir.path())?;
        let mode = std::fs::metadata(Identity::path(dir.path()))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
        Ok(())
    }
}
