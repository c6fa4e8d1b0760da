//! Table-driven tests of the pure steps: engine events in, alerts out.

use std::collections::HashMap;

use bollard::models::{EventActor, EventMessage, EventMessageTypeEnum};

use super::*;

/// An engine time `ms` milliseconds after a fixed instant.
pub(crate) fn t(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(
        1_795_757_900_000_000_000 + i128::from(ms) * 1_000_000,
    )
    .unwrap()
}

/// A container event as the engine sends it (image `img:1`).
pub(crate) fn event(
    action: &str,
    id: &str,
    name: &str,
    exit_code: Option<&str>,
    at: OffsetDateTime,
) -> EventMessage {
    let mut attributes = HashMap::from([
        ("name".to_owned(), name.to_owned()),
        ("image".to_owned(), "img:1".to_owned()),
    ]);
    if let Some(code) = exit_code {
        attributes.insert("exitCode".to_owned(), code.to_owned());
    }
    let nanos = i64::try_from(at.unix_timestamp_nanos()).unwrap();
    EventMessage {
        typ: Some(EventMessageTypeEnum::CONTAINER),
        action: Some(action.to_owned()),
        actor: Some(EventActor {
            id: Some(id.to_owned()),
            attributes: Some(attributes),
        }),
        scope: None,
        time: Some(at.unix_timestamp()),
        time_nano: Some(nanos),
    }
}

fn allow() -> Regex {
    allow_list("k2-.*").unwrap()
}

/// (container, reason, exit_code label, starts_at) of each alert.
type Seen = (String, String, Option<String>, OffsetDateTime);

fn seen(alerts: &[Alert]) -> Vec<Seen> {
    alerts
        .iter()
        .map(|a| {
            (
                a.labels["container"].clone(),
                a.labels["reason"].clone(),
                a.labels.get("exit_code").cloned(),
                a.starts_at,
            )
        })
        .collect()
}

fn oom(name: &str, at: OffsetDateTime) -> Seen {
    (name.into(), "oom".into(), Some("137".into()), at)
}

#[test]
fn events_become_one_alert_per_death() {
    let stripped = |mut e: EventMessage, key: &str| {
        if let Some(a) = e.actor.as_mut().and_then(|a| a.attributes.as_mut()) {
            a.remove(key);
        }
        e
    };
    let untimed = |mut e: EventMessage| {
        e.time = None;
        e.time_nano = None;
        e
    };
    let cases: Vec<(&str, Vec<EventMessage>, Vec<Seen>)> = vec![
        (
            "oom then die 137: one death at the die's time",
            vec![
                event("oom", "a", "k2-a", None, t(1_000)),
                event("die", "a", "k2-a", Some("137"), t(1_047)),
            ],
            vec![oom("k2-a", t(1_047))],
        ),
        (
            "die 137 alone: killed",
            vec![event("die", "a", "k2-a", Some("137"), t(1_000))],
            vec![("k2-a".into(), "killed".into(), Some("137".into()), t(1_000))],
        ),
        (
            "die 137 before its oom (emitted out of order under load): still one oom death",
            vec![
                event("die", "a", "k2-a", Some("137"), t(1_000)),
                event("oom", "a", "k2-a", None, t(1_030)),
            ],
            vec![oom("k2-a", t(1_000))],
        ),
        (
            "die 137 reported as a kill, then its oom long after, no start between: one death",
            vec![
                event("die", "a", "k2-a", Some("137"), t(1_000)),
                event("oom", "a", "k2-a", None, t(4_000)),
            ],
            vec![("k2-a".into(), "killed".into(), Some("137".into()), t(1_000))],
        ),
        (
            "die 137, restarted by its policy, then its oom: still one oom death",
            vec![
                event("die", "a", "k2-a", Some("137"), t(1_000)),
                event("start", "a", "k2-a", None, t(1_100)),
                event("oom", "a", "k2-a", None, t(1_500)),
            ],
            vec![oom("k2-a", t(1_000))],
        ),
        (
            "die 137, a start, then an oom after the wait: a kill, then the new life's oom",
            vec![
                event("die", "a", "k2-a", Some("137"), t(1_000)),
                event("start", "a", "k2-a", None, t(1_100)),
                event("oom", "a", "k2-a", None, t(9_000)),
            ],
            vec![
                ("k2-a".into(), "killed".into(), Some("137".into()), t(1_000)),
                ("k2-a".into(), "oom".into(), None, t(9_000)),
            ],
        ),
        (
            "a replayed die adds nothing",
            vec![
                event("oom", "a", "k2-a", None, t(1_000)),
                event("die", "a", "k2-a", Some("137"), t(1_040)),
                event("oom", "a", "k2-a", None, t(1_000)),
                event("die", "a", "k2-a", Some("137"), t(1_040)),
            ],
            vec![oom("k2-a", t(1_040))],
        ),
        (
            "die 0 alone: ignored",
            vec![event("die", "a", "k2-a", Some("0"), t(1_000))],
            vec![],
        ),
        (
            "die 143 alone: ignored",
            vec![event("die", "a", "k2-a", Some("143"), t(1_000))],
            vec![],
        ),
        (
            "oom then die 1: the oom explains the death",
            vec![
                event("oom", "a", "k2-a", None, t(1_000)),
                event("die", "a", "k2-a", Some("1"), t(1_200)),
            ],
            vec![("k2-a".into(), "oom".into(), Some("1".into()), t(1_200))],
        ),
        (
            "oom alone: counts, without an exit code",
            vec![event("oom", "a", "k2-a", None, t(1_000))],
            vec![("k2-a".into(), "oom".into(), None, t(1_000))],
        ),
        (
            "oom, then its die seconds later (a lagging engine): one death",
            vec![
                event("oom", "a", "k2-a", None, t(1_000)),
                event("die", "a", "k2-a", Some("137"), t(3_500)),
            ],
            vec![oom("k2-a", t(3_500))],
        ),
        (
            "oom of a child, then a kill long after: two events, two alerts",
            vec![
                event("oom", "a", "k2-a", None, t(1_000)),
                event("die", "a", "k2-a", Some("137"), t(13_000)),
            ],
            vec![
                ("k2-a".into(), "oom".into(), None, t(1_000)),
                (
                    "k2-a".into(),
                    "killed".into(),
                    Some("137".into()),
                    t(13_000),
                ),
            ],
        ),
        (
            "two ooms of one episode, then the die: one death",
            vec![
                event("oom", "a", "k2-a", None, t(1_000)),
                event("oom", "a", "k2-a", None, t(1_010)),
                event("die", "a", "k2-a", Some("137"), t(1_030)),
            ],
            vec![oom("k2-a", t(1_030))],
        ),
        (
            "interleaved containers pair by id",
            vec![
                event("oom", "a", "k2-a", None, t(1_000)),
                event("oom", "b", "k2-b", None, t(1_001)),
                event("die", "b", "k2-b", Some("137"), t(1_020)),
                event("die", "a", "k2-a", Some("137"), t(1_030)),
            ],
            vec![oom("k2-b", t(1_020)), oom("k2-a", t(1_030))],
        ),
        (
            "a restart dies again: a second death with a new start",
            vec![
                event("oom", "a", "k2-a", None, t(1_000)),
                event("die", "a", "k2-a", Some("137"), t(1_040)),
                event("start", "a", "k2-a", None, t(8_000)),
                event("oom", "a", "k2-a", None, t(9_000)),
                event("die", "a", "k2-a", Some("137"), t(9_030)),
            ],
            vec![oom("k2-a", t(1_040)), oom("k2-a", t(9_030))],
        ),
        (
            "outside the allow-list: ignored",
            vec![
                event("oom", "x", "postgres", None, t(1_000)),
                event("die", "x", "postgres", Some("137"), t(1_040)),
                event("die", "y", "not-k2-y", Some("137"), t(1_050)),
            ],
            vec![],
        ),
        (
            "missing name, exit code or time: ignored",
            vec![
                stripped(event("die", "a", "k2-a", Some("137"), t(1_000)), "name"),
                stripped(event("die", "b", "k2-b", Some("137"), t(1_000)), "exitCode"),
                event("die", "c", "k2-c", Some("lots"), t(1_000)),
                untimed(event("die", "d", "k2-d", Some("137"), t(1_000))),
            ],
            vec![],
        ),
        (
            "missing image: still an alert",
            vec![stripped(
                event("die", "a", "k2-a", Some("137"), t(1_000)),
                "image",
            )],
            vec![("k2-a".into(), "killed".into(), Some("137".into()), t(1_000))],
        ),
    ];
    for (case, events, expected) in cases {
        let alerts = alerts_from_events(&events, &allow());
        assert_eq!(seen(&alerts), expected, "{case}");
    }
}

#[test]
fn read_event_says_why_it_skips() {
    let mut other = event("stop", "a", "k2-a", None, t(0));
    assert_eq!(
        read_event(&other, &allow()),
        Err(Skip::OtherAction("stop".into()))
    );
    other.typ = Some(EventMessageTypeEnum::NETWORK);
    assert_eq!(read_event(&other, &allow()), Err(Skip::NotContainer));
    let outside = event("oom", "a", "xk2-a", None, t(0));
    assert_eq!(
        read_event(&outside, &allow()),
        Err(Skip::NotAllowed("xk2-a".into()))
    );
    let bare = EventMessage {
        typ: Some(EventMessageTypeEnum::CONTAINER),
        action: Some("die".into()),
        ..Default::default()
    };
    assert_eq!(read_event(&bare, &allow()), Err(Skip::NoName));
}

#[test]
fn the_alert_carries_labels_a_stable_fingerprint_and_one_shot() {
    let alerts = alerts_from_events(
        &[
            event("oom", "abc", "k2-a", None, t(1_000)),
            event("die", "abc", "k2-a", Some("137"), t(1_040)),
        ],
        &allow(),
    );
    let [a] = alerts.as_slice() else {
        panic!("one alert: {alerts:#?}")
    };
    assert_eq!(a.source, Source::Docker);
    assert_eq!(a.status, Status::Firing);
    assert_eq!(a.name(), ALERTNAME);
    assert_eq!(a.labels["severity"], "critical");
    assert_eq!(a.labels["image"], "img:1");
    assert_eq!(a.labels["exit_code"], "137");
    assert_eq!(a.annotations["container_id"], "abc");
    assert!(a.annotations["summary"].contains("OOM killer"));
    assert!(is_one_shot(a));
    assert_eq!(a.ends_at, None);
    // Pinned: a changed fingerprint would split one container's incidents across releases.
    assert_eq!(a.fingerprint, fingerprint("k2-a"));
    assert_eq!(a.fingerprint.len(), 16);
    // FNV-1a 64 of "docker/oom/k2-a", computed independently (Python).
    assert_eq!(fingerprint("k2-a"), "53b3d392f96fe333");
    assert_ne!(fingerprint("k2-a"), fingerprint("k2-b"));
}

#[test]
fn the_allow_list_matches_whole_names() {
    let allow = allow_list("k2-.*|spark").unwrap();
    for (name, expected) in [
        ("k2-a", true),
        ("spark", true),
        ("sparkle", false),
        ("not-k2-a", false),
    ] {
        assert_eq!(allow.is_match(name), expected, "{name}");
    }
    assert!(allow_list("k2-(").is_err());
}

#[test]
fn expiry_follows_the_engine_clock() {
    let mut deaths = Deaths::default();
    let allow = allow();
    let oom = read_event(&event("oom", "a", "k2-a", None, t(1_000)), &allow).unwrap();
    assert!(deaths.push(oom).is_empty());
    assert_eq!(deaths.earliest_pending(), Some(t(1_000)));
    assert!(deaths.expire(t(10_900)).is_empty(), "within its wait");
    let done = deaths.expire(t(11_100));
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].reason, done[0].exit_code), (Reason::Oom, None));
    assert_eq!(deaths.earliest_pending(), None);
}

#[test]
fn a_replay_after_a_failed_store_reports_the_death_again() {
    let allow = allow();
    let die = || read_event(&event("die", "a", "k2-a", Some("137"), t(1_000)), &allow).unwrap();
    let mut deaths = Deaths::default();
    assert!(deaths.push(die()).is_empty());
    assert_eq!(deaths.expire(t(3_100)).len(), 1, "reported once");
    assert!(deaths.push(die()).is_empty(), "a replay is recognised");
    assert!(deaths.expire(t(3_200)).is_empty());
    // The store failed: the follower replays from the death's first event.
    deaths.forget_since(t(1_000));
    assert!(deaths.push(die()).is_empty());
    let again = deaths.expire(t(3_300));
    assert_eq!(again.len(), 1, "reported again: {again:?}");
    assert_eq!(again[0].reason, Reason::Killed);
}
