//! `wasmgrid balance`: an issuer's credits, and what its running workloads
//! hold in escrow.

use clap::Args;
use wasmgrid_proto::v1::{Balance, BalanceRequest};

use crate::client::{Broker, BrokerArgs};
use crate::credits::{credits_text, credits_with_unit};
use crate::issuer::{IssuerArgs, issuer_of_account};

/// Arguments of `wasmgrid balance`.
#[derive(Debug, Args)]
pub struct BalanceArgs {
    #[command(flatten)]
    issuer: IssuerArgs,
    /// Print a JSON object instead of text: amounts in micro-credits
    /// (`balance_micro`, `escrowed_micro`) and as decimal strings.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    broker: BrokerArgs,
}

/// Prints the balance.
pub async fn run(args: BalanceArgs) -> anyhow::Result<bool> {
    let mut broker = Broker::connect(&args.broker).await?;
    let balance = fetch_balance(&mut broker, &args.issuer).await?;
    let issuer = issuer_of_account(&balance.account).to_owned();
    if args.json {
        println!("{}", balance_json(&issuer, &balance));
    } else {
        print!("{}", balance_text(&issuer, &balance));
    }
    Ok(true)
}

/// The balance of the issuer `issuer` names, or of the token's own issuer.
pub async fn fetch_balance(broker: &mut Broker, issuer: &IssuerArgs) -> anyhow::Result<Balance> {
    Ok(broker
        .issuer
        .get_balance(BalanceRequest {
            issuer: issuer.requested(),
        })
        .await
        .map_err(|status| broker.error(status))?
        .into_inner())
}

fn balance_text(issuer: &str, balance: &Balance) -> String {
    format!(
        "issuer    {issuer}\nbalance   {}\nescrowed  {} (held by running workloads)\n",
        credits_with_unit(balance.balance_micro),
        credits_with_unit(balance.escrowed_micro),
    )
}

fn balance_json(issuer: &str, balance: &Balance) -> serde_json::Value {
    serde_json::json!({
        "issuer": issuer,
        "account": balance.account,
        "balance_micro": balance.balance_micro,
        "balance": credits_text(balance.balance_micro),
        "escrowed_micro": balance.escrowed_micro,
        "escrowed": credits_text(balance.escrowed_micro),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_balance_reads_in_credits() {
        let balance = Balance {
            account: "issuer:alice".into(),
            balance_micro: 88_500_000,
            escrowed_micro: 1_000_001,
        };
        assert_eq!(
            balance_text("alice", &balance),
            "issuer    alice\n\
             balance   88.500000 credits\n\
             escrowed  1.000001 credits (held by running workloads)\n"
        );
        let json = balance_json("alice", &balance);
        assert_eq!(json["balance_micro"], 88_500_000);
        assert_eq!(json["escrowed"], "1.000001");
        assert_eq!(json["account"], "issuer:alice");
    }
}
