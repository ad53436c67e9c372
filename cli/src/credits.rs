//! Credit amounts: the ledger counts in micro-credits (`i64`, 1 credit =
//! 1,000,000), people write and read decimal credits. Parsing is exact
//! (digits are shifted, never passed through a float) and every amount is
//! shown with exactly six decimals, so columns line up and nothing is
//! rounded away: `12.500000`, `-0.000001`.

use std::fmt::Write;

/// Micro-credits in one credit.
pub const MICRO_PER_CREDIT: i64 = 1_000_000;

/// Decimal places of a micro-credit.
const DECIMALS: usize = 6;

/// Why a credit amount was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreditsError {
    /// Not a plain decimal number.
    Invalid,
    /// A minus sign: amounts here are never negative.
    Negative,
    /// More than six decimals: finer than a micro-credit.
    TooPrecise,
    /// More than `i64::MAX` micro-credits.
    TooLarge,
}

impl std::fmt::Display for CreditsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CreditsError::Invalid => {
                "not a credit amount: use a decimal number such as 1000, 12.5 or 0.000001"
            }
            CreditsError::Negative => "credit amounts cannot be negative",
            CreditsError::TooPrecise => {
                "credit amounts have at most 6 decimals (1 micro-credit = 0.000001)"
            }
            CreditsError::TooLarge => "credit amount too large (at most 9223372036854.775807)",
        })
    }
}

impl std::error::Error for CreditsError {}

/// A decimal amount of credits (`12.5`, `1000`, `0.000001`, `1_000`) as
/// micro-credits, exactly. No sign, no exponent, at most six decimals.
pub fn parse_micro(text: &str) -> Result<i64, CreditsError> {
    let cleaned = text.trim().replace('_', "");
    if cleaned.starts_with('-') {
        return Err(CreditsError::Negative);
    }
    let cleaned = cleaned.strip_prefix('+').unwrap_or(&cleaned);
    let (whole, fraction) = cleaned.split_once('.').unwrap_or((cleaned, ""));
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return Err(CreditsError::Invalid);
    }
    if fraction.len() > DECIMALS {
        return Err(CreditsError::TooPrecise);
    }
    let mut micro: i64 = 0;
    let padded = format!("{fraction:0<DECIMALS$}");
    for digit in whole.bytes().chain(padded.bytes()) {
        micro = micro
            .checked_mul(10)
            .and_then(|micro| micro.checked_add(i64::from(digit - b'0')))
            .ok_or(CreditsError::TooLarge)?;
    }
    Ok(micro)
}

/// [`parse_micro`] as a clap value parser for amounts that must be above
/// zero (a grant); clap names the value in its message.
pub fn parse_positive_micro(text: &str) -> Result<i64, String> {
    match parse_micro(text) {
        Ok(0) => Err("the amount must be above zero".to_owned()),
        Ok(micro) => Ok(micro),
        Err(error) => Err(error.to_string()),
    }
}

/// Micro-credits as credits with six decimals, e.g. `12.500000`.
pub fn credits_text(micro: i64) -> String {
    let sign = if micro < 0 { "-" } else { "" };
    let magnitude = micro.unsigned_abs();
    let unit = MICRO_PER_CREDIT.unsigned_abs();
    let mut text = String::new();
    let _ = write!(
        text,
        "{sign}{}.{:0DECIMALS$}",
        magnitude / unit,
        magnitude % unit
    );
    text
}

/// Micro-credits with the unit, e.g. `12.500000 credits`.
pub fn credits_with_unit(micro: i64) -> String {
    format!("{} credits", credits_text(micro))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_amounts_become_exact_micro_credits() {
        assert_eq!(parse_micro("12.5"), Ok(12_500_000));
        assert_eq!(parse_micro("1000"), Ok(1_000_000_000));
        assert_eq!(parse_micro("0.000001"), Ok(1));
        assert_eq!(parse_micro(".5"), Ok(500_000));
        assert_eq!(parse_micro("7."), Ok(7_000_000));
        assert_eq!(parse_micro(" 1_000.25 "), Ok(1_000_250_000));
        assert_eq!(parse_micro("+3"), Ok(3_000_000));
        assert_eq!(parse_micro("0"), Ok(0));
        // Where a float would round: 0.1 + 0.2 style values stay exact.
        assert_eq!(parse_micro("0.300001"), Ok(300_001));
        assert_eq!(parse_micro("9007199254.740993"), Ok(9_007_199_254_740_993));
    }

    #[test]
    fn bad_amounts_say_what_is_wrong() {
        assert_eq!(parse_micro("-5"), Err(CreditsError::Negative));
        assert_eq!(parse_micro("-0.1"), Err(CreditsError::Negative));
        assert_eq!(parse_micro("1.0000001"), Err(CreditsError::TooPrecise));
        for invalid in ["", ".", "abc", "1e6", "1.2.3", "1,5", "12 credits", "0x10"] {
            assert_eq!(
                parse_micro(invalid),
                Err(CreditsError::Invalid),
                "{invalid}"
            );
        }
        assert_eq!(
            parse_micro("9223372036854.775807"),
            Ok(i64::MAX),
            "the largest amount fits"
        );
        assert_eq!(
            parse_micro("9223372036854.775808"),
            Err(CreditsError::TooLarge)
        );
        assert_eq!(
            parse_micro("99999999999999999999"),
            Err(CreditsError::TooLarge)
        );
        assert!(
            parse_positive_micro("0")
                .expect_err("zero")
                .contains("above zero")
        );
        assert!(
            parse_positive_micro("1.1234567")
                .expect_err("too precise")
                .contains("at most 6 decimals")
        );
        assert_eq!(parse_positive_micro("2"), Ok(2_000_000));
    }

    #[test]
    fn micro_credits_show_with_six_decimals() {
        assert_eq!(credits_text(12_500_000), "12.500000");
        assert_eq!(credits_text(1), "0.000001");
        assert_eq!(credits_text(0), "0.000000");
        assert_eq!(credits_text(-1), "-0.000001");
        assert_eq!(credits_text(-2_000_000), "-2.000000");
        assert_eq!(credits_text(i64::MAX), "9223372036854.775807");
        assert_eq!(credits_text(i64::MIN), "-9223372036854.775808");
        assert_eq!(credits_with_unit(3_000_000), "3.000000 credits");
    }

    #[test]
    fn parsing_what_is_shown_gives_the_same_amount() {
        for micro in [0, 1, 999_999, 1_000_000, 123_456_789_012, i64::MAX] {
            assert_eq!(parse_micro(&credits_text(micro)), Ok(micro));
        }
    }
}
