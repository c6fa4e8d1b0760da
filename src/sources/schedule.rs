//! Schedules as a source: each slot of a scheduled responder becomes an alert in the journal.
//!
//! Every replica runs this loop. Once a second it asks each schedule for its latest slot up to
//! now; a slot later than the schedule's mark (the last one journaled) is submitted like a
//! webhook's alert, and the journal's unique dedup key (responder and slot) keeps it to one
//! entry, whichever replica or restart submits it. So a slot runs once, never twice.
//!
//! Only the latest slot counts: after an outage, one slot is submitted, not a backlog. If
//! it is at most `catch_up:` old it runs, late (and says so); older, it is journaled as
//! missed and the responder's channel gets one line saying so. A schedule seen for the first
//! time is marked at that moment: slots before it were never its to run.
//!
//! The clock is a seam ([`Clock`]): the service reads the system's, tests set one by hand
//! and the same code decides the same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::alert::slot::Slot;
use crate::config::Catalog;
use crate::responders::schedule::Schedule;
use crate::store::{Intake, Store};

/// How often the schedules are looked at.
const TICK: Duration = Duration::from_secs(1);

/// A slot journaled less than this after its time counts as on time (a tick, a busy host).
pub const ON_TIME: Duration = Duration::from_secs(60);

/// Where the scheduler reads the time: the system's, or one a test sets.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<ManualClock>>,
}

#[derive(Debug)]
struct ManualClock {
    now: Mutex<OffsetDateTime>,
    changed: Notify,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that reads `start` until [`Clock::set`] moves it.
    pub fn manual(start: OffsetDateTime) -> Self {
        Self {
            manual: Some(Arc::new(ManualClock {
                now: Mutex::new(start),
                changed: Notify::new(),
            })),
        }
    }

    /// The time now.
    pub fn now(&self) -> OffsetDateTime {
        match &self.manual {
            Some(clock) => *clock.now.lock().unwrap_or_else(|e| e.into_inner()),
            None => OffsetDateTime::now_utc(),
        }
    }

    /// Sets a manual clock to `now` and wakes the scheduler; the system clock ignores it.
    pub fn set(&self, now: OffsetDateTime) {
        if let Some(clock) = &self.manual {
            *clock.now.lock().unwrap_or_else(|e| e.into_inner()) = now;
            clock.changed.notify_one();
        }
    }

    /// Returns when a manual clock is set; never for the system clock.
    async fn changed(&self) {
        match &self.manual {
            Some(clock) => clock.changed.notified().await,
            None => std::future::pending().await,
        }
    }
}

/// The slot of `schedule` to journal at `now`, given its mark (unix seconds): its latest slot
/// if later than the mark, to run if at most `catch_up` old, else to report missed. Pure.
pub fn due(responder: &str, schedule: &Schedule, mark: i64, now: OffsetDateTime) -> Option<Slot> {
    let at = schedule
        .latest_at_or_before(now)
        .filter(|at| at.unix_timestamp() > mark)?;
    let late = Duration::try_from(now - at).unwrap_or_default();
    Some(Slot {
        responder: responder.to_owned(),
        at,
        local: schedule.local(at),
        late: (late > ON_TIME).then_some(late),
        missed: late > schedule.catch_up,
        requested_by: None,
    })
}

/// Journals the slots of `catalog`'s schedules as they fall, until `shutdown`.
pub async fn run(
    catalog: Arc<Catalog>,
    store: Arc<dyn Store>,
    intake: Intake,
    clock: Clock,
    shutdown: CancellationToken,
) {
    let schedules: Vec<(&str, &Schedule)> = (catalog.responders.values())
        .filter_map(|r| r.schedule.as_ref().map(|s| (r.name.as_str(), s)))
        .collect();
    if schedules.is_empty() {
        return;
    }
    tracing::info!(schedules = schedules.len(), "Schedules armed.");
    let mut marks = loop {
        match store.schedule_marks().await {
            Ok(marks) => break marks.into_iter().collect::<HashMap<_, _>>(),
            Err(e) => {
                tracing::warn!(error.message = %e, "Could not read the schedules' marks; will retry.");
                tokio::select! {
                    _ = tokio::time::sleep(TICK) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
    };
    loop {
        let now = clock.now();
        for (responder, schedule) in &schedules {
            let Some(&mark) = marks.get(*responder) else {
                // First seen: armed from now on.
                if remember(store.as_ref(), responder, now.unix_timestamp()).await {
                    marks.insert((*responder).to_owned(), now.unix_timestamp());
                }
                continue;
            };
            let Some(slot) = due(responder, schedule, mark, now) else {
                continue;
            };
            let at = slot.at.unix_timestamp();
            let (local, missed) = (slot.local.clone(), slot.missed);
            match intake.submit(vec![slot.into_alert()]).await {
                Ok(receipt) => {
                    tracing::info!(responder, slot = %local, missed, new = receipt.accepted > 0, "Scheduled slot journaled.");
                    marks.insert((*responder).to_owned(), at);
                    remember(store.as_ref(), responder, at).await;
                }
                Err(e) => {
                    tracing::warn!(responder, slot = %local, error.message = %e, "Could not journal a scheduled slot; will retry.");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = clock.changed() => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Moves a schedule's mark; false (logged) if the store failed. A mark that lags only makes
/// a restart submit a slot again, which the journal turns into a no-op.
async fn remember(store: &dyn Store, responder: &str, mark: i64) -> bool {
    match store.mark_schedule(responder, mark).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(responder, error.message = %e, "Could not record a schedule's mark.");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::responders::schedule::DEFAULT_CATCH_UP;

    #[test]
    fn only_the_latest_slot_after_the_mark_is_due() {
        let daily = Schedule::new("0 8 * * *", "UTC", DEFAULT_CATCH_UP).expect("valid");
        let mark = datetime!(2026-12-04 08:00 UTC).unix_timestamp();
        // (now, slot due, late by seconds, missed)
        let cases = [
            (datetime!(2026-12-05 07:59 UTC), None),
            (datetime!(2026-12-05 08:00 UTC), Some((8, None, false))),
            (datetime!(2026-12-05 08:00:30 UTC), Some((8, None, false))),
            (
                datetime!(2026-12-05 08:40 UTC),
                Some((8, Some(2400), false)),
            ),
            (
                datetime!(2026-12-05 09:00 UTC),
                Some((8, Some(3600), false)),
            ),
            (
                datetime!(2026-12-05 09:00:01 UTC),
                Some((8, Some(3601), true)),
            ),
            // Three days down: one slot, today's, within catch_up; never a backlog.
            (datetime!(2026-12-07 08:10 UTC), Some((8, Some(600), false))),
        ];
        for (now, want) in cases {
            let got = due("daily", &daily, mark, now)
                .map(|s| (s.at.hour(), s.late.map(|l| l.as_secs()), s.missed));
            assert_eq!(got, want, "at {now}");
        }
        let again = due("daily", &daily, mark, datetime!(2026-12-07 08:10 UTC)).expect("due");
        assert_eq!(again.at, datetime!(2026-12-07 08:00 UTC));
        let marked = again.at.unix_timestamp();
        assert_eq!(
            due("daily", &daily, marked, datetime!(2026-12-07 08:11 UTC)),
            None
        );
    }

    #[tokio::test]
    async fn a_manual_clock_moves_only_when_set() {
        let clock = Clock::manual(datetime!(2026-12-05 07:00 UTC));
        assert_eq!(clock.now(), datetime!(2026-12-05 07:00 UTC));
        clock.set(datetime!(2026-12-05 08:00 UTC));
        // The wake-up is kept until the scheduler looks.
        clock.changed().await;
        assert_eq!(clock.now(), datetime!(2026-12-05 08:00 UTC));
    }
}
