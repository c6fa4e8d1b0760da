//! Extraction: the shipped patterns on real titles, precedence, shapes, details parsing.

use regex::Regex;
use serde_json::json;

use super::*;

/// The shipped rules, compiled as the catalog does (anchored).
fn shipped() -> Vec<Extraction> {
    let text = include_str!("../../../routes/pagerduty.yaml");
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).unwrap();
    doc["extract"]
        .as_sequence()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, rule)| Extraction {
            field: PdField::parse(rule["field"].as_str().unwrap()).unwrap(),
            regex: Regex::new(&format!("^(?:{})$", rule["regex"].as_str().unwrap())).unwrap(),
            origin: format!("routes/pagerduty.yaml: extract[{i}]"),
        })
        .collect()
}

/// A firing PagerDuty incident titled `title`, as the source parses it.
pub(crate) fn incident(title: &str) -> Alert {
    let body = json!({"event": {"id": "E1", "event_type": "incident.triggered",
        "occurred_at": "2026-11-27T05:00:00Z",
        "data": {"id": "Q1", "created_at": "2026-11-27T05:00:00Z", "title": title}}});
    match crate::sources::pagerduty::parse(body.to_string().as_bytes()).unwrap() {
        crate::sources::pagerduty::Event::Alert(alert) => *alert,
        other => panic!("{other:?}"),
    }
}

fn extracted(title: &str) -> (Option<String>, Option<String>) {
    let mut alert = incident(title);
    apply(&mut alert, None, &shipped());
    (
        alert.labels.get("alertname").cloned(),
        alert.labels.get("container").cloned(),
    )
}

#[test]
fn the_shipped_rules_read_alertmanager_and_runbook_titles() {
    let cases: &[(&str, Option<&str>, Option<&str>)] = &[
        // Alertmanager's default description, grouped by alertname, then by both.
        (
            "[FIRING:1] HighMemoryUsage (k2-memhog critical)",
            Some("HighMemoryUsage"),
            Some("k2-memhog"),
        ),
        (
            "[FIRING:1] HighMemoryUsage k2-memhog (critical)",
            Some("HighMemoryUsage"),
            Some("k2-memhog"),
        ),
        // Nothing but the group's values, with the template's trailing space.
        (
            "[FIRING:3] CheckpointDiskFull ",
            Some("CheckpointDiskFull"),
            None,
        ),
        (
            "[FIRING:2] StreamingQueryBehind (k2-bronze-binance-stream k2 warning)",
            Some("StreamingQueryBehind"),
            Some("k2-bronze-binance-stream"),
        ),
        // As people write the runbook's alerts.
        (
            "High Memory Usage on k2-memhog",
            Some("HighMemoryUsage"),
            Some("k2-memhog"),
        ),
        (
            "high memory usage (> 90%) on k2-spark-worker-1",
            Some("HighMemoryUsage"),
            Some("k2-spark-worker-1"),
        ),
        (
            "Checkpoint Disk Full on k2-spark-master",
            Some("CheckpointDiskFull"),
            Some("k2-spark-master"),
        ),
        (
            "Streaming Query Behind for k2-bronze-kraken-stream",
            Some("StreamingQueryBehind"),
            Some("k2-bronze-kraken-stream"),
        ),
        // The old convention still works, and unknown titles stay unknown.
        (
            "High Memory Usage: k2-x",
            Some("HighMemoryUsage"),
            Some("k2-x"),
        ),
        ("Disk on fire", Some(PD_DEFAULT_ALERTNAME), None),
        // Not a container: shell text never becomes one.
        (
            "High Memory Usage on k2-x;rm -rf /",
            Some("HighMemoryUsage"),
            None,
        ),
    ];
    for (title, alertname, container) in cases {
        let got = extracted(title);
        assert_eq!(
            (got.0.as_deref(), got.1.as_deref()),
            (*alertname, *container),
            "{title}"
        );
    }
}

#[test]
fn the_shipped_dlq_rule_takes_the_data_source() {
    for (title, source) in [
        ("DLQ Rate > 1% for binance", Some("binance")),
        ("dlq rate high on kraken", Some("kraken")),
        ("DLQ Rate > 1% for k2-x", None),
    ] {
        let mut alert = incident(title);
        apply(&mut alert, None, &shipped());
        assert_eq!(
            alert.labels.get("source").map(String::as_str),
            source,
            "{title}"
        );
        assert_eq!(alert.labels["alertname"], "DlqRateHigh", "{title}");
    }
}

#[test]
fn details_come_first_and_the_source_s_own_labels_are_never_overwritten() {
    let mut alert = incident("[FIRING:1] HighMemoryUsage (k2-from-title critical)");
    let details: Labels = [
        ("alertname", "HighMemoryUsage"),
        ("container", "k2-from-details"),
        ("consumer_group", "bronze"),
        ("pd_title", "forged"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let report = apply(&mut alert, Some(&details), &shipped());
    assert_eq!(alert.labels["container"], "k2-from-details");
    assert_eq!(alert.labels["consumer_group"], "bronze");
    assert_eq!(
        alert.labels["pd_title"],
        "[FIRING:1] HighMemoryUsage (k2-from-title critical)"
    );
    let from: Vec<(&str, &str)> = report
        .taken
        .iter()
        .map(|t| (t.label.as_str(), t.from.as_str()))
        .collect();
    assert!(from.contains(&("container", FROM_DETAILS)), "{from:?}");
    assert!(from.iter().all(|(l, _)| *l != "pd_title"), "{from:?}");

    // A name the source knew is kept; only its placeholder is replaced.
    let mut known = incident("High Memory Usage: k2-a");
    let other: Labels = [("alertname".to_owned(), "Other".to_owned())].into();
    apply(&mut known, Some(&other), &[]);
    assert_eq!(known.labels["alertname"], "HighMemoryUsage");
}

#[test]
fn refused_values_are_said_and_not_used() {
    let mut alert = incident("whatever");
    let details: Labels = [("container".to_owned(), "$(reboot)".to_owned())].into();
    let report = apply(&mut alert, Some(&details), &[]);
    assert!(!alert.labels.contains_key("container"));
    assert_eq!(report.notes.len(), 1, "{report:?}");
    assert!(
        report.notes[0].contains("not a container name"),
        "{report:?}"
    );
    annotate(&mut alert, &report);
    assert!(thread_line(&alert).unwrap().contains("refused"));
}

#[test]
fn only_firing_pagerduty_incidents_are_enriched() {
    let mut alert = incident("[FIRING:1] HighMemoryUsage (k2-memhog critical)");
    alert.status = Status::Resolved;
    assert!(apply(&mut alert, None, &shipped()).is_empty());
    alert.status = Status::Firing;
    alert.source = Source::Alertmanager;
    assert!(apply(&mut alert, None, &shipped()).is_empty());
}

#[test]
fn alertmanager_details_yield_the_first_alert_s_labels() {
    // As Alertmanager 0.25's default `pagerduty.default.instances` renders two alerts.
    let firing = "Labels:\n - alertname = StreamingQueryBehind\n - consumer_group = bronze-binance\n - container = k2-bronze-binance-stream\n - severity = warning\nAnnotations:\n - summary = Lag above 5 minutes = bad\nSource: http://prometheus:9090/graph?g0.expr=lag\nLabels:\n - alertname = StreamingQueryBehind\n - container = k2-other\nAnnotations:\nSource: \n";
    let details = json!({"firing": firing, "num_firing": "2", "num_resolved": "0", "resolved": ""});
    let labels = details_labels(&details).unwrap();
    assert_eq!(labels.len(), 4, "{labels:?}");
    assert_eq!(labels["container"], "k2-bronze-binance-stream");
    assert_eq!(labels["consumer_group"], "bronze-binance");
    assert_eq!(details_labels(&json!(firing)).unwrap(), labels);
    assert!(details_labels(&json!({"summary": "no labels here"})).is_none());
    assert!(details_labels(&json!(null)).is_none());
}

#[test]
fn fields_and_settable_labels() {
    assert_eq!(PdField::parse("pd_title"), Some(PdField::PdTitle));
    assert_eq!(PdField::parse("title"), None);
    assert!(settable("container") && settable("alertname"));
    assert!(!settable("pd_title") && !settable("manual_target") && !settable("a.b"));
}
