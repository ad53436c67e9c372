//! `wasmgrid grant` (admin): create credits on an issuer's account — the
//! only way credits come into existence — and print the new balance.

use clap::Args;
use clap::builder::NonEmptyStringValueParser;
use wasmgrid_proto::v1::{GrantCreditsRequest, GrantCreditsResponse};

use crate::client::{Broker, BrokerArgs};
use crate::credits::{credits_text, credits_with_unit, parse_positive_micro};

/// Arguments of `wasmgrid grant`.
#[derive(Debug, Args)]
pub struct GrantArgs {
    /// The issuer whose account receives the credits.
    #[arg(long, value_name = "NAME", value_parser = NonEmptyStringValueParser::new())]
    issuer: String,
    /// Credits to grant, a decimal number above zero with at most 6
    /// decimals, e.g. 1000, 12.5 or 0.000001.
    #[arg(value_name = "AMOUNT", allow_negative_numbers = true, value_parser = parse_positive_micro)]
    amount_micro: i64,
    /// A note kept with the ledger entry, e.g. why the credits were granted.
    #[arg(long, value_name = "TEXT")]
    memo: Option<String>,
    /// Print a JSON object instead of text: amounts in micro-credits and as
    /// decimal strings, and the ledger entry's sequence number.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    broker: BrokerArgs,
}

/// Grants the credits and prints the issuer's new balance.
pub async fn run(args: GrantArgs) -> anyhow::Result<bool> {
    let mut broker = Broker::connect(&args.broker).await?;
    let response = grant(
        &mut broker,
        &args.issuer,
        args.amount_micro,
        args.memo.as_deref().unwrap_or_default(),
    )
    .await?;
    if args.json {
        println!("{}", grant_json(&args.issuer, args.amount_micro, &response));
    } else {
        print!("{}", grant_text(&args.issuer, args.amount_micro, &response));
    }
    Ok(true)
}

/// Grants `amount_micro` micro-credits to `issuer` (also used by `demo`).
pub async fn grant(
    broker: &mut Broker,
    issuer: &str,
    amount_micro: i64,
    memo: &str,
) -> anyhow::Result<GrantCreditsResponse> {
    let response = broker
        .admin
        .grant_credits(GrantCreditsRequest {
            issuer: issuer.to_owned(),
            amount_micro,
            memo: memo.to_owned(),
        })
        .await
        .map_err(|status| broker.error(status))?;
    Ok(response.into_inner())
}

fn grant_text(issuer: &str, amount_micro: i64, response: &GrantCreditsResponse) -> String {
    format!(
        "granted {} to issuer {issuer}\nbalance {}\n",
        credits_with_unit(amount_micro),
        credits_with_unit(response.balance_micro)
    )
}

fn grant_json(
    issuer: &str,
    amount_micro: i64,
    response: &GrantCreditsResponse,
) -> serde_json::Value {
    serde_json::json!({
        "issuer": issuer,
        "amount_micro": amount_micro,
        "amount": credits_text(amount_micro),
        "balance_micro": response.balance_micro,
        "balance": credits_text(response.balance_micro),
        "seq": response.entry.as_ref().map(|entry| entry.seq),
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use wasmgrid_proto::v1::LedgerEntry;

    use super::*;

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        grant: GrantArgs,
    }

    fn parse(args: &[&str]) -> Result<GrantArgs, String> {
        Flags::try_parse_from(std::iter::once("grant").chain(args.iter().copied()))
            .map(|flags| flags.grant)
            .map_err(|error| error.to_string())
    }

    #[test]
    fn amounts_are_checked_before_any_call() {
        let args = parse(&["--issuer", "alice", "12.5", "--memo", "welcome"]).expect("valid");
        assert_eq!(
            (args.issuer.as_str(), args.amount_micro),
            ("alice", 12_500_000)
        );
        assert_eq!(args.memo.as_deref(), Some("welcome"));
        for (amount, expected) in [
            ("-5", "cannot be negative"),
            ("0", "above zero"),
            ("0.0000001", "at most 6 decimals"),
            ("lots", "not a credit amount"),
            ("1e6", "not a credit amount"),
            ("99999999999999", "too large"),
        ] {
            let error = parse(&["--issuer", "alice", amount]).expect_err(amount);
            assert!(error.contains(expected), "{amount}: {error}");
        }
        assert!(parse(&["12"]).is_err(), "--issuer is required");
        assert!(
            parse(&["--issuer", "", "12"]).is_err(),
            "--issuer is not empty"
        );
    }

    #[test]
    fn the_answer_shows_the_new_balance() {
        let response = GrantCreditsResponse {
            balance_micro: 112_500_000,
            entry: Some(LedgerEntry {
                seq: 7,
                ..LedgerEntry::default()
            }),
        };
        assert_eq!(
            grant_text("alice", 12_500_000, &response),
            "granted 12.500000 credits to issuer alice\nbalance 112.500000 credits\n"
        );
        let json = grant_json("alice", 12_500_000, &response);
        assert_eq!(json["balance_micro"], 112_500_000);
        assert_eq!(json["amount"], "12.500000");
        assert_eq!(json["seq"], 7);
    }
}
