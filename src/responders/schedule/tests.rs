use std::time::Duration;

use time::macros::datetime;
use time::OffsetDateTime;

use super::{Schedule, DEFAULT_CATCH_UP};

fn schedule(pattern: &str, zone: &str) -> Schedule {
    Schedule::new(pattern, zone, DEFAULT_CATCH_UP).expect("a valid schedule")
}

fn slots_between(s: &Schedule, from: OffsetDateTime, to: OffsetDateTime) -> Vec<OffsetDateTime> {
    let mut out = Vec::new();
    let mut at = from;
    while let Some(next) = s.next_after(at).filter(|n| *n <= to) {
        out.push(next);
        at = next;
    }
    out
}

#[test]
fn a_daily_slot_follows_the_zone_across_both_clock_changes() {
    let daily = schedule("0 8 * * *", "Europe/Paris");
    let cases = [
        // Winter: UTC+1.
        (
            datetime!(2026-03-28 00:00 UTC),
            datetime!(2026-03-28 07:00 UTC),
        ),
        // The clocks went forward that night: UTC+2.
        (
            datetime!(2026-03-29 00:00 UTC),
            datetime!(2026-03-29 06:00 UTC),
        ),
        // The clocks went back that night: UTC+1 again.
        (
            datetime!(2026-10-25 00:00 UTC),
            datetime!(2026-10-25 07:00 UTC),
        ),
    ];
    for (from, want) in cases {
        assert_eq!(daily.next_after(from), Some(want), "after {from}");
    }
}

#[test]
fn a_slot_the_spring_gap_skips_runs_once_just_after_it() {
    // 02:30 does not exist in Paris on 2026-03-29 (02:00 jumps to 03:00).
    let s = schedule("30 2 * * *", "Europe/Paris");
    let day = slots_between(
        &s,
        datetime!(2026-03-28 22:00 UTC),
        datetime!(2026-03-29 21:59 UTC),
    );
    assert_eq!(
        day,
        vec![datetime!(2026-03-29 01:00 UTC)],
        "03:00 local, once"
    );
    // The backward look agrees with the forward one about that slot.
    assert_eq!(
        s.latest_at_or_before(datetime!(2026-03-29 01:30 UTC)),
        Some(datetime!(2026-03-29 01:00 UTC))
    );
}

#[test]
fn a_slot_the_autumn_fold_repeats_runs_once() {
    // 02:30 happens twice in Paris on 2026-10-25 (03:00 goes back to 02:00).
    let s = schedule("30 2 * * *", "Europe/Paris");
    let day = slots_between(
        &s,
        datetime!(2026-10-24 22:00 UTC),
        datetime!(2026-10-25 22:59 UTC),
    );
    assert_eq!(
        day,
        vec![datetime!(2026-10-25 00:30 UTC)],
        "the first 02:30"
    );
    assert_eq!(
        s.latest_at_or_before(datetime!(2026-10-25 01:45 UTC)),
        Some(datetime!(2026-10-25 00:30 UTC)),
        "the second 02:30 is no slot of its own"
    );
}

#[test]
fn an_interval_keeps_real_time_through_the_repeated_hour() {
    // Every 15 minutes: the repeated hour is real time too, so each quarter of it is a slot.
    let s = schedule("*/15 * * * *", "Europe/Paris");
    let slots = slots_between(
        &s,
        datetime!(2026-10-24 23:59 UTC),
        datetime!(2026-10-25 01:59 UTC),
    );
    assert_eq!(slots.len(), 8, "{slots:?}");
    assert!(slots
        .windows(2)
        .all(|w| w[1] - w[0] == time::Duration::minutes(15)));
}

#[test]
fn the_latest_slot_is_at_or_before_now() {
    let s = schedule("0 8 * * *", "UTC");
    let cases = [
        (
            datetime!(2026-12-05 08:00 UTC),
            datetime!(2026-12-05 08:00 UTC),
        ),
        (
            datetime!(2026-12-05 07:59:59 UTC),
            datetime!(2026-12-04 08:00 UTC),
        ),
        (
            datetime!(2026-12-05 23:00 UTC),
            datetime!(2026-12-05 08:00 UTC),
        ),
    ];
    for (now, want) in cases {
        assert_eq!(s.latest_at_or_before(now), Some(want), "at {now}");
    }
    assert_eq!(
        s.upcoming(datetime!(2026-12-05 08:00 UTC), 2),
        vec![
            datetime!(2026-12-06 08:00 UTC),
            datetime!(2026-12-07 08:00 UTC)
        ]
    );
}

#[test]
fn mistakes_are_named_by_their_field() {
    let cases = [
        ("0 8 * *", "UTC", "schedule"),
        ("0 0 8 * * *", "UTC", "schedule"),
        ("61 8 * * *", "UTC", "schedule"),
        ("0 8 * * SUNDAY", "UTC", "schedule"),
        ("0 0 31 2 *", "UTC", "schedule"),
        ("0 8 * * *", "Europe/Pariss", "timezone"),
        ("0 8 * * *", "+02:00", "timezone"),
    ];
    for (pattern, zone, field) in cases {
        let err = Schedule::new(pattern, zone, Duration::from_secs(60))
            .expect_err(&format!("{pattern} {zone}"));
        assert_eq!(err.0, field, "{pattern} {zone}: {}", err.1);
    }
    assert!(Schedule::new("@daily", "America/New_York", DEFAULT_CATCH_UP).is_ok());
}

#[test]
fn a_slot_reads_in_its_zone() {
    let s = schedule("0 8 * * *", "Europe/Paris");
    assert_eq!(
        s.local(datetime!(2026-03-29 06:00 UTC)),
        "2026-03-29 08:00 Europe/Paris (+02:00)"
    );
}
