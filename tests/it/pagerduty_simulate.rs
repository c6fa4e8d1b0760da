//! `simulate` with PagerDuty V3 payloads, and routes that match PagerDuty fields
//! (`pd_title` by regex, `pd_service`, `pd_urgency`, `pd_priority`).

use std::path::Path;

use serde_json::{json, Value};

use crate::simulate::{binary, run};
use crate::support::app::catalog_dir;

const ROUTES: &str = r#"
routes:
  - matchers: ['pd_title=~"(?i)high memory usage: .*"', 'pd_service="K2 Streaming"', 'pd_urgency="high"', 'pd_priority=~"P[12]"']
    responder: pd-memory
"#;

const RESPONDER: &str = r#"
name: pd-memory
description: Memory incidents paged in PagerDuty for the K2 streaming service.
target: "{{ alert.labels.container }}"
allow_targets: ['k2-.*']
steps:
  - id: state
    action: docker_inspect
    container: "{{ target }}"
"#;

fn incident(event_type: &str, title: &str, priority: &str) -> Value {
    json!({ "event": {
        "id": "01SIMEVENT0001",
        "event_type": event_type,
        "resource_type": "incident",
        "occurred_at": "2026-11-27T05:10:00Z",
        "agent": { "id": "PUSR9", "type": "user_reference", "summary": "Dana Ops" },
        "data": {
            "id": "QSIM0001", "type": "incident", "number": 12, "status": "triggered",
            "created_at": "2026-11-27T05:00:00Z", "title": title, "urgency": "high",
            "service": { "id": "PSVC1", "type": "service_reference", "summary": "K2 Streaming" },
            "priority": { "id": "PPRI1", "type": "priority_reference", "summary": priority }
        }
    }})
}

async fn simulate_json(dir: &Path, body: &Value, source: Option<&str>) -> Value {
    let file = dir.join("payload.json");
    std::fs::write(&file, body.to_string()).unwrap();
    let db = format!("sqlite://{}/none.db", dir.display());
    let (routes, responders) = catalog_dir(dir, ROUTES, &[("pd-memory", RESPONDER)]);
    let (file, routes, responders) = (
        file.display().to_string(),
        routes.display().to_string(),
        responders.display().to_string(),
    );
    let mut args = vec!["simulate", file.as_str(), "--json"];
    args.extend(["--routes-dir", &routes, "--responders-dir", &responders]);
    if let Some(source) = source {
        args.extend(["--source", source]);
    }
    let (ok, out, err) = run(binary(dir, &args, &db)).await;
    assert!(ok, "{out}{err}");
    serde_json::from_str(&out).expect("simulate --json prints JSON")
}

#[tokio::test]
async fn a_pagerduty_trigger_is_detected_and_routed_on_its_pagerduty_fields() {
    let dir = tempfile::tempdir().unwrap();
    let body = incident(
        "incident.triggered",
        "High Memory Usage: k2-bronze-binance-stream",
        "P1",
    );
    let out = simulate_json(dir.path(), &body, None).await;
    let alert = &out["alerts"][0];
    assert_eq!(alert["fingerprint"], "QSIM0001");
    assert_eq!(alert["labels"]["pd_service"], "K2 Streaming");
    assert_eq!(alert["responders"][0]["responder"], "pd-memory", "{out:#}");
    assert_eq!(
        alert["responders"][0]["target"]["Ok"], "k2-bronze-binance-stream",
        "{out:#}"
    );
    let outcome = alert["outcome"].as_str().unwrap();
    assert!(
        outcome.contains("run pd-memory on k2-bronze-binance-stream")
            && outcome.contains("note with the outcome to PagerDuty incident QSIM0001"),
        "{outcome}"
    );

    // Any one field off and the route does not match: here the priority.
    let p3 = incident(
        "incident.triggered",
        "High Memory Usage: k2-bronze-binance-stream",
        "P3",
    );
    let out = simulate_json(dir.path(), &p3, Some("pagerduty")).await;
    assert!(
        out["alerts"][0]["responders"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{out:#}"
    );
    assert!(out["alerts"][0]["outcome"]
        .as_str()
        .unwrap()
        .starts_with("no route matches"));
}

#[tokio::test]
async fn acknowledgements_and_unknown_pagerduty_events_explain_that_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let ack = incident("incident.acknowledged", "High Memory Usage: k2-x", "P1");
    let out = simulate_json(dir.path(), &ack, None).await;
    let outcome = out["alerts"][0]["outcome"].as_str().unwrap();
    assert!(
        outcome.contains("PagerDuty acknowledged") && outcome.contains("nothing runs"),
        "{outcome}"
    );
    assert!(
        out["alerts"][0]["routes"].as_array().unwrap().is_empty(),
        "never routed"
    );
    let other = incident("incident.priority_updated", "High Memory Usage: k2-x", "P1");
    let out = simulate_json(dir.path(), &other, None).await;
    assert_eq!(out["ignored"], "incident.priority_updated", "{out:#}");
    assert!(out["alerts"].as_array().unwrap().is_empty());
}
