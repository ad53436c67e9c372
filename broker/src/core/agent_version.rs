//! Agent versions: the broker's minimum (`--min-agent-version`), checked at
//! registration and on an agent's calls, and the version each agent runs,
//! recorded when it changes (an agent that updated itself keeps its
//! identity, so its row would otherwise show the version it registered with).

use std::sync::PoisonError;

use wasmgrid_proto::AgentVersion;

use crate::core::Broker;
use crate::error::{BrokerError, BrokerResult};
use crate::store::agents;

/// Longest version accepted, as at registration.
pub(crate) const MAX_VERSION_LEN: usize = 64;

impl Broker {
    /// Refuses an agent running `running` when the broker requires a newer
    /// one; a version that cannot be read counts as older.
    pub fn check_agent_version(&self, running: &str) -> BrokerResult<()> {
        let Some(required) = &self.config.min_agent_version else {
            return Ok(());
        };
        let running = running.trim();
        if AgentVersion::parse(running).is_ok_and(|version| version >= *required) {
            return Ok(());
        }
        Err(BrokerError::AgentOutdated {
            required: required.to_string(),
            running: if running.is_empty() {
                "a version older than 0.2 (it does not say)".to_owned()
            } else {
                running.chars().take(MAX_VERSION_LEN).collect()
            },
            broker_url: self
                .config
                .public_url
                .clone()
                .unwrap_or_else(|| "<this broker's URL>".to_owned()),
        })
    }

    /// Checks the version of a registered agent's call: the one the call
    /// carries (`said`), else the one the agent last reported (agents before
    /// version headers). Records a version that changed.
    pub async fn check_calling_agent(
        &self,
        agent_id: &str,
        said: Option<&str>,
    ) -> BrokerResult<()> {
        match said {
            Some(version) => {
                self.note_version(agent_id, version).await?;
                self.check_agent_version(version)
            }
            None if self.config.min_agent_version.is_some() => {
                let mut conn = self.store.conn().await?;
                let recorded = agents::version(&mut conn, agent_id)
                    .await?
                    .unwrap_or_default();
                self.check_agent_version(&recorded)
            }
            None => Ok(()),
        }
    }

    /// Remembers that `agent_id` runs `version`; writes it to the store
    /// when it is not what the broker knew (once per agent after a start).
    pub(crate) async fn note_version(&self, agent_id: &str, version: &str) -> BrokerResult<()> {
        if version.len() > MAX_VERSION_LEN {
            return Err(BrokerError::invalid("agent version too long"));
        }
        let known = self
            .versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(agent_id)
            .is_some_and(|known| known == version);
        if known {
            return Ok(());
        }
        let mut conn = self.store.conn().await?;
        agents::set_version(&mut conn, agent_id, version).await?;
        self.versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(agent_id.to_owned(), version.to_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;
    use wasmgrid_proto::REQUIRED_AGENT_VERSION_HEADER;

    use super::*;
    use crate::config::BrokerConfig;
    use crate::store::agents::AgentRow;

    fn agent(version: &str) -> AgentRow {
        AgentRow {
            id: String::new(),
            name: "a".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            cores: 1,
            memory_bytes: 1 << 30,
            slots: 1,
            version: version.into(),
            registered_ms: 0,
            last_seen_ms: 0,
            owner: String::new(),
            address: String::new(),
        }
    }

    #[tokio::test]
    async fn older_agents_are_refused_with_the_required_version()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let mut config = BrokerConfig::new(dir.path().to_path_buf());
        config.min_agent_version = Some(AgentVersion::parse("0.2.0")?);
        config.public_url = Some("https://broker.example:7070".into());
        let broker = Broker::start(config).await?;

        for accepted in ["0.2.0", "0.10.0", "1.0.0"] {
            assert!(broker.check_agent_version(accepted).is_ok(), "{accepted}");
        }
        for refused in ["0.1.9", "0.2.0-rc.1", "", "latest"] {
            let error = broker
                .check_agent_version(refused)
                .expect_err("an older agent");
            let status = tonic::Status::from(error);
            assert_eq!(status.code(), Code::FailedPrecondition);
            assert!(
                status
                    .message()
                    .contains("update --broker https://broker.example:7070"),
                "{}",
                status.message()
            );
            assert_eq!(
                status
                    .metadata()
                    .get(REQUIRED_AGENT_VERSION_HEADER)
                    .and_then(|value| value.to_str().ok()),
                Some("0.2.0")
            );
        }
        assert!(broker.register(agent("0.1.0")).await.is_err());
        let (id, _token) = broker.register(agent("0.3.0")).await?;

        // The version a call carries counts, and is recorded: a call
        // without one is judged by the last one recorded.
        broker.check_calling_agent(&id, None).await?;
        broker.check_calling_agent(&id, Some("0.2.1")).await?;
        assert!(
            broker
                .check_calling_agent(&id, Some("0.1.0"))
                .await
                .is_err()
        );
        assert!(broker.check_calling_agent(&id, None).await.is_err());
        let mut conn = broker.store().conn().await?;
        assert_eq!(
            agents::version(&mut conn, &id).await?.as_deref(),
            Some("0.1.0")
        );
        Ok(())
    }
}
