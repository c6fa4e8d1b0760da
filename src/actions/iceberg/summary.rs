//! Parses what K2's `iceberg_maintenance.py` prints, dry run or `--execute`, into per-table
//! numbers and the runbook's red flags.
//!
//! The script prints a banner per table and operation (`Table: <name>`, `Operation: ...`),
//! then one result line: `Current snapshots: N`, `DRY RUN: Would expire ~N snapshots`,
//! `✓ Skipping: Only N snapshots (below minimum M)`, `✓ Expired N snapshots (retained M)`,
//! `✓ Removed N orphan files` or `✗ ERROR: <message>`; a missing table is
//! `⚠️  Skipping <name> (table does not exist)`, and a crash `✗ FATAL ERROR: <message>`. Its
//! closing totals are recomputed here from the per-table lines, so a cut output still adds up.

use serde::Serialize;

/// What the script said about one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableResult {
    /// The table as the script names it, without the `iceberg.market_data.` prefix.
    pub table: String,
    /// Snapshots before this run (`Current snapshots`), if printed.
    pub snapshots: Option<u64>,
    /// Dry run: snapshots it would expire.
    pub would_expire: Option<u64>,
    /// `--execute`: snapshots it expired.
    pub expired: Option<u64>,
    /// `--execute`: snapshots left after expiry.
    pub retained: Option<u64>,
    /// `--execute`: orphan files it removed.
    pub orphans_removed: Option<u64>,
    /// Below the retention minimum, so nothing to expire.
    pub below_minimum: bool,
    /// The table does not exist.
    pub missing: bool,
    /// Its `✗ ERROR:` messages.
    pub errors: Vec<String>,
}

impl TableResult {
    /// One person-readable line, e.g. `t: 412 snapshots, would expire ~312`.
    pub(crate) fn line(&self) -> String {
        let t = self;
        let mut parts = Vec::new();
        if t.missing {
            parts.push("table does not exist".to_owned());
        }
        if let Some(n) = t.snapshots {
            parts.push(format!("{n} snapshots"));
        }
        match (t.would_expire, t.expired) {
            _ if t.below_minimum => parts.push("below the minimum kept, nothing to expire".into()),
            (_, Some(n)) => parts.push(format!(
                "expired {n}{}",
                t.retained
                    .map(|r| format!(" ({r} left)"))
                    .unwrap_or_default()
            )),
            (Some(n), None) => parts.push(format!("would expire ~{n}")),
            (None, None) => {}
        }
        if let Some(n) = t.orphans_removed {
            parts.push(format!("{n} orphan files removed"));
        }
        parts.extend(t.errors.iter().map(|e| format!("ERROR {e}")));
        format!("{}: {}", t.table, parts.join(", "))
    }
}

/// Everything the script printed, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    /// One entry per table, in the script's order.
    pub(crate) tables: Vec<TableResult>,
    /// `✗ FATAL ERROR:` messages (the run stopped).
    pub(crate) fatal: Vec<String>,
    /// Whether the closing `MAINTENANCE SUMMARY` was printed: the script got to the end.
    pub(crate) finished: bool,
}

/// The prefix every K2 table carries; dropped in outputs so Slack lines stay short.
const NAMESPACE: &str = "iceberg.market_data.";

impl Summary {
    /// The entry for `name`, created when first seen.
    fn table(&mut self, name: &str) -> &mut TableResult {
        let short = name.strip_prefix(NAMESPACE).unwrap_or(name);
        match self.tables.iter().position(|t| t.table == short) {
            Some(i) => &mut self.tables[i],
            None => {
                self.tables.push(TableResult {
                    table: short.to_owned(),
                    ..TableResult::default()
                });
                let last = self.tables.len() - 1;
                &mut self.tables[last]
            }
        }
    }

    /// Sum of `field` over the tables that have it.
    pub(crate) fn total(&self, field: impl Fn(&TableResult) -> Option<u64>) -> u64 {
        self.tables.iter().filter_map(field).sum()
    }

    /// Every error line, each with its table.
    pub(crate) fn errors(&self) -> Vec<String> {
        let per_table = self
            .tables
            .iter()
            .flat_map(|t| t.errors.iter().map(move |e| format!("{}: {e}", t.table)));
        per_table
            .chain(self.fatal.iter().map(|e| format!("fatal: {e}")))
            .collect()
    }
}

/// The first unsigned number in `text` (`~312` and `312,` both read as 312).
fn number(text: &str) -> Option<u64> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Parses the script's stdout.
pub(crate) fn parse(stdout: &str) -> Summary {
    let mut summary = Summary::default();
    let mut current: Option<String> = None;
    for line in stdout.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("Table: ") {
            current = Some(name.trim().to_owned());
            summary.table(name.trim());
            continue;
        }
        if line == "MAINTENANCE SUMMARY" {
            summary.finished = true;
            current = None;
            continue;
        }
        if let Some(message) = line.strip_prefix("✗ FATAL ERROR:") {
            summary.fatal.push(message.trim().to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("⚠️").map(str::trim) {
            if let Some(name) = rest
                .strip_prefix("Skipping ")
                .and_then(|r| r.strip_suffix(" (table does not exist)"))
            {
                summary.table(name.trim()).missing = true;
            }
            continue;
        }
        let Some(name) = current.clone() else {
            continue;
        };
        let entry = summary.table(&name);
        if let Some(rest) = line.strip_prefix("Current snapshots:") {
            entry.snapshots = number(rest);
        } else if let Some(rest) = line.strip_prefix("DRY RUN: Would expire") {
            entry.would_expire = number(rest);
        } else if let Some(rest) = line.strip_prefix("✓ Skipping: Only") {
            entry.below_minimum = true;
            entry.snapshots = entry.snapshots.or(number(rest));
            entry.would_expire = Some(0);
        } else if let Some(rest) = line.strip_prefix("✓ Expired") {
            entry.expired = number(rest);
            entry.retained = rest.split_once("retained").and_then(|(_, r)| number(r));
        } else if let Some(rest) = line.strip_prefix("✓ Removed") {
            entry.orphans_removed = number(rest);
        } else if let Some(message) = line.strip_prefix("✗ ERROR:") {
            entry.errors.push(message.trim().to_owned());
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/iceberg/{name}.stdout",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn a_dry_run_reads_counts_estimates_and_missing_tables() {
        let s = parse(&fixture("dry_run"));
        assert!(s.finished);
        let names: Vec<&str> = s.tables.iter().map(|t| t.table.as_str()).collect();
        assert_eq!(
            names,
            [
                "bronze_binance_trades",
                "bronze_kraken_trades",
                "silver_dlq_trades"
            ]
        );
        assert_eq!(s.tables[0].snapshots, Some(412));
        assert_eq!(s.tables[0].would_expire, Some(312));
        assert!(s.tables[1].below_minimum);
        assert_eq!(
            (s.tables[1].snapshots, s.tables[1].would_expire),
            (Some(96), Some(0))
        );
        assert!(s.tables[2].missing);
        assert_eq!(s.total(|t| t.snapshots), 508);
        assert_eq!(s.total(|t| t.would_expire), 312);
        assert!(s.errors().is_empty());
    }

    #[test]
    fn an_execute_reads_expiry_orphans_and_errors_per_table() {
        let s = parse(&fixture("execute_with_error"));
        let binance = &s.tables[0];
        assert_eq!(
            (binance.expired, binance.retained, binance.orphans_removed),
            (Some(312), Some(100), Some(340))
        );
        assert_eq!(s.total(|t| t.orphans_removed), 344);
        assert_eq!(s.total(|t| t.expired), 312);
        let errors = s.errors();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("silver_binance_trades: org.apache.iceberg"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_crash_is_a_fatal_error_and_no_summary() {
        let s = parse("\nMode: EXECUTE\n\n✗ FATAL ERROR: Connection refused: iceberg-rest:8181\n");
        assert!(!s.finished);
        assert_eq!(s.errors(), ["fatal: Connection refused: iceberg-rest:8181"]);
        assert!(parse("").tables.is_empty());
    }

    #[test]
    fn table_lines_say_what_happened() {
        let t = TableResult {
            table: "bronze_binance_trades".into(),
            snapshots: Some(412),
            would_expire: Some(312),
            ..TableResult::default()
        };
        assert_eq!(
            t.line(),
            "bronze_binance_trades: 412 snapshots, would expire ~312"
        );
        let t = TableResult {
            table: "t".into(),
            expired: Some(312),
            retained: Some(100),
            orphans_removed: Some(4),
            ..TableResult::default()
        };
        assert_eq!(
            t.line(),
            "t: expired 312 (100 left), 4 orphan files removed"
        );
    }

    #[test]
    fn numbers_read_past_marks() {
        assert_eq!(number(" ~312 snapshots"), Some(312));
        assert_eq!(number(" 96 snapshots (below minimum 100)"), Some(96));
        assert_eq!(number("none"), None);
    }
}
