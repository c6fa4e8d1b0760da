//! A responder's schedule: its cron pattern read in its IANA time zone, and the slots it
//! gives. Pure: the time is always passed in.
//!
//! Patterns are parsed by croner: standard 5-field cron (minute, hour, day of month, month,
//! day of week, with names and `@daily`-style nicknames), no seconds, and times resolved in
//! the zone by its rules for clock changes: a slot whose local time a spring-forward skips
//! runs once, at the first instant after the gap; a slot whose local time a fall-back repeats
//! runs once, at its first occurrence. Zones come from the IANA database compiled into the
//! binary (jiff's bundled copy), so a host without tzdata reads them the same way.

use std::time::Duration;

use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use time::OffsetDateTime;

/// How long after its time a slot missed while the service was down may still run, when
/// the file does not say (`catch_up:`).
pub const DEFAULT_CATCH_UP: Duration = Duration::from_secs(3600);

/// A compiled `schedule:` with its `timezone:` and `catch_up:`.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The pattern as written, e.g. `0 8 * * *`.
    pub pattern: String,
    /// The IANA zone name as written (`UTC` when left out).
    pub timezone: String,
    /// How late a missed slot may still run; later ones are reported missed.
    pub catch_up: Duration,
    cron: Cron,
    zone: TimeZone,
}

impl Schedule {
    /// Compiles a pattern and a zone name. The errors say which of the two is wrong.
    ///
    /// # Errors
    /// `(field, reason)` with field `schedule` or `timezone`.
    pub fn new(
        pattern: &str,
        timezone: &str,
        catch_up: Duration,
    ) -> Result<Self, (&'static str, String)> {
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(pattern)
            .map_err(|e| {
                (
                    "schedule",
                    format!("{pattern:?} is not a 5-field cron pattern (minute hour day-of-month month day-of-week): {e}"),
                )
            })?;
        let zone = TimeZone::get(timezone).map_err(|_| {
            (
                "timezone",
                format!("{timezone:?} is not an IANA time zone, e.g. UTC, Europe/Paris or America/New_York"),
            )
        })?;
        let schedule = Self {
            pattern: pattern.trim().to_owned(),
            timezone: timezone.to_owned(),
            catch_up,
            cron,
            zone,
        };
        // A pattern that never matches (`0 0 31 2 *`) parses; it is still a mistake.
        if schedule.next_after(OffsetDateTime::UNIX_EPOCH).is_none() {
            return Err(("schedule", format!("{pattern:?} never matches a date")));
        }
        Ok(schedule)
    }

    /// The latest slot at or before `now`, if any.
    ///
    /// The forward search decides which slots exist (it is what runs them); a backward
    /// search only finds a starting point, and the slots after it up to `now` are walked
    /// forward, so both agree across a clock change (a slot moved past a gap, say).
    pub fn latest_at_or_before(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let zoned = self.zoned(now)?;
        let found = self.cron.find_previous_occurrence(&zoned, true).ok()?;
        // Hours before it: earlier than any slot a clock change can have moved.
        let mut from = from_zoned(&found)? - time::Duration::hours(3);
        let mut latest = None;
        while let Some(next) = self.next_after(from).filter(|next| *next <= now) {
            latest = Some(next);
            from = next;
        }
        latest
    }

    /// The first slot strictly after `t`, if any.
    pub fn next_after(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        let zoned = self.zoned(t)?;
        let found = self.cron.find_next_occurrence(&zoned, false).ok()?;
        from_zoned(&found)
    }

    /// The next `count` slots strictly after `t`.
    pub fn upcoming(&self, t: OffsetDateTime, count: usize) -> Vec<OffsetDateTime> {
        let mut slots = Vec::with_capacity(count);
        let mut from = t;
        while slots.len() < count {
            let Some(next) = self.next_after(from) else {
                break;
            };
            slots.push(next);
            from = next;
        }
        slots
    }

    /// A slot as people in the zone read it, e.g. `2026-03-29 08:00 Europe/Paris (+02:00)`.
    pub fn local(&self, slot: OffsetDateTime) -> String {
        match self.zoned(slot) {
            Some(z) => format!(
                "{} {} ({})",
                z.strftime("%Y-%m-%d %H:%M"),
                self.timezone,
                z.strftime("%:z")
            ),
            None => rfc3339(slot),
        }
    }

    fn zoned(&self, t: OffsetDateTime) -> Option<Zoned> {
        let ts = Timestamp::from_nanosecond(t.unix_timestamp_nanos()).ok()?;
        Some(ts.to_zoned(self.zone.clone()))
    }
}

/// One scheduled responder and its next slots, for `simulate --schedule`, the API and the
/// page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScheduleView {
    /// The responder.
    pub responder: String,
    /// Its pattern as written.
    pub schedule: String,
    /// Its zone.
    pub timezone: String,
    /// How late a missed slot may still run, e.g. `1h`.
    pub catch_up: String,
    /// Its declared target (a template), `None` when it has none.
    pub target: Option<String>,
    /// Its Slack channel, `None` for `SLACK_CHANNEL`.
    pub channel: Option<String>,
    /// The next slots: RFC 3339 (UTC) and as read in the zone.
    pub next: Vec<SlotView>,
}

/// One upcoming slot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SlotView {
    /// RFC 3339, UTC.
    pub at: String,
    /// As people in the zone read it.
    pub local: String,
}

/// The scheduled ones among `responders`, each with its next `count` slots after `now`.
pub fn overview<'a>(
    responders: impl Iterator<Item = &'a super::Responder>,
    now: OffsetDateTime,
    count: usize,
) -> Vec<ScheduleView> {
    responders
        .filter_map(|r| r.schedule.as_ref().map(|s| (r, s)))
        .map(|(r, s)| ScheduleView {
            responder: r.name.clone(),
            schedule: s.pattern.clone(),
            timezone: s.timezone.clone(),
            catch_up: humantime::format_duration(s.catch_up).to_string(),
            target: (!r.targetless).then(|| r.target.source.clone()),
            channel: r.channel.clone(),
            next: (s.upcoming(now, count).into_iter())
                .map(|slot| SlotView {
                    at: rfc3339(slot),
                    local: s.local(slot),
                })
                .collect(),
        })
        .collect()
}

fn rfc3339(t: OffsetDateTime) -> String {
    (t.format(&time::format_description::well_known::Rfc3339))
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

fn from_zoned(z: &Zoned) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(z.timestamp().as_nanosecond()).ok()
}

#[cfg(test)]
mod tests;
