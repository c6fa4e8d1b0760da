//! The slash command's `schedule`: the scheduled responders with their next slots.

use time::OffsetDateTime;

use super::handlers::Done;
use super::SlackState;
use crate::config::Catalog;

/// `schedule`: every scheduled responder and its next slot.
pub(super) fn list(state: &SlackState) -> Done {
    let text = listing(&state.catalog, OffsetDateTime::now_utc());
    let count = (state.catalog.responders.values())
        .filter(|r| r.schedule.is_some())
        .count();
    Done::ok(format!("{count} listed"), text)
}

/// The schedule listing at `now`, one line per scheduled responder. Pure.
pub fn listing(catalog: &Catalog, now: OffsetDateTime) -> String {
    let lines: Vec<String> = (catalog.responders.values())
        .filter_map(|r| r.schedule.as_ref().map(|s| (r, s)))
        .map(|(r, s)| {
            let next = s
                .next_after(now)
                .map_or_else(|| "none".to_owned(), |slot| s.local(slot));
            let target = if r.targetless {
                "none".to_owned()
            } else {
                format!("`{}`", r.target.source)
            };
            let channel = r.channel.as_deref().unwrap_or("the default channel");
            format!(
                "• *{}* `{}` ({}): next {next}; target {target}; catch_up {}; reports to {channel}",
                r.name,
                s.pattern,
                s.timezone,
                humantime::format_duration(s.catch_up)
            )
        })
        .collect();
    if lines.is_empty() {
        return "No responder has a schedule.".to_owned();
    }
    format!("*Scheduled responders*\n{}", lines.join("\n"))
}
