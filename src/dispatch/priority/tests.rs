use std::path::Path;

use time::OffsetDateTime;

use super::*;
use crate::alert::{Labels, Source, Status};

/// The priority of `alert` under `catalog`'s routes.
fn priority(catalog: &Catalog, alert: &Alert) -> Priority {
    rank(catalog, alert).priority
}

fn shipped() -> Catalog {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Catalog::load(&root.join("routes"), &root.join("responders")).expect("shipped catalog")
}

fn alert(source: Source, status: Status, labels: &[(&str, &str)]) -> Alert {
    let labels: Labels = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Alert {
        source,
        fingerprint: "f".into(),
        status,
        labels,
        annotations: Labels::new(),
        starts_at: OffsetDateTime::UNIX_EPOCH,
        ends_at: None,
        generator_url: None,
    }
}

fn firing(labels: &[(&str, &str)]) -> Alert {
    alert(Source::Alertmanager, Status::Firing, labels)
}

#[test]
fn a_destructive_route_goes_before_a_read_only_one_before_no_route() {
    let catalog = shipped();
    let restart = firing(&[
        ("alertname", "HighMemoryUsage"),
        ("container", "k2-x"),
        ("severity", "warning"),
    ]);
    let read_only = firing(&[
        ("alertname", "DlqRateHigh"),
        ("source", "binance"),
        ("severity", "critical"),
    ]);
    let unrouted = firing(&[("alertname", "Flood"), ("severity", "critical")]);
    let (a, b, c) = (
        priority(&catalog, &restart),
        priority(&catalog, &read_only),
        priority(&catalog, &unrouted),
    );
    assert!(a > b && b > c, "{a:?} {b:?} {c:?}");
}

#[test]
fn severity_orders_within_a_tier_and_status_never_changes_it() {
    let catalog = shipped();
    let with = |severity: &str| {
        firing(&[
            ("alertname", "HighMemoryUsage"),
            ("container", "k2-x"),
            ("severity", severity),
        ])
    };
    let ranks: Vec<Priority> = ["critical", "error", "warning", "info"]
        .iter()
        .map(|s| priority(&catalog, &with(s)))
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] > w[1]), "{ranks:?}");
    let mut resolved = with("critical");
    resolved.status = Status::Resolved;
    assert_eq!(
        priority(&catalog, &resolved),
        ranks[0],
        "a resolve keeps its firing's priority"
    );
    let pd_high = alert(
        Source::PagerDuty,
        Status::Firing,
        &[("alertname", "Unrouted"), ("pd_urgency", "high")],
    );
    let pd_low = alert(
        Source::PagerDuty,
        Status::Firing,
        &[("alertname", "Unrouted"), ("pd_urgency", "low")],
    );
    assert!(priority(&catalog, &pd_high) > priority(&catalog, &pd_low));
}

#[test]
fn a_persons_request_goes_first() {
    let catalog = shipped();
    let manual = alert(
        Source::Slack,
        Status::Firing,
        &[
            ("alertname", "ManualRun"),
            ("manual_responder", "high-memory"),
            ("manual_target", "k2-x"),
        ],
    );
    let critical_restart = firing(&[
        ("alertname", "HighMemoryUsage"),
        ("container", "k2-x"),
        ("severity", "critical"),
    ]);
    assert!(priority(&catalog, &manual) > priority(&catalog, &critical_restart));
}

#[test]
fn a_slot_ranks_as_its_responder_and_a_person_asking_first() {
    use crate::alert::slot::Slot;
    let catalog = shipped();
    let slot = |responder: &str, requested_by: Option<&str>| {
        let slot = Slot {
            responder: responder.into(),
            at: OffsetDateTime::UNIX_EPOCH,
            local: String::new(),
            late: None,
            missed: false,
            requested_by: requested_by.map(str::to_owned),
        };
        priority(&catalog, &slot.into_alert())
    };
    let restart = firing(&[("alertname", "HighMemoryUsage"), ("container", "k2-x")]);
    assert_eq!(slot("high-memory", None), priority(&catalog, &restart));
    assert_eq!(slot("nosuch", None), Priority(0));
    assert_eq!(slot("high-memory", Some("@ops (U0OPS)")).0 / 4, PERSON);
}

#[test]
fn alerts_share_a_turn_when_they_would_act_on_the_same_target() {
    let catalog = shipped();
    let on = |alertname: &str, container: &str, severity: &str| {
        rank(
            &catalog,
            &firing(&[
                ("alertname", alertname),
                ("container", container),
                ("severity", severity),
            ]),
        )
        .target
    };
    let x = on("HighMemoryUsage", "k2-x", "critical");
    assert_eq!(x, "high-memory\u{1f}k2-x");
    assert_eq!(
        on("HighMemoryUsage", "k2-x", "warning"),
        x,
        "labels the target skips"
    );
    assert_ne!(on("HighMemoryUsage", "k2-y", "critical"), x);
    assert_eq!(
        on("Flood", "k2-x", "critical"),
        "",
        "no route: one target of its own"
    );
}

#[test]
fn the_labels_a_target_reads_are_found_in_either_notation() {
    fn read(source: &str) -> Vec<&str> {
        labels_read(source).collect()
    }
    assert_eq!(read("{{ alert.labels.container }}"), ["container"]);
    assert_eq!(
        read("{{ alert.labels[\"job\"] }}-{{ alert.labels['pod_name'] }}"),
        ["job", "pod_name"]
    );
    assert_eq!(read("k2-{{ config.stream }}"), Vec::<&str>::new());
}
