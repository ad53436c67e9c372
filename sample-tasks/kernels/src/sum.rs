//! The overflow-checked sum behind the `sum-u64` reducer.
//!
//! A reducer that wrapped around would hand the issuer a wrong total with
//! nothing to show it, so overflow is an error.

use std::fmt;

/// The sum does not fit a `u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow {
    /// Index of the value whose addition overflowed, to locate the culprit.
    pub index: usize,
}

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sum overflows u64 at value {}", self.index)
    }
}

impl std::error::Error for Overflow {}

/// Adds `values`, failing instead of wrapping around.
pub fn sum_u64(values: &[u64]) -> Result<u64, Overflow> {
    values
        .iter()
        .enumerate()
        .try_fold(0u64, |total, (index, &value)| {
            total.checked_add(value).ok_or(Overflow { index })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_sum_is_zero() {
        assert_eq!(sum_u64(&[]), Ok(0));
    }

    #[test]
    fn sums_values() {
        assert_eq!(sum_u64(&[1, 2, 3, 78492]), Ok(78498));
        assert_eq!(sum_u64(&[u64::MAX - 1, 1]), Ok(u64::MAX));
    }

    #[test]
    fn overflow_names_the_value() {
        assert_eq!(
            sum_u64(&[1, u64::MAX - 1, 1, 5]),
            Err(Overflow { index: 2 })
        );
        assert_eq!(
            Overflow { index: 2 }.to_string(),
            "sum overflows u64 at value 2"
        );
    }
}
