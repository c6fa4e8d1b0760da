//! PagerDuty incidents from real sources reach their target: the title Alertmanager's own
//! PagerDuty integration really sends (captured from a real Alertmanager posting to a fake
//! Events API), the runbook's titles as people write them, and the labels Alertmanager puts
//! in the incident's alert details, read through the REST API when a token is set; a failing
//! API falls back to the title without losing the incident.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::pagerduty::SECRET;
use crate::pagerduty_out::{options, post_signed, webhook};
use crate::simulate::{binary, run};
use crate::support::alertmanager::{prometheus_alert, AlertmanagerCluster};
use crate::support::app::{Options, TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_pagerduty::{FakePagerDuty, Fault, PD_ROUTING_KEY};
use crate::support::fake_slack::FakeSlack;

/// An Alertmanager config whose only receiver is its PagerDuty integration, pointed at
/// `events_url` (a fake Events API), grouping by `group_by` (e.g. `'alertname'`).
fn pagerduty_receiver(events_url: &str, group_by: &str) -> String {
    format!(
        "route:
  receiver: pagerduty
  group_by: [{group_by}]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: pagerduty
    pagerduty_configs:
      - routing_key: '{PD_ROUTING_KEY}'
        url: '{events_url}/v2/enqueue'
        send_resolved: false
"
    )
}

/// Posts `alerts` (label sets) to a real Alertmanager whose PagerDuty integration, grouping
/// by `alertname`, sends to a fake Events API; returns the trigger event it sent
/// (`payload.summary` is the incident's title in PagerDuty, `payload.custom_details` its
/// alert's details).
async fn alertmanager_pagerduty_event(alerts: &[Value]) -> Value {
    alertmanager_pagerduty_event_by(alerts, "'alertname'").await
}

/// [`alertmanager_pagerduty_event`] with another `group_by`.
async fn alertmanager_pagerduty_event_by(alerts: &[Value], group_by: &str) -> Value {
    let events = FakePagerDuty::start().await;
    let config = pagerduty_receiver(&events.url(), group_by);
    let am = AlertmanagerCluster::start_with(1, &config).await;
    let now = OffsetDateTime::now_utc();
    let at = |t: OffsetDateTime| t.format(&Rfc3339).unwrap();
    let posted: Vec<Value> = alerts
        .iter()
        .map(|labels| {
            prometheus_alert(
                labels,
                &json!({"summary": "Memory above 90% = bad"}),
                &at(now),
                &at(now + time::Duration::hours(1)),
            )
        })
        .collect();
    am.post_alerts(&Value::Array(posted)).await;
    let sent = events
        .wait_for(|_, events| !events.is_empty(), Duration::from_secs(30))
        .await;
    assert!(sent, "Alertmanager sent no PagerDuty event:\n{}", am.logs());
    let event = events.events().remove(0);
    assert_eq!(event["event_action"], "trigger", "{event:#}");
    event
}

fn title_of(event: &Value) -> String {
    event["payload"]["summary"]
        .as_str()
        .unwrap_or_else(|| panic!("no payload.summary: {event:#}"))
        .to_owned()
}

/// Waits (bounded) for the incident of PagerDuty incident `pd_id` and returns its detail.
async fn incident_of(app: &TestApp, pd_id: &str) -> Value {
    for _ in 0..300 {
        for incident in app.incidents().await {
            let detail = app
                .get_json(&format!("/api/incidents/{}", incident["id"]))
                .await;
            if detail["alerts"][0]["labels"]["pd_incident_id"] == pd_id {
                return detail;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no incident for PagerDuty incident {pd_id} within 30 s");
}

/// Delivers a signed `incident.triggered` for PagerDuty incident `pd_id` titled `title`, and
/// returns the detail of the incident it opened.
async fn trigger(app: &TestApp, pd_id: &str, title: &str) -> Value {
    let body = webhook(
        "incident.triggered",
        &format!("ev-{pd_id}"),
        pd_id,
        title,
        json!({}),
    );
    post_signed(app, &body, &format!("wh-{pd_id}")).await;
    incident_of(app, pd_id).await
}

fn secret_only() -> Options {
    Options {
        pagerduty_webhook_secret: Some(SECRET.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn alertmanager_s_own_pagerduty_title_reaches_its_container_and_the_responder_runs() {
    let hog = TestContainer::memory_hog("pd-am");
    let labels =
        json!({"alertname": "HighMemoryUsage", "container": hog.name(), "severity": "critical"});
    let event = alertmanager_pagerduty_event(&[labels]).await;
    let title = title_of(&event);
    // The default description: group values, then the other common labels' values.
    assert_eq!(
        title.trim_end(),
        format!("[FIRING:1] HighMemoryUsage ({} critical)", hog.name()),
        "{event:#}"
    );

    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(dir.path(), Some(&slack), secret_only()).await;
    let body = webhook(
        "incident.triggered",
        "ev-am1",
        "QAMTITLE1",
        &title,
        json!({}),
    );
    post_signed(&app, &body, "wh-am1").await;

    let detail = app.wait_for_finished_run(hog.name(), 1).await;
    assert_eq!(detail["runs"][0]["responder"], "high-memory", "{detail:#}");
    assert_eq!(detail["runs"][0]["outcome"], "succeeded", "{detail:#}");
    let alert = &detail["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "HighMemoryUsage");
    assert_eq!(alert["labels"]["container"], hog.name());
    let taken = alert["annotations"]["pd_labels"].as_str().unwrap_or("");
    assert!(
        taken.contains(&format!("container={} (pd_title by ", hog.name()))
            && taken.contains("pagerduty.yaml: extract["),
        "{alert:#}"
    );
    let said = slack
        .wait_for(
            |calls| {
                calls
                    .iter()
                    .any(|c| c.text.contains("Labels taken from PagerDuty"))
            },
            Duration::from_secs(20),
        )
        .await;
    assert!(
        said,
        "the thread says where the labels came from: {:#?}",
        slack.messages()
    );
    app.stop().await;
}

#[tokio::test]
async fn grouped_by_container_too_the_real_title_still_gives_its_target() {
    let labels = json!({"alertname": "CheckpointDiskFull", "container": "k2-spark-master", "severity": "warning"});
    let event = alertmanager_pagerduty_event_by(&[labels], "'alertname', 'container'").await;
    let title = title_of(&event);
    assert_eq!(
        title.trim_end(),
        "[FIRING:1] CheckpointDiskFull k2-spark-master (warning)",
        "{event:#}"
    );
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(dir.path(), None, secret_only()).await;
    let detail = trigger(&app, "QGROUPED1", &title).await;
    assert_eq!(
        detail["incident"]["target"], "k2-spark-master",
        "{detail:#}"
    );
    assert_eq!(
        detail["runs"][0]["responder"], "checkpoint-disk",
        "{detail:#}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_runbook_title_as_people_write_it_gets_its_target_and_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(dir.path(), None, secret_only()).await;
    let title = "High Memory Usage on k2-memhog";
    let detail = trigger(&app, "QRUNBOOK1", title).await;
    assert_eq!(detail["incident"]["target"], "k2-memhog", "{detail:#}");
    assert_eq!(detail["runs"][0]["responder"], "high-memory", "{detail:#}");
    assert_eq!(detail["runs"][0]["target"], "k2-memhog", "{detail:#}");
    let decisions = detail["decisions"].to_string();
    assert!(!decisions.contains("target_unresolved"), "{detail:#}");
    app.stop().await;

    // `simulate` shows the same, and where the label came from.
    let payload = dir.path().join("runbook.json");
    let body = webhook(
        "incident.triggered",
        "ev-rb1",
        "QRUNBOOK1",
        title,
        json!({}),
    );
    std::fs::write(&payload, &body).unwrap();
    let db = format!("sqlite://{}/none.db", dir.path().display());
    let file = payload.display().to_string();
    let (ok, out, err) = run(binary(dir.path(), &["simulate", &file], &db)).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("label container=k2-memhog taken from pd_title by ")
            && out.contains("high-memory on k2-memhog"),
        "{out}"
    );
}

#[tokio::test]
async fn with_a_token_labels_come_from_the_alert_details_alertmanager_sent() {
    // Two containers in one group: the title names neither, the details list both.
    let alerts = [
        json!({"alertname": "HighMemoryUsage", "container": "k2-test-details-a", "severity": "critical"}),
        json!({"alertname": "HighMemoryUsage", "container": "k2-test-details-b", "severity": "critical"}),
    ];
    let event = alertmanager_pagerduty_event(&alerts).await;
    let title = title_of(&event);
    assert!(!title.contains("k2-test-details"), "{title}");
    let details = event["payload"]["custom_details"].clone();
    assert!(
        details["firing"]
            .as_str()
            .is_some_and(|f| f.contains("Labels:\n - alertname = HighMemoryUsage\n")),
        "{event:#}"
    );

    let pd = FakePagerDuty::start().await;
    pd.set_alert_details("QDETAILS1", details);
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(dir.path(), None, options(&pd, None)).await;
    let detail = trigger(&app, "QDETAILS1", &title).await;
    let target = detail["incident"]["target"].as_str().unwrap_or("");
    assert!(
        ["k2-test-details-a", "k2-test-details-b"].contains(&target),
        "{detail:#}"
    );
    assert_eq!(detail["runs"][0]["responder"], "high-memory", "{detail:#}");
    let alert = &detail["alerts"][0];
    assert_eq!(alert["labels"]["severity"], "critical", "{alert:#}");
    let taken = alert["annotations"]["pd_labels"].as_str().unwrap_or("");
    assert!(
        taken.contains(&format!("container={target} (the PagerDuty API")),
        "{alert:#}"
    );
    assert_eq!(pd.lookups(), ["QDETAILS1"]);
    app.stop().await;
}

#[tokio::test]
async fn a_failing_lookup_falls_back_to_the_title_and_keeps_the_incident() {
    for (fault, said) in [
        (Fault::ServerError, "500"),
        (Fault::RateLimited(Some(1)), "rate limited"),
    ] {
        let pd = FakePagerDuty::start().await;
        // What the API would have said, had it answered: never used.
        pd.set_alert_details(
            "QFAIL0001",
            json!({"firing": "Labels:\n - container = k2-from-api\n"}),
        );
        pd.script(&[fault]);
        let dir = tempfile::tempdir().unwrap();
        let app = TestApp::spawn(dir.path(), None, options(&pd, None)).await;
        let title = "[FIRING:1] HighMemoryUsage (k2-memhog critical)";
        let detail = trigger(&app, "QFAIL0001", title).await;
        assert_eq!(
            detail["incident"]["target"], "k2-memhog",
            "{fault:?}: {detail:#}"
        );
        assert_eq!(detail["runs"][0]["responder"], "high-memory", "{detail:#}");
        let note = detail["alerts"][0]["annotations"]["pd_labels_note"]
            .as_str()
            .unwrap_or("");
        assert!(
            note.contains("PagerDuty API lookup") && note.contains(said),
            "{fault:?}: {detail:#}"
        );
        assert!(pd.requests_seen() >= 1);
        app.stop().await;
    }
}

/// Runs `alert-responder check` on these catalog directories: (ok, stdout, stderr).
async fn check(dir: &Path, routes: &Path, responders: &Path) -> (bool, String, String) {
    let db = format!("sqlite://{}/none.db", dir.display());
    let (routes, responders) = (
        routes.display().to_string(),
        responders.display().to_string(),
    );
    let args = [
        "check",
        "--routes-dir",
        &routes,
        "--responders-dir",
        &responders,
    ];
    run(binary(dir, &args, &db)).await
}

#[tokio::test]
async fn check_names_each_bad_extract_rule_with_its_file_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let (_, responders) = crate::support::app::shipped_catalog();
    let routes = dir.path().join("routes");
    std::fs::create_dir_all(&routes).unwrap();
    std::fs::write(
        routes.join("k2.yaml"),
        "routes:\n  - matchers: ['alertname=\"HighMemoryUsage\"']\n    responder: high-memory\n",
    )
    .unwrap();
    std::fs::write(
        routes.join("pd.yaml"),
        "extract:
  - field: pd_tittle
    regex: '(?P<container>k2-.+)'
  - field: pd_title
    regex: 'High Memory Usage on (?P<container>k2-[a-z'
  - field: pd_title
    regex: 'High Memory Usage on k2-.+'
",
    )
    .unwrap();
    let (ok, out, err) = check(dir.path(), &routes, &responders).await;
    assert!(!ok, "{out}{err}");
    assert!(!out.contains("ok:"), "{out}");
    let lines: Vec<&str> = err.lines().collect();
    for (path, words) in [
        ("extract[0].field", "unknown field \"pd_tittle\""),
        ("extract[1].regex", "invalid regex"),
        ("extract[2].regex", "no named group"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains("pd.yaml") && l.contains(path) && l.contains(words)),
            "{path}: {words}\n{err}"
        );
    }
}

#[tokio::test]
async fn check_counts_the_shipped_pagerduty_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (routes, responders) = crate::support::app::shipped_catalog();
    let (ok, out, err) = check(dir.path(), &routes, &responders).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains(" PagerDuty extract rule(s), "), "{out}");
}
