//! A scheduled responder's slot, as the alert the journal records for it.
//!
//! A slot is an event like any alert: written to the journal, then planned and run by the
//! dispatcher with the same budgets, approvals, modes and Slack thread. Its dedup key is made
//! of the responder and the slot's time only, so however many times it is submitted (the
//! scheduler after a restart, every replica of a cluster), it is recorded once; and a slot is
//! either run or reported missed, never both, because both share that key.

use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{Alert, Labels, Source, Status, ONE_SHOT};

/// How every slot's fingerprint begins.
pub const FINGERPRINT_PREFIX: &str = "schedule:";
/// The label naming the scheduled responder.
pub const SCHEDULE_RESPONDER: &str = "schedule_responder";
/// The label holding the slot's time (RFC 3339, UTC).
pub const SCHEDULE_SLOT: &str = "schedule_slot";
/// The annotation saying how many seconds after its time the slot was submitted, when late.
pub const LATE_BY: &str = "late_by_seconds";
/// The annotation marking a slot found too late to run (beyond `catch_up:`).
pub const MISSED: &str = "missed";
/// The annotation naming who asked for a run now.
pub const REQUESTED_BY: &str = "requested_by";
/// The annotation holding the slot's time as read in the schedule's zone.
pub const SLOT_LOCAL: &str = "slot_local";

/// One slot of one scheduled responder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The responder.
    pub responder: String,
    /// When the slot falls.
    pub at: OffsetDateTime,
    /// The slot's time in the schedule's zone, for people.
    pub local: String,
    /// How late it is submitted (a slot missed while the service was down), if noticeably.
    pub late: Option<Duration>,
    /// Too late to run: only reported.
    pub missed: bool,
    /// Who asked for it now (`/responder run <responder>`), when a person did rather than
    /// the schedule: an extra run at `at`, outside the schedule's slots.
    pub requested_by: Option<String>,
}

/// What a slot's alert says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotFacts<'a> {
    /// The responder.
    pub responder: &'a str,
    /// The slot's time in its zone.
    pub local: &'a str,
    /// Seconds late, when it was.
    pub late_by: Option<u64>,
    /// Too late to run.
    pub missed: bool,
    /// Who asked for it now, when a person did.
    pub requested_by: Option<&'a str>,
}

impl Slot {
    /// The fingerprint of a slot's incident: one per responder and slot.
    pub fn fingerprint(responder: &str, at: OffsetDateTime) -> String {
        format!("{FINGERPRINT_PREFIX}{responder}:{}", at.unix_timestamp())
    }

    /// The alert the journal records: firing, one-shot (nothing resolves it), starting at the
    /// slot's time, so its dedup key is the responder and the slot.
    pub fn into_alert(self) -> Alert {
        let mut labels = Labels::new();
        labels.insert(
            "alertname".into(),
            format!("{} (scheduled)", self.responder),
        );
        labels.insert(SCHEDULE_RESPONDER.into(), self.responder.clone());
        let at =
            (self.at.format(&Rfc3339)).unwrap_or_else(|_| self.at.unix_timestamp().to_string());
        labels.insert(SCHEDULE_SLOT.into(), at);
        let mut annotations = Labels::new();
        // A person's run now is an incident of its own, even in the second of a slot.
        let fingerprint = match &self.requested_by {
            Some(_) => format!(
                "{FINGERPRINT_PREFIX}{}:now:{}",
                self.responder,
                self.at.unix_timestamp_nanos()
            ),
            None => Self::fingerprint(&self.responder, self.at),
        };
        let summary = match (&self.requested_by, self.missed) {
            (Some(by), _) => format!("{} run now, requested by {by}", self.responder),
            (None, true) => format!("{} slot {} missed", self.responder, self.local),
            (None, false) => format!("{} scheduled for {}", self.responder, self.local),
        };
        if let Some(by) = self.requested_by {
            annotations.insert(REQUESTED_BY.into(), by);
        }
        annotations.insert("summary".into(), summary);
        annotations.insert(SLOT_LOCAL.into(), self.local);
        annotations.insert(ONE_SHOT.into(), "true".into());
        if let Some(late) = self.late {
            annotations.insert(LATE_BY.into(), late.as_secs().to_string());
        }
        if self.missed {
            annotations.insert(MISSED.into(), "true".into());
        }
        Alert {
            source: Source::Schedule,
            fingerprint,
            status: Status::Firing,
            labels,
            annotations,
            starts_at: self.at,
            ends_at: None,
            generator_url: None,
        }
    }
}

impl SlotFacts<'_> {
    /// The thread's line for a slot that runs late, if it does.
    pub fn late_note(&self) -> Option<String> {
        let late = Duration::from_secs(self.late_by.filter(|_| !self.missed)?);
        Some(format!(
            "Slot {} of {} runs {} late: it was not journaled at its time (the service was down or busy); within its catch_up, so it runs once now.",
            self.local,
            self.responder,
            humantime::format_duration(late)
        ))
    }
}

impl Alert {
    /// What a scheduled slot's alert says of its slot; `None` for every other alert.
    pub fn slot(&self) -> Option<SlotFacts<'_>> {
        if self.source != Source::Schedule {
            return None;
        }
        Some(SlotFacts {
            responder: self.labels.get(SCHEDULE_RESPONDER)?,
            local: self.annotations.get(SLOT_LOCAL).map_or("", String::as_str),
            late_by: self.annotations.get(LATE_BY).and_then(|s| s.parse().ok()),
            missed: self.annotations.get(MISSED).map(String::as_str) == Some("true"),
            requested_by: self.annotations.get(REQUESTED_BY).map(String::as_str),
        })
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn a_slot_is_one_journal_key_whether_run_late_or_missed() {
        let slot = |late: Option<u64>, missed| Slot {
            responder: "daily-health".into(),
            at: datetime!(2026-12-05 08:00 UTC),
            local: "2026-12-05 08:00 UTC (+00:00)".into(),
            late: late.map(Duration::from_secs),
            missed,
            requested_by: None,
        };
        let on_time = slot(None, false).into_alert();
        let late = slot(Some(600), false).into_alert();
        let missed = slot(Some(7200), true).into_alert();
        assert_eq!(on_time.dedup_key(), late.dedup_key());
        assert_eq!(on_time.dedup_key(), missed.dedup_key());
        let facts = missed.slot().expect("a slot");
        assert_eq!(facts.responder, "daily-health");
        assert_eq!((facts.late_by, facts.missed), (Some(7200), true));
        assert_eq!(late.slot().map(|f| f.missed), Some(false));
        let next = Slot {
            at: datetime!(2026-12-06 08:00 UTC),
            ..slot(None, false)
        };
        assert_ne!(next.into_alert().dedup_key(), on_time.dedup_key());
        assert!(on_time.is_one_shot());
        let asked = Slot {
            requested_by: Some("@ops (U0OPS)".into()),
            ..slot(None, false)
        };
        let asked = asked.into_alert();
        assert_ne!(asked.fingerprint, on_time.fingerprint, "its own incident");
        assert!(asked.fingerprint.starts_with(FINGERPRINT_PREFIX));
        assert_eq!(
            asked.slot().and_then(|f| f.requested_by),
            Some("@ops (U0OPS)")
        );
    }
}
