//! `wasmgrid agents`: the operator's list of the agents a broker knows —
//! their record (results that agreed or disagreed, reputation, whether they
//! are trusted), what they earned and how fast they run.

use std::time::Duration;

use clap::Args;
use wasmgrid_proto::v1::{AgentInfo, ListAgentsRequest};

use crate::client::{Broker, BrokerArgs};
use crate::credits::credits_text;
use crate::table::{Table, ago_text, duration_text, si_text, unix_ms_text};

/// Arguments of `wasmgrid agents`.
#[derive(Debug, Args)]
pub struct AgentsArgs {
    /// Also show each agent's owner, address, cores, memory and version.
    #[arg(long)]
    wide: bool,
    /// Print a JSON array instead of a table, with every field the broker
    /// sends (earnings in micro-credits and as decimal strings).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    broker: BrokerArgs,
}

/// Prints one row per agent.
pub async fn run(args: AgentsArgs) -> anyhow::Result<bool> {
    let mut broker = Broker::connect(&args.broker).await?;
    let agents = list_agents(&mut broker).await?;
    if args.json {
        let agents: Vec<serde_json::Value> = agents.iter().map(agent_json).collect();
        println!("{}", serde_json::Value::Array(agents));
    } else if agents.is_empty() {
        eprintln!("no agents have registered with {}", broker.url());
    } else {
        print!("{}", agents_table(&agents, args.wide).render());
    }
    Ok(true)
}

/// Every agent the broker knows, sorted by name.
pub async fn list_agents(broker: &mut Broker) -> anyhow::Result<Vec<AgentInfo>> {
    let mut agents = broker
        .admin
        .list_agents(ListAgentsRequest {})
        .await
        .map_err(|status| broker.error(status))?
        .into_inner()
        .agents;
    agents.sort_by(|a, b| (&a.name, &a.agent_id).cmp(&(&b.name, &b.agent_id)));
    Ok(agents)
}

/// The share of an agent's results that agreed, e.g. `97.5%`; `-` before
/// it has any.
pub fn reputation_text(agent: &AgentInfo) -> String {
    if agent.results_valid + agent.results_invalid == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}%", agent.reputation * 100.0)
    }
}

fn agents_table(agents: &[AgentInfo], wide: bool) -> Table {
    let mut header = vec![
        "NAME",
        "ID",
        "PLATFORM",
        ">SLOTS",
        ">OK",
        ">FAILED",
        ">VALID",
        ">INVALID",
        ">REPUTATION",
        "TRUSTED",
        ">EARNED",
        ">FUEL",
        ">FUEL/S",
        ">BUSY",
        "LAST SEEN",
    ];
    if wide {
        header.extend(["OWNER", "ADDRESS", ">CORES", ">MEMORY", "VERSION"]);
    }
    let mut table = Table::new(&header);
    for agent in agents {
        let mut row = vec![
            agent.name.clone(),
            agent.agent_id.clone(),
            format!("{}/{}", agent.os, agent.arch),
            agent.slots.to_string(),
            agent.tasks_ok.to_string(),
            agent.tasks_failed.to_string(),
            agent.results_valid.to_string(),
            agent.results_invalid.to_string(),
            reputation_text(agent),
            if agent.trusted { "yes" } else { "no" }.to_owned(),
            credits_text(agent.earned_micro),
            agent.fuel_consumed.to_string(),
            si_text(agent.fuel_per_second),
            duration_text(Duration::from_millis(agent.busy_ms)),
            ago_text(agent.last_seen_unix_ms),
        ];
        if wide {
            row.extend([
                or_dash(&agent.owner),
                or_dash(&agent.address),
                agent.cores.to_string(),
                bytesize::ByteSize(agent.memory_bytes)
                    .display()
                    .iec()
                    .to_string(),
                or_dash(&agent.version),
            ]);
        }
        table.row(row);
    }
    table
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

fn agent_json(agent: &AgentInfo) -> serde_json::Value {
    serde_json::json!({
        "agent_id": agent.agent_id,
        "name": agent.name,
        "owner": agent.owner,
        "address": agent.address,
        "os": agent.os,
        "arch": agent.arch,
        "cores": agent.cores,
        "memory_bytes": agent.memory_bytes,
        "slots": agent.slots,
        "version": agent.version,
        "registered": unix_ms_text(agent.registered_unix_ms),
        "registered_unix_ms": agent.registered_unix_ms,
        "last_seen_unix_ms": agent.last_seen_unix_ms,
        "tasks_ok": agent.tasks_ok,
        "tasks_failed": agent.tasks_failed,
        "results_valid": agent.results_valid,
        "results_invalid": agent.results_invalid,
        "reputation": agent.reputation,
        "trusted": agent.trusted,
        "earned_micro": agent.earned_micro,
        "earned": credits_text(agent.earned_micro),
        "fuel_consumed": agent.fuel_consumed,
        "fuel_per_second": agent.fuel_per_second,
        "busy_ms": agent.busy_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> AgentInfo {
        AgentInfo {
            agent_id: "a-1".into(),
            name: "agent-1".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            slots: 2,
            cores: 8,
            memory_bytes: 1 << 30,
            tasks_ok: 39,
            tasks_failed: 1,
            results_valid: 39,
            results_invalid: 1,
            reputation: 0.975,
            trusted: true,
            earned_micro: 12_345_678,
            fuel_consumed: 39_000_000_000,
            fuel_per_second: 412_000_000.0,
            busy_ms: 94_000,
            version: "0.1.0".into(),
            ..AgentInfo::default()
        }
    }

    #[test]
    fn the_table_shows_record_earnings_and_speed() {
        let fresh = AgentInfo {
            agent_id: "a-2".into(),
            name: "agent-2".into(),
            ..AgentInfo::default()
        };
        let text = agents_table(&[agent(), fresh], false).render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "NAME     ID   PLATFORM      SLOTS  OK  FAILED  VALID  INVALID  REPUTATION  TRUSTED     EARNED         FUEL  FUEL/S    BUSY  LAST SEEN"
        );
        assert_eq!(
            lines[1],
            "agent-1  a-1  linux/x86_64      2  39       1     39        1       97.5%  yes      12.345678  39000000000  412.0M  1m 34s  -"
        );
        assert!(lines[2].contains("  -  no   "), "{text}");
        let wide = agents_table(&[agent()], true).render();
        assert!(
            wide.lines()
                .next()
                .is_some_and(|header| header.ends_with("OWNER  ADDRESS  CORES   MEMORY  VERSION")),
            "{wide}"
        );
        assert!(wide.contains("1.0 GiB  0.1.0"), "{wide}");
    }

    #[test]
    fn json_keeps_micro_credits_exact() {
        let json = agent_json(&agent());
        assert_eq!(json["earned_micro"], 12_345_678);
        assert_eq!(json["earned"], "12.345678");
        assert_eq!(json["trusted"], true);
    }
}
