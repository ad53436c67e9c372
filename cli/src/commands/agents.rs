//! `wasmgrid agents`: the operator's list of the agents a broker knows.

use clap::Args;
use wasmgrid_proto::v1::{AgentInfo, ListAgentsRequest};

use crate::client::{Broker, BrokerArgs};
use crate::table::{Table, ago_text, duration_text};

/// Arguments of `wasmgrid agents`.
#[derive(Debug, Args)]
pub struct AgentsArgs {
    #[command(flatten)]
    broker: BrokerArgs,
}

/// Prints one row per agent.
pub async fn run(args: AgentsArgs) -> anyhow::Result<bool> {
    let mut broker = Broker::connect(&args.broker).await?;
    let agents = list_agents(&mut broker).await?;
    if agents.is_empty() {
        eprintln!("no agents have registered with {}", broker.url());
    } else {
        print!("{}", agents_table(&agents).render());
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

fn agents_table(agents: &[AgentInfo]) -> Table {
    let mut table = Table::new(&[
        "NAME",
        "ID",
        "PLATFORM",
        ">CORES",
        ">MEMORY",
        ">SLOTS",
        ">OK",
        ">FAILED",
        ">FUEL",
        ">BUSY",
        "LAST SEEN",
        "VERSION",
    ]);
    for agent in agents {
        table.row(vec![
            agent.name.clone(),
            agent.agent_id.clone(),
            format!("{}/{}", agent.os, agent.arch),
            agent.cores.to_string(),
            bytesize::ByteSize(agent.memory_bytes)
                .display()
                .iec()
                .to_string(),
            agent.slots.to_string(),
            agent.tasks_ok.to_string(),
            agent.tasks_failed.to_string(),
            agent.fuel_consumed.to_string(),
            duration_text(std::time::Duration::from_millis(agent.busy_ms)),
            ago_text(agent.last_seen_unix_ms),
            agent.version.clone(),
        ]);
    }
    table
}
