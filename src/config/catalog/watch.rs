//! A responder's `watch:`: how long after a destructive step succeeded its alert is watched
//! for a recurrence (did the fix hold?).
//!
//! A responder with a destructive step watches 30 minutes unless it says otherwise;
//! `watch: off` turns it off. A responder with no destructive step has nothing to watch, and
//! a scheduled one no alert that could come back: `watch:` there is an error, so nobody
//! believes a fix is being checked when none is.

use std::time::Duration;

use super::{duration, Problems};

/// The watch of a responder with a destructive step that says nothing.
pub(crate) const DEFAULT_WATCH: Duration = Duration::from_secs(30 * 60);

/// How many recurrences within a day make a responder's destructive steps
/// on a target wait for an approval, unless it says otherwise.
pub(crate) const DEFAULT_INEFFECTIVE_LIMIT: u32 = 2;

/// The `ineffective_limit:` of a responder whose watch is `watch`.
pub(super) fn limit(raw: Option<u32>, watch: Option<Duration>, problems: &mut Problems<'_>) -> u32 {
    match (raw, watch) {
        (None, _) => DEFAULT_INEFFECTIVE_LIMIT,
        (Some(_), None) => {
            problems.add(
                "ineffective_limit",
                "this responder watches nothing (`watch:`), so no run of it is ever counted ineffective",
            );
            DEFAULT_INEFFECTIVE_LIMIT
        }
        (Some(0), Some(_)) => {
            problems.add("ineffective_limit", "must be at least 1");
            DEFAULT_INEFFECTIVE_LIMIT
        }
        (Some(n), Some(_)) => n,
    }
}

/// The watch `raw` asks for; `None` when there is none (problems noted in `problems`).
pub(super) fn compile(
    raw: Option<&str>,
    destructive: bool,
    scheduled: bool,
    problems: &mut Problems<'_>,
) -> Option<Duration> {
    if scheduled {
        if raw.is_some_and(|r| r.trim() != "off") {
            problems.add(
                "watch",
                "a scheduled responder has no alert that could come back: there is nothing to watch (remove `watch:`)",
            );
        }
        return None;
    }
    match (raw.map(str::trim), destructive) {
        (None, true) => Some(DEFAULT_WATCH),
        (None, false) => None,
        (Some("off"), _) => None,
        (Some(_), false) => {
            problems.add(
                "watch",
                "this responder has no destructive step: there is no fix to watch (remove `watch:`)",
            );
            None
        }
        (Some(text), true) => match duration(text) {
            Ok(d) if d.as_secs() == 0 => {
                problems.add(
                    "watch",
                    "must be at least 1s (use `watch: off` to not watch)",
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                problems.add("watch", e);
                None
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(raw: Option<&str>, destructive: bool) -> (Option<Duration>, Vec<String>) {
        compiled_as(raw, destructive, false)
    }

    fn compiled_as(
        raw: Option<&str>,
        destructive: bool,
        scheduled: bool,
    ) -> (Option<Duration>, Vec<String>) {
        let mut found = Vec::new();
        let mut problems = Problems {
            file: "responders/a.yaml",
            found: &mut found,
            deferred: Vec::new(),
            reads: Vec::new(),
        };
        let watch = compile(raw, destructive, scheduled, &mut problems);
        (watch, found.iter().map(|p| p.reason.clone()).collect())
    }

    #[test]
    fn defaults_to_30m_with_a_destructive_step_and_is_refused_without_one() {
        assert_eq!(compiled(None, true), (Some(DEFAULT_WATCH), vec![]));
        assert_eq!(compiled(None, false), (None, vec![]));
        assert_eq!(compiled(Some("off"), true), (None, vec![]));
        assert_eq!(
            compiled(Some("5s"), true),
            (Some(Duration::from_secs(5)), vec![])
        );
        let (watch, problems) = compiled(Some("30m"), false);
        assert_eq!(watch, None);
        assert!(problems[0].contains("no destructive step"), "{problems:?}");
        let (watch, problems) = compiled(Some("soon"), true);
        assert_eq!(watch, None);
        assert!(problems[0].contains("not a duration"), "{problems:?}");
        assert!(!compiled(Some("0s"), true).1.is_empty());
        assert_eq!(compiled_as(None, true, true), (None, vec![]));
        let (watch, problems) = compiled_as(Some("30m"), true, true);
        assert_eq!(watch, None);
        assert!(problems[0].contains("scheduled"), "{problems:?}");
    }

    #[test]
    fn the_ineffective_limit_defaults_to_2_and_needs_a_watch() {
        let mut found = Vec::new();
        let mut problems = Problems {
            file: "responders/a.yaml",
            found: &mut found,
            deferred: Vec::new(),
            reads: Vec::new(),
        };
        let watching = Some(DEFAULT_WATCH);
        assert_eq!(limit(None, watching, &mut problems), 2);
        assert_eq!(limit(Some(3), watching, &mut problems), 3);
        assert!(problems.found.is_empty());
        limit(Some(0), watching, &mut problems);
        limit(Some(3), None, &mut problems);
        assert_eq!(found.len(), 2, "{found:?}");
    }
}
