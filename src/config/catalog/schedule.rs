//! A responder file's `schedule:`, `timezone:`, `catch_up:` and `channel:`, compiled and
//! checked, each problem reported at its own key.

use super::{duration, Problems, RawResponder};
use crate::responders::schedule::{Schedule, DEFAULT_CATCH_UP};

/// The compiled schedule (if the file has a valid one) and channel; also says when a
/// responder without a schedule lacks a target, which only a scheduled one may leave out.
pub(super) fn compile(
    raw: &RawResponder,
    problems: &mut Problems<'_>,
) -> (Option<Schedule>, Option<String>) {
    if raw.target.is_none() && raw.schedule.is_none() {
        problems.add(
            "target",
            "missing: only a responder with a `schedule:` may leave out its target",
        );
    }
    let channel = raw.channel.as_deref().and_then(|channel| {
        let channel = channel.trim();
        let valid = !channel.is_empty() && !channel.chars().any(char::is_whitespace);
        if !valid {
            problems.add(
                "channel",
                format!(
                    "{channel:?}: name one Slack channel, e.g. '#data-platform-oncall' or its ID"
                ),
            );
        }
        valid.then(|| channel.to_owned())
    });
    let Some(pattern) = raw.schedule.as_deref() else {
        // Without a schedule these keys would be silently ignored: a typo'd file, say so.
        for (key, set) in [("timezone", &raw.timezone), ("catch_up", &raw.catch_up)] {
            if set.is_some() {
                problems.add(key, "only means something with a `schedule:`");
            }
        }
        return (None, channel);
    };
    let catch_up = match raw.catch_up.as_deref().map(duration).transpose() {
        Ok(catch_up) => catch_up.unwrap_or(DEFAULT_CATCH_UP),
        Err(e) => {
            problems.add("catch_up", e);
            return (None, channel);
        }
    };
    let timezone = raw.timezone.as_deref().unwrap_or("UTC").trim();
    match Schedule::new(pattern, timezone, catch_up) {
        Ok(schedule) => (Some(schedule), channel),
        Err((key, reason)) => {
            problems.add(key, reason);
            (None, channel)
        }
    }
}
