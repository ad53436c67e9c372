//! Plain-text tables for listings (`status --tasks`, `agents`, `workloads`,
//! `ledger`, the demo's agent statistics), and how times, durations and
//! large rates look in them.

use std::fmt::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Columns separated by two spaces, each as wide as its widest cell.
#[derive(Debug)]
pub struct Table {
    header: Vec<&'static str>,
    right_aligned: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles; a title starting with `>` marks a
    /// right-aligned (numeric) column, the `>` is not shown.
    pub fn new(header: &[&'static str]) -> Table {
        Table {
            header: header
                .iter()
                .map(|title| title.trim_start_matches('>'))
                .collect(),
            right_aligned: header.iter().map(|title| title.starts_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank, extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table, one line per row after the header, each ending in `\n`.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|column| {
                self.rows
                    .iter()
                    .map(|row| cell(row, column).chars().count())
                    .chain([self.header[column].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let header: Vec<String> = self
            .header
            .iter()
            .map(|title| (*title).to_owned())
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (column, width) in widths.iter().enumerate() {
                if column > 0 {
                    line.push_str("  ");
                }
                let text = cell(row, column);
                if self.right_aligned[column] {
                    let _ = write!(line, "{text:>width$}");
                } else {
                    let _ = write!(line, "{text:<width$}");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

fn cell(row: &[String], column: usize) -> &str {
    row.get(column).map_or("", String::as_str)
}

/// A duration rounded for people: `850ms`, `12.3s`, `4m 05s`, `2h 03m`.
pub fn duration_text(duration: Duration) -> String {
    let millis = duration.as_millis();
    let seconds = duration.as_secs();
    if millis < 1000 {
        format!("{millis}ms")
    } else if seconds < 60 {
        format!("{:.1}s", duration.as_secs_f64())
    } else if seconds < 3600 {
        format!("{}m {:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{}h {:02}m", seconds / 3600, seconds % 3600 / 60)
    }
}

/// A wire timestamp (milliseconds since the Unix epoch) as RFC 3339 UTC
/// to the second; `-` for 0, which means "not yet".
pub fn unix_ms_text(unix_ms: i64) -> String {
    match u64::try_from(unix_ms) {
        Ok(0) | Err(_) => "-".to_owned(),
        Ok(ms) => {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
        }
    }
}

/// How long ago a wire timestamp was, e.g. `3.2s ago`; `-` for 0.
pub fn ago_text(unix_ms: i64) -> String {
    match u64::try_from(unix_ms) {
        Ok(0) | Err(_) => "-".to_owned(),
        Ok(ms) => {
            let then = UNIX_EPOCH + Duration::from_millis(ms);
            let elapsed = SystemTime::now()
                .duration_since(then)
                .unwrap_or(Duration::ZERO);
            format!("{} ago", duration_text(elapsed))
        }
    }
}

/// The time between two wire timestamps; `None` if either is unset.
pub fn between(start_unix_ms: i64, end_unix_ms: i64) -> Option<Duration> {
    if start_unix_ms <= 0 || end_unix_ms <= 0 {
        return None;
    }
    u64::try_from(end_unix_ms - start_unix_ms)
        .ok()
        .map(Duration::from_millis)
}

/// A non-negative quantity with an SI prefix, for rates such as fuel per
/// second: `950`, `12.3k`, `412.0M`, `1.5G`; `-` for 0 or a value that is
/// not a finite positive number (nothing measured).
pub fn si_text(value: f64) -> String {
    if !value.is_finite() || value <= 0.0 {
        return "-".to_owned();
    }
    const PREFIXES: [(f64, &str); 5] =
        [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    for (scale, prefix) in PREFIXES {
        if value >= scale {
            return format!("{:.1}{prefix}", value / scale);
        }
    }
    format!("{value:.0}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_numbers_align_right() {
        let mut table = Table::new(&["NAME", ">FUEL", "NOTE"]);
        table.row(vec!["agent-1".into(), "5".into(), String::new()]);
        table.row(vec!["a".into(), "12345".into(), "slow".into()]);
        assert_eq!(
            table.render(),
            "NAME      FUEL  NOTE\nagent-1      5\na        12345  slow\n"
        );
    }

    #[test]
    fn durations_and_times_read_easily() {
        assert_eq!(duration_text(Duration::from_millis(850)), "850ms");
        assert_eq!(duration_text(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(duration_text(Duration::from_secs(245)), "4m 05s");
        assert_eq!(duration_text(Duration::from_secs(7380)), "2h 03m");
        assert_eq!(unix_ms_text(0), "-");
        assert_eq!(unix_ms_text(1_735_689_600_000), "2025-01-01T00:00:00Z");
        assert_eq!(between(1000, 3500), Some(Duration::from_millis(2500)));
        assert_eq!(between(1000, 0), None);
    }

    #[test]
    fn rates_get_si_prefixes() {
        assert_eq!(si_text(0.0), "-");
        assert_eq!(si_text(f64::NAN), "-");
        assert_eq!(si_text(950.4), "950");
        assert_eq!(si_text(12_345.0), "12.3k");
        assert_eq!(si_text(412_000_000.0), "412.0M");
        assert_eq!(si_text(1.5e9), "1.5G");
        assert_eq!(si_text(2e18), "2000.0P");
    }
}
