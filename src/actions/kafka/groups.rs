//! Parses the every-group forms of `kafka-consumer-groups` (Kafka 3.x) and grades each group
//! by the runbook's weekly lag review: LAG < 1,000 green, > 10,000 red, offsets not moving
//! with lag red, group `Dead` red.
//!
//! `--list --state` prints a `GROUP STATE` table (one group a line, the state last).
//! `--describe --all-groups` prints, per group, a blank line, the same header as the one-group
//! form and that group's rows; its notices (`Consumer group 'G' has no active members.`) go to
//! stderr and name the group, and a group that died between the two calls is reported as
//! `Consumer group 'G' does not exist.`, which is how Kafka shows the `Dead` state.

use std::collections::BTreeMap;

use serde::Serialize;

use super::describe::{self, Classification, Description};
use crate::actions::disk_usage::Grade;

/// One group as `--list --state` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// The group id.
    pub(crate) group: String,
    /// Its state (`Stable`, `Empty`, `Dead`, ...), when the tool printed one.
    pub(crate) state: Option<String>,
}

/// Parses `--list --state` (or a plain `--list`: one id a line, no header). `Err` carries
/// Kafka's own `Error: ...` line.
pub(crate) fn parse_list(stdout: &str, stderr: &str) -> Result<Vec<Listed>, String> {
    let lines = || stdout.lines().chain(stderr.lines()).map(str::trim);
    if let Some(error) = lines().find(|l| l.starts_with("Error:")) {
        return Err(error.to_owned());
    }
    let mut with_state = false;
    let mut groups = Vec::new();
    for line in stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("GROUP ") && line.ends_with("STATE") {
            with_state = true;
            continue;
        }
        let listed = match line.rsplit_once(char::is_whitespace) {
            Some((group, state)) if with_state => Listed {
                group: group.trim().to_owned(),
                state: Some(state.to_owned()),
            },
            _ => Listed {
                group: line.to_owned(),
                state: None,
            },
        };
        groups.push(listed);
    }
    Ok(groups)
}

/// Splits `--describe --all-groups` output into one [`Description`] per group of `known`.
/// Rows are matched to the longest known id they start with, since an id may hold spaces.
/// Groups without offsets (no table) are absent.
pub(crate) fn split_all(
    stdout: &str,
    stderr: &str,
    known: &[String],
) -> BTreeMap<String, Description> {
    // A table is its header and the rows up to the next blank line; anything else (an
    // `Error: ...` line for a group that died) stays out of it.
    let mut blocks: Vec<Vec<&str>> = Vec::new();
    let mut open = false;
    for line in stdout.lines() {
        if line.starts_with("GROUP ") && line.contains("LOG-END-OFFSET") {
            blocks.push(vec![line]);
            open = true;
        } else if line.trim().is_empty() {
            open = false;
        } else if let Some(block) = blocks.last_mut().filter(|_| open) {
            block.push(line);
        }
    }
    let mut by_group = BTreeMap::new();
    for block in blocks {
        let Some(first_row) = block.get(1) else {
            continue;
        };
        let group = known
            .iter()
            .filter(|g| {
                first_row
                    .strip_prefix(g.as_str())
                    .is_some_and(|rest| rest.starts_with(char::is_whitespace))
            })
            .max_by_key(|g| g.len())
            .cloned()
            .or_else(|| first_row.split_whitespace().next().map(str::to_owned));
        let Some(group) = group else {
            continue;
        };
        let quoted = format!("'{group}'");
        let notices: Vec<&str> = stderr.lines().filter(|l| l.contains(&quoted)).collect();
        let text = format!("\n{}\n", block.join("\n"));
        if let Ok(d) = describe::parse(&group, &text, &notices.join("\n")) {
            by_group.insert(group, d);
        }
    }
    by_group
}

/// Whether Kafka said `group` does not exist: the `Dead` state seen through `--describe`.
pub(crate) fn reported_dead(group: &str, stdout: &str, stderr: &str) -> bool {
    let notice = format!("Consumer group '{group}' does not exist.");
    stdout
        .lines()
        .chain(stderr.lines())
        .any(|l| l.contains(&notice))
}

/// The runbook's lag thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Thresholds {
    /// Lag from this many messages on is yellow.
    pub(crate) yellow: i64,
    /// Lag above this many messages is red.
    pub(crate) red: i64,
}

/// One group's review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupReview {
    /// The group id.
    pub group: String,
    /// Its state, as listed (`Stable`, `Empty`, `Dead`, ...; empty when unknown).
    pub state: String,
    /// Total lag at the second sample.
    pub lag: i64,
    /// Lag change between the samples.
    pub lag_change: i64,
    /// Whether a committed offset moved between the samples.
    pub offsets_moved: bool,
    /// Partitions with committed offsets.
    pub partitions: usize,
    /// `green`, `yellow` or `red`.
    pub grade: Grade,
    /// Why, in the runbook's words, with its action for yellow and red.
    pub verdict: String,
}

/// Grades one group from its state and its two samples (`None` when it has no offsets).
pub(crate) fn review(
    listed: &Listed,
    samples: Option<(&Description, &Description)>,
    dead: bool,
    t: Thresholds,
) -> GroupReview {
    let state = listed.state.clone().unwrap_or_default();
    let mut r = GroupReview {
        group: listed.group.clone(),
        state: state.clone(),
        lag: 0,
        lag_change: 0,
        offsets_moved: false,
        partitions: 0,
        grade: Grade::Green,
        verdict: String::new(),
    };
    if let Some((first, last)) = samples {
        let v = describe::classify(first, last);
        r.lag = v.lag_last;
        r.lag_change = v.lag_last - v.lag_first;
        r.offsets_moved = v.offsets_moved;
        r.partitions = last.rows.len();
        let stuck = v.classification == Classification::Stuck;
        (r.grade, r.verdict) = if dead || state == "Dead" {
            (Grade::Red, dead_verdict())
        } else if stuck {
            let verdict = format!(
                "lag {} and offsets not moving: consumer stuck; restart the streaming job",
                r.lag
            );
            (Grade::Red, verdict)
        } else if r.lag > t.red {
            let verdict = format!(
                "lag {} > {}: falling behind; check Spark UI batch times, may need to scale up",
                r.lag, t.red
            );
            (Grade::Red, verdict)
        } else if r.lag >= t.yellow {
            (
                Grade::Yellow,
                format!("lag {} ≥ {}: watch it", r.lag, t.yellow),
            )
        } else {
            (Grade::Green, format!("lag {}", r.lag))
        };
    } else if dead || state == "Dead" {
        (r.grade, r.verdict) = (Grade::Red, dead_verdict());
    } else {
        r.verdict = "no committed offsets".to_owned();
    }
    r
}

/// The runbook's words for a `Dead` group.
fn dead_verdict() -> String {
    "group Dead (abandoned): should not happen with explicit group ids; investigate".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        yellow: 1000,
        red: 10_000,
    };

    #[test]
    fn list_reads_states_or_bare_ids() {
        let listed = parse_list(
            "\nGROUP                        STATE\nk2-bronze-binance-ingestion  Stable\nold group    Dead\n",
            "",
        )
        .expect("parses");
        assert_eq!(listed[0].group, "k2-bronze-binance-ingestion");
        assert_eq!(listed[0].state.as_deref(), Some("Stable"));
        assert_eq!(listed[1].group, "old group");
        assert_eq!(listed[1].state.as_deref(), Some("Dead"));
        let bare = parse_list("a\nb\n", "").expect("parses");
        assert_eq!(
            (bare[1].group.as_str(), bare[1].state.as_deref()),
            ("b", None)
        );
        let err = parse_list("\nError: Timed out waiting for a node assignment.\n", "");
        assert!(err.expect_err("error").contains("Timed out"));
    }

    const ALL: &str = "
GROUP   TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID  HOST  CLIENT-ID
a       t      0          100             150             50   c-1          /h    c
a       t      1          100             100             0    c-1          /h    c

Error: Consumer group 'gone' does not exist.

GROUP   TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID  HOST  CLIENT-ID
a b     u      0          5               20005           20000 -           -     -
";

    fn known() -> Vec<String> {
        ["a", "a b", "idle"].map(str::to_owned).to_vec()
    }

    #[test]
    fn all_groups_split_by_longest_known_id() {
        let stderr = "\nConsumer group 'a b' has no active members.\n";
        let groups = split_all(ALL, stderr, &known());
        assert_eq!(groups.keys().collect::<Vec<_>>(), ["a", "a b"]);
        assert_eq!(groups["a"].total_lag(), 50);
        assert!(groups["a"].active_members);
        assert_eq!(groups["a b"].total_lag(), 20000);
        assert!(!groups["a b"].active_members);
    }

    #[test]
    fn reviews_grade_by_the_runbook() {
        let groups = split_all(ALL, "", &known());
        let listed = |g: &str, s: &str| Listed {
            group: g.into(),
            state: Some(s.into()),
        };
        let a = &groups["a"];
        // Same sample twice: lag 50 with offsets still is "stuck" by the lag classifier.
        let r = review(&listed("a", "Stable"), Some((a, a)), false, T);
        assert_eq!(r.grade, Grade::Red, "{r:?}");
        assert!(r.verdict.contains("offsets not moving"), "{r:?}");
        let ab = &groups["a b"];
        let r = review(&listed("a b", "Empty"), Some((ab, ab)), false, T);
        assert_eq!(r.grade, Grade::Red);
        assert!(
            r.verdict.starts_with("lag 20000 and offsets not moving"),
            "{r:?}"
        );
        let r = review(&listed("idle", "Empty"), None, false, T);
        assert_eq!(
            (r.grade, r.verdict.as_str()),
            (Grade::Green, "no committed offsets")
        );
        let r = review(&listed("gone", "Stable"), None, true, T);
        assert_eq!(r.grade, Grade::Red);
        assert!(r.verdict.contains("Dead"));
        assert!(reported_dead(
            "gone",
            "\nError: Consumer group 'gone' does not exist.\n",
            ""
        ));
    }

    #[test]
    fn moving_offsets_grade_by_lag_alone() {
        let at = |current: i64, end: i64| {
            let text = format!(
                "GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG\ng t 0 {current} {end} {}\n",
                end - current
            );
            describe::parse("g", &text, "").expect("parses")
        };
        let listed = Listed {
            group: "g".into(),
            state: Some("Stable".into()),
        };
        // (lag at the second sample, grade)
        for (lag, want) in [
            (999, Grade::Green),
            (1000, Grade::Yellow),
            (10_000, Grade::Yellow),
            (10_001, Grade::Red),
        ] {
            let (first, last) = (at(0, 100), at(100, 100 + lag));
            let r = review(&listed, Some((&first, &last)), false, T);
            assert_eq!((r.lag, r.grade), (lag, want), "{r:?}");
            if want == Grade::Red {
                assert!(r.verdict.contains("10001 > 10000: falling behind"), "{r:?}");
            }
            assert!(r.offsets_moved);
        }
    }
}
