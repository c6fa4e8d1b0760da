//! Parses `kafka-consumer-groups --describe --group G` as Kafka 3.x prints it, and classifies
//! two samples taken some seconds apart.
//!
//! Kafka writes the table to stdout (after a blank line, columns padded to the longest value,
//! `-` for unknown values) and its notices to stderr (`Consumer group 'G' has no active
//! members.`, `Warning: ... is rebalancing.`), except `Error: ...` lines, which go to stdout
//! with exit code 0. Both streams are therefore read.

use std::collections::BTreeMap;

use serde::Serialize;

/// The header's first column, which starts the table.
const HEADER_START: &str = "GROUP ";

/// One row of the table: one partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionRow {
    /// The topic.
    pub(crate) topic: String,
    /// The partition number.
    pub(crate) partition: u32,
    /// The group's committed offset; `None` for `-` (never committed).
    pub(crate) current_offset: Option<i64>,
    /// The partition's end offset; `None` for `-`.
    pub(crate) log_end_offset: Option<i64>,
    /// `LOG-END-OFFSET - CURRENT-OFFSET`; `None` for `-`.
    pub(crate) lag: Option<i64>,
    /// The member that owns the partition; `None` for `-` (no active member).
    pub(crate) consumer_id: Option<String>,
}

/// One parsed `--describe` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Description {
    /// Every partition row, in Kafka's order.
    pub(crate) rows: Vec<PartitionRow>,
    /// Whether the group has members: no "has no active members" notice, and some row has one.
    pub(crate) active_members: bool,
    /// The table as printed, header first, for people to read.
    pub(crate) table: String,
}

impl Description {
    /// The distinct topics, sorted.
    pub(crate) fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.rows.iter().map(|r| r.topic.clone()).collect();
        topics.sort();
        topics.dedup();
        topics
    }

    /// Total lag over the partitions whose lag is known.
    pub(crate) fn total_lag(&self) -> i64 {
        self.rows.iter().filter_map(|r| r.lag).sum()
    }

    /// Committed offsets by (topic, partition), for comparing two samples.
    fn offsets(&self) -> BTreeMap<(&str, u32), Option<i64>> {
        self.rows
            .iter()
            .map(|r| ((r.topic.as_str(), r.partition), r.current_offset))
            .collect()
    }
}

/// Parses one run's stdout and stderr for `group`. `Err` carries the text to report: Kafka's
/// own `Error: ...` line, or why there is nothing to measure.
pub(crate) fn parse(group: &str, stdout: &str, stderr: &str) -> Result<Description, String> {
    let lines = || stdout.lines().chain(stderr.lines()).map(str::trim);
    if let Some(error) = lines().find(|l| l.starts_with("Error:")) {
        return Err(error.to_owned());
    }
    let no_members = lines().any(|l| l.ends_with("has no active members."));
    let mut rows = Vec::new();
    let mut table = Vec::new();
    let mut in_table = false;
    for line in stdout.lines() {
        if !in_table {
            in_table = line.starts_with(HEADER_START) && line.contains("LOG-END-OFFSET");
            if in_table {
                table.push(line.trim_end());
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        table.push(line.trim_end());
        // The group id comes first and may contain spaces; we know it, so strip it rather
        // than split it. Topic names cannot contain whitespace, so the rest splits cleanly.
        let rest = line
            .strip_prefix(group)
            .ok_or_else(|| format!("unexpected line in the table for group {group:?}: {line:?}"))?;
        rows.push(parse_row(rest).ok_or_else(|| format!("unparseable table row: {line:?}"))?);
    }
    if rows.is_empty() {
        // Kafka prints no table when the group has no offsets to show: report its notice.
        let notice = lines().find(|l| !l.is_empty()).unwrap_or("no output");
        return Err(format!(
            "no partition offsets for group {group:?} to measure lag from ({notice})"
        ));
    }
    let active_members = !no_members && rows.iter().any(|r| r.consumer_id.is_some());
    Ok(Description {
        rows,
        active_members,
        table: table.join("\n"),
    })
}

/// Parses the columns after GROUP: TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG and
/// then CONSUMER-ID HOST CLIENT-ID (which older tools omit, so they are optional).
fn parse_row(rest: &str) -> Option<PartitionRow> {
    let cols: Vec<&str> = rest.split_whitespace().collect();
    if cols.len() < 5 {
        return None;
    }
    let number = |s: &str| -> Option<Option<i64>> {
        if s == "-" {
            Some(None)
        } else {
            s.parse().ok().map(Some)
        }
    };
    Some(PartitionRow {
        topic: cols[0].to_owned(),
        partition: cols[1].parse().ok()?,
        current_offset: number(cols[2])?,
        log_end_offset: number(cols[3])?,
        lag: number(cols[4])?,
        consumer_id: cols.get(5).filter(|c| **c != "-").map(|c| (*c).to_owned()),
    })
}

/// What two samples say about the consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    /// No lag in the last sample.
    Idle,
    /// Lag > 0 and no committed offset moved: the consumer is not consuming.
    Stuck,
    /// Offsets move but lag grew: it consumes slower than producers write.
    FallingBehind,
    /// Lag shrank.
    CatchingUp,
    /// Offsets move and lag is unchanged (and > 0): keeping pace, not gaining.
    Steady,
}

impl Classification {
    /// The name used in outputs and `when` conditions.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Stuck => "stuck",
            Self::FallingBehind => "falling_behind",
            Self::CatchingUp => "catching_up",
            Self::Steady => "steady",
        }
    }
}

/// The comparison of two samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Total lag in the first sample.
    pub(crate) lag_first: i64,
    /// Total lag in the second sample.
    pub(crate) lag_last: i64,
    /// Whether any partition's committed offset changed between the samples.
    pub(crate) offsets_moved: bool,
    /// What that means.
    pub(crate) classification: Classification,
}

/// Compares two samples of the same group.
pub(crate) fn classify(first: &Description, last: &Description) -> Verdict {
    let (lag_first, lag_last) = (first.total_lag(), last.total_lag());
    let before = first.offsets();
    // A partition that appeared, or whose offset changed, counts as movement.
    let offsets_moved = last
        .offsets()
        .iter()
        .any(|(key, offset)| before.get(key) != Some(offset));
    let classification = if lag_last == 0 {
        Classification::Idle
    } else if !offsets_moved {
        Classification::Stuck
    } else if lag_last < lag_first {
        Classification::CatchingUp
    } else if lag_last > lag_first {
        Classification::FallingBehind
    } else {
        Classification::Steady
    };
    Verdict {
        lag_first,
        lag_last,
        offsets_moved,
        classification,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP: &str = "k2-bronze-binance-ingestion";

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/kafka/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path).unwrap_or_default()
    }

    fn parse_fixture(name: &str) -> Result<Description, String> {
        let (stdout, stderr) = (
            fixture(&format!("{name}.stdout")),
            fixture(&format!("{name}.stderr")),
        );
        parse(GROUP, &stdout, &stderr)
    }

    #[test]
    fn fixtures_parse_to_their_totals() {
        // (fixture, partitions, topics, total lag, active members)
        let table: &[(&str, usize, &[&str], i64, bool)] = &[
            (
                "stable_two_topics",
                3,
                &[
                    "market.crypto.orderbook.binance.raw",
                    "market.crypto.trades.binance.raw",
                ],
                1000,
                true,
            ),
            (
                "no_active_members",
                1,
                &["market.crypto.trades.binance.raw"],
                12000,
                false,
            ),
            (
                "unknown_offset",
                2,
                &["market.crypto.trades.binance.raw"],
                250,
                true,
            ),
            (
                "caught_up",
                2,
                &["market.crypto.trades.binance.raw"],
                0,
                true,
            ),
        ];
        for (name, partitions, topics, lag, active) in table {
            let d = parse_fixture(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(d.rows.len(), *partitions, "{name}");
            assert_eq!(d.topics(), *topics, "{name}");
            assert_eq!(d.total_lag(), *lag, "{name}");
            assert_eq!(d.active_members, *active, "{name}");
            assert!(d.table.starts_with("GROUP "), "{name}");
            assert_eq!(d.table.lines().count(), partitions + 1, "{name}");
        }
    }

    #[test]
    fn unknown_values_are_none_not_zero() {
        let d = parse_fixture("unknown_offset").expect("parses");
        let row = &d.rows[1];
        assert_eq!((row.partition, row.current_offset), (1, None));
        assert_eq!((row.log_end_offset, row.lag), (Some(4100), None));
        let d = parse_fixture("no_active_members").expect("parses");
        assert_eq!(d.rows[0].consumer_id, None);
    }

    #[test]
    fn errors_and_empty_answers_carry_kafkas_words() {
        let err = parse("k2-typo", &fixture("missing_group.stdout"), "").expect_err("error");
        assert_eq!(err, "Error: Consumer group 'k2-typo' does not exist.");
        let err = parse_fixture("rebalancing").expect_err("no rows");
        assert!(err.contains("is rebalancing"), "{err}");
        let err = parse(GROUP, "", "").expect_err("nothing");
        assert!(err.contains("no output"), "{err}");
    }

    #[test]
    fn a_group_id_with_spaces_is_stripped_not_split() {
        let group = "g'; touch /tmp/pwned; echo '$(id)";
        let out = format!(
            "\nGROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG\n{group} t 0 10 15 5 - - -\n"
        );
        let d = parse(group, &out, "").expect("parses");
        assert_eq!(d.rows[0].topic, "t");
        assert_eq!(d.total_lag(), 5);
        assert!(parse("other", &out, "").is_err());
    }

    fn sample(rows: &[(u32, Option<i64>, i64)]) -> Description {
        Description {
            rows: rows
                .iter()
                .map(|&(partition, current, end)| PartitionRow {
                    topic: "t".into(),
                    partition,
                    current_offset: current,
                    log_end_offset: Some(end),
                    lag: current.map(|c| end - c),
                    consumer_id: None,
                })
                .collect(),
            active_members: false,
            table: String::new(),
        }
    }

    #[test]
    fn classification_table() {
        use Classification::*;
        // (first sample, second sample, offsets moved, classification)
        type Rows = &'static [(u32, Option<i64>, i64)];
        let table: &[(Rows, Rows, bool, Classification)] = &[
            (&[(0, Some(100), 100)], &[(0, Some(100), 100)], false, Idle),
            (&[(0, Some(100), 150)], &[(0, Some(160), 160)], true, Idle),
            (
                &[(0, Some(100), 12100)],
                &[(0, Some(100), 12100)],
                false,
                Stuck,
            ),
            (
                &[(0, Some(100), 12100)],
                &[(0, Some(100), 12500)],
                false,
                Stuck,
            ),
            (
                &[(0, Some(100), 600)],
                &[(0, Some(200), 900)],
                true,
                FallingBehind,
            ),
            (
                &[(0, Some(100), 900)],
                &[(0, Some(700), 1000)],
                true,
                CatchingUp,
            ),
            (&[(0, Some(100), 600)], &[(0, Some(200), 700)], true, Steady),
            // Only one of two partitions moving is still movement.
            (
                &[(0, Some(100), 600), (1, Some(50), 60)],
                &[(0, Some(100), 600), (1, Some(55), 70)],
                true,
                FallingBehind,
            ),
            // A partition committing its first offset is movement; unknown lag counts 0.
            (
                &[(0, None, 500)],
                &[(0, Some(400), 500)],
                true,
                FallingBehind,
            ),
        ];
        for (i, (first, last, moved, want)) in table.iter().enumerate() {
            let v = classify(&sample(first), &sample(last));
            assert_eq!(
                (v.offsets_moved, v.classification),
                (*moved, *want),
                "row {i}"
            );
        }
    }
}
