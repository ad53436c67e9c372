//! Parsing of human-friendly quantities on the command line.

use bytesize::ByteSize;

/// A byte size such as `64MiB`, `1.5GB`, `4096` (bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|_| {
            format!(
                "invalid size '{text}': use a number with an optional unit, e.g. 512KiB, 64MiB, 1GB"
            )
        })
}

/// A fuel amount: an integer, with optional `_` separators, or a power-of-ten
/// form such as `10e9`.
pub fn parse_fuel(text: &str) -> Result<u64, String> {
    parse_scaled(text).map_err(|error| match error {
        ScaledError::Invalid => {
            format!("invalid fuel '{text}': use an integer such as 1000000000 or 10e9")
        }
        ScaledError::TooLarge => format!("fuel '{text}' is too large"),
    })
}

/// A count such as a range limit: the same forms as [`parse_fuel`], e.g. `1e9`.
pub fn parse_count(text: &str) -> Result<u64, String> {
    parse_scaled(text).map_err(|error| match error {
        ScaledError::Invalid => {
            format!("invalid number '{text}': use an integer such as 1000000 or 1e9")
        }
        ScaledError::TooLarge => format!("number '{text}' is too large"),
    })
}

/// A non-negative decimal such as `1e-9` or `0.5`.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= 0.0 => Ok(rate),
        _ => Err(format!(
            "invalid rate '{text}': use a non-negative number such as 1e-9 or 0.000001"
        )),
    }
}

enum ScaledError {
    Invalid,
    TooLarge,
}

fn parse_scaled(text: &str) -> Result<u64, ScaledError> {
    let cleaned = text.trim().replace('_', "");
    if let Some((mantissa, exponent)) = cleaned.split_once(['e', 'E']) {
        let mantissa: u64 = mantissa.parse().map_err(|_| ScaledError::Invalid)?;
        let exponent: u32 = exponent.parse().map_err(|_| ScaledError::Invalid)?;
        return 10u64
            .checked_pow(exponent)
            .and_then(|scale| mantissa.checked_mul(scale))
            .ok_or(ScaledError::TooLarge);
    }
    cleaned.parse().map_err(|_| ScaledError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_accept_binary_and_decimal_units() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1 GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn fuel_accepts_integers_separators_and_exponents() {
        assert_eq!(parse_fuel("1_000"), Ok(1000));
        assert_eq!(parse_fuel("10e9"), Ok(10_000_000_000));
        assert!(parse_fuel("1e30").is_err());
        assert!(parse_fuel("lots").is_err());
    }

    #[test]
    fn counts_and_rates() {
        assert_eq!(parse_count("1e9"), Ok(1_000_000_000));
        assert!(
            parse_count("ten")
                .expect_err("not a number")
                .contains("invalid number 'ten'")
        );
        assert_eq!(parse_rate("1e-9"), Ok(1e-9));
        assert!(parse_rate("-1").is_err());
        assert!(parse_rate("NaN").is_err());
    }
}
