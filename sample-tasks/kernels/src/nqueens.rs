//! Count the solutions of the N-queens puzzle below a fixed prefix.
//!
//! A workload fixes the queens of the first rows differently in each task
//! (see [`prefixes`]) and counts the completions by bitmask backtracking;
//! the counts over all prefixes of one depth add up to Q(n). The work per
//! task is very uneven, which makes it a good test of scheduling.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Largest supported board: rows are `u32` bitmasks. Boards past ~20 take
/// years anyway.
pub const MAX_N: u32 = 32;

/// Input of the `nqueens` task: count the placements on an `n`×`n` board
/// that start with `prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NQueensInput {
    /// Board size.
    pub n: u32,
    /// Column of the queen in each of the first rows; empty counts all Q(n).
    #[serde(default)]
    pub prefix: Vec<u32>,
}

impl NQueensInput {
    /// Counts the solutions of this input, see [`count_solutions`].
    pub fn count(&self) -> Result<u64, NQueensError> {
        count_solutions(self.n, &self.prefix)
    }
}

/// Why an input does not describe a position to count from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NQueensError {
    /// `n` exceeds [`MAX_N`].
    BoardTooLarge {
        /// Requested board size.
        n: u32,
    },
    /// The prefix has more rows than the board.
    PrefixTooLong {
        /// Rows in the prefix.
        rows: usize,
        /// Board size.
        n: u32,
    },
    /// A queen of the prefix is off the board.
    ColumnOutOfRange {
        /// Row of the queen.
        row: usize,
        /// Its column, `>= n`.
        column: u32,
        /// Board size.
        n: u32,
    },
    /// A queen of the prefix is attacked by a queen of an earlier row.
    Conflict {
        /// Row of the attacked queen.
        row: usize,
        /// Its column.
        column: u32,
    },
}

impl fmt::Display for NQueensError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BoardTooLarge { n } => write!(f, "board size {n} exceeds {MAX_N}"),
            Self::PrefixTooLong { rows, n } => {
                write!(f, "prefix of {rows} rows does not fit a board of {n}")
            }
            Self::ColumnOutOfRange { row, column, n } => {
                write!(f, "row {row}: column {column} is off a board of {n}")
            }
            Self::Conflict { row, column } => {
                write!(f, "row {row}: queen at column {column} is attacked")
            }
        }
    }
}

impl std::error::Error for NQueensError {}

/// The squares attacked in the next row, as bitmasks (bit `c` = column `c`).
#[derive(Debug, Clone, Copy)]
struct Position {
    /// All columns of the board.
    full: u32,
    /// Columns already holding a queen.
    columns: u32,
    /// Attacks along diagonals going towards higher columns.
    rising: u32,
    /// Attacks along diagonals going towards lower columns.
    falling: u32,
}

impl Position {
    fn empty(n: u32) -> Self {
        Self {
            full: if n == 0 { 0 } else { u32::MAX >> (32 - n) },
            columns: 0,
            rising: 0,
            falling: 0,
        }
    }

    fn free(self) -> u32 {
        self.full & !(self.columns | self.rising | self.falling)
    }

    /// The position one row down after placing a queen on `bit`.
    fn place(self, bit: u32) -> Self {
        Self {
            full: self.full,
            columns: self.columns | bit,
            rising: ((self.rising | bit) << 1) & self.full,
            falling: (self.falling | bit) >> 1,
        }
    }

    /// Places the queens of `prefix`, checking each one.
    fn after(n: u32, prefix: &[u32]) -> Result<Self, NQueensError> {
        if n > MAX_N {
            return Err(NQueensError::BoardTooLarge { n });
        }
        if prefix.len() > n as usize {
            return Err(NQueensError::PrefixTooLong {
                rows: prefix.len(),
                n,
            });
        }
        let mut position = Self::empty(n);
        for (row, &column) in prefix.iter().enumerate() {
            if column >= n {
                return Err(NQueensError::ColumnOutOfRange { row, column, n });
            }
            let bit = 1 << column;
            if position.free() & bit == 0 {
                return Err(NQueensError::Conflict { row, column });
            }
            position = position.place(bit);
        }
        Ok(position)
    }

    fn count_completions(self) -> u64 {
        if self.columns == self.full {
            return 1;
        }
        let mut free = self.free();
        let mut count = 0;
        while free != 0 {
            let bit = free & free.wrapping_neg();
            free ^= bit;
            count += self.place(bit).count_completions();
        }
        count
    }
}

/// Number of ways to complete `prefix` to `n` non-attacking queens on an
/// `n`×`n` board; with an empty prefix, Q(n).
///
/// An impossible prefix (queens attacking each other, a column off the
/// board, more rows than the board) is an error rather than 0, because it
/// means the workload was split wrongly.
pub fn count_solutions(n: u32, prefix: &[u32]) -> Result<u64, NQueensError> {
    Ok(Position::after(n, prefix)?.count_completions())
}

/// All valid prefixes of `depth` rows on an `n`×`n` board, in lexicographic
/// order: one task each, and their counts sum to Q(n).
///
/// Empty when `depth > n` or `n > MAX_N`, since no such prefix exists.
pub fn prefixes(n: u32, depth: u32) -> Vec<Vec<u32>> {
    let mut found = Vec::new();
    if n <= MAX_N && depth <= n {
        let mut prefix = Vec::with_capacity(depth as usize);
        extend_prefixes(Position::empty(n), depth, &mut prefix, &mut found);
    }
    found
}

fn extend_prefixes(
    position: Position,
    depth: u32,
    prefix: &mut Vec<u32>,
    found: &mut Vec<Vec<u32>>,
) {
    if prefix.len() == depth as usize {
        found.push(prefix.clone());
        return;
    }
    let mut free = position.free();
    while free != 0 {
        let column = free.trailing_zeros();
        let bit = 1 << column;
        free ^= bit;
        prefix.push(column);
        extend_prefixes(position.place(bit), depth, prefix, found);
        prefix.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_counts() {
        let known = [1, 1, 0, 0, 2, 10, 4, 40, 92, 352, 724];
        for (n, &expected) in known.iter().enumerate() {
            assert_eq!(count_solutions(n as u32, &[]), Ok(expected), "Q({n})");
        }
        assert_eq!(count_solutions(12, &[]), Ok(14_200));
        // About half a second unoptimised.
        assert_eq!(count_solutions(14, &[]), Ok(365_596));
    }

    #[test]
    fn prefixes_split_the_count() {
        for depth in 0..=3 {
            let total: u64 = prefixes(10, depth)
                .iter()
                .map(|prefix| count_solutions(10, prefix).expect("listed prefixes are valid"))
                .sum();
            assert_eq!(total, 724, "depth {depth}");
        }
        assert_eq!(prefixes(8, 0), vec![Vec::<u32>::new()]);
        assert_eq!(prefixes(8, 1).len(), 8);
        // Two queens in adjacent rows need columns at least 2 apart.
        assert_eq!(
            prefixes(4, 2),
            vec![
                vec![0, 2],
                vec![0, 3],
                vec![1, 3],
                vec![2, 0],
                vec![3, 0],
                vec![3, 1]
            ]
        );
        assert!(prefixes(3, 4).is_empty());
        assert!(prefixes(MAX_N + 1, 1).is_empty());
    }

    #[test]
    fn full_solution_as_prefix_counts_one() {
        assert_eq!(count_solutions(4, &[1, 3, 0, 2]), Ok(1));
    }

    #[test]
    fn invalid_prefixes_are_errors() {
        assert_eq!(
            count_solutions(8, &[0, 0]),
            Err(NQueensError::Conflict { row: 1, column: 0 })
        );
        assert_eq!(
            count_solutions(8, &[0, 1]),
            Err(NQueensError::Conflict { row: 1, column: 1 })
        );
        assert_eq!(
            count_solutions(8, &[3, 5, 1]),
            Err(NQueensError::Conflict { row: 2, column: 1 })
        );
        assert_eq!(
            count_solutions(8, &[8]),
            Err(NQueensError::ColumnOutOfRange {
                row: 0,
                column: 8,
                n: 8
            })
        );
        assert_eq!(
            count_solutions(8, &[u32::MAX]),
            Err(NQueensError::ColumnOutOfRange {
                row: 0,
                column: u32::MAX,
                n: 8
            })
        );
        assert_eq!(
            count_solutions(2, &[0, 1, 1]),
            Err(NQueensError::PrefixTooLong { rows: 3, n: 2 })
        );
        assert_eq!(
            count_solutions(33, &[]),
            Err(NQueensError::BoardTooLarge { n: 33 })
        );
    }

    #[test]
    fn largest_board_uses_every_bit() {
        // The classic explicit solution for n % 6 == 2 (1-based columns):
        // evens 2..=n, then odds 3, 1, 7, 9, ..., n - 1, 5.
        let mut columns: Vec<u32> = (1..=MAX_N / 2).map(|k| 2 * k).collect();
        columns.extend([3, 1]);
        columns.extend((7..MAX_N).step_by(2));
        columns.push(5);
        let solution: Vec<u32> = columns.iter().map(|column| column - 1).collect();
        assert_eq!(count_solutions(MAX_N, &solution), Ok(1));
        let mut broken = solution.clone();
        broken.swap(0, 1);
        assert!(count_solutions(MAX_N, &broken).is_err());
    }

    #[test]
    fn input_without_prefix_defaults_to_empty() {
        let input: NQueensInput = serde_json::from_str(r#"{"n": 8}"#).expect("valid");
        assert_eq!(input.count(), Ok(92));
    }
}
