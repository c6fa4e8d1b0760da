//! PagerDuty out, against a protocol-faithful fake PagerDuty: notes on PagerDuty incidents
//! after a run, Events API v2 triggers on a P0/P1 escalation and resolves on resolution, delivery
//! through the outbox despite 429 and 500, refusals recorded.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::pagerduty::{sign, SECRET};
use crate::support::app::{am_alert, catalog_dir, step_states, Options, TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_pagerduty::{FakePagerDuty, Fault, PD_FROM, PD_ROUTING_KEY};
use crate::support::fake_slack::FakeSlack;

/// A V3 webhook for the incident `id` titled `title`; `extra` is merged into `event`.
pub(crate) fn webhook(
    event_type: &str,
    event_id: &str,
    id: &str,
    title: &str,
    extra: Value,
) -> Vec<u8> {
    let mut event = json!({
        "id": event_id,
        "event_type": event_type,
        "resource_type": "incident",
        "occurred_at": "2026-11-27T05:01:00.250Z",
        "agent": { "id": "PUSR7", "type": "user_reference", "summary": "Dana Ops" },
        "client": null,
        "data": {
            "id": id, "type": "incident", "number": 31, "status": "triggered",
            "html_url": format!("https://k2.pagerduty.com/incidents/{id}"),
            "created_at": "2026-11-27T05:00:00Z", "title": title, "urgency": "high",
            "service": { "id": "PSVC1", "type": "service_reference", "summary": "K2 Streaming" }
        }
    });
    if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
        event.extend(extra.clone());
    }
    serde_json::to_vec(&json!({ "event": event })).unwrap()
}

pub(crate) async fn post_signed(app: &TestApp, body: &[u8], webhook_id: &str) {
    let response = app
        .client
        .post(format!("{}/webhook/pagerduty", app.address))
        .header("content-type", "application/json")
        .header("x-webhook-id", webhook_id)
        .header(
            "x-pagerduty-signature",
            format!("v1={}", sign(SECRET, body)),
        )
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{webhook_id}");
}

pub(crate) fn options(pd: &FakePagerDuty, catalog: Option<(PathBuf, PathBuf)>) -> Options {
    Options {
        pagerduty_webhook_secret: Some(SECRET.into()),
        pagerduty_out: Some(pd.url()),
        catalog,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_signed_pagerduty_trigger_restarts_the_container_and_notes_the_pagerduty_incident() {
    let hog = TestContainer::memory_hog("pd-full");
    let started = hog.started_at();
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let pd = FakePagerDuty::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(dir.path(), Some(&slack), options(&pd, None)).await;
    let title = format!("High Memory Usage: {}", hog.name());
    post_signed(
        &app,
        &webhook("incident.triggered", "ev-f1", "QFULL001", &title, json!({})),
        "wh-f1",
    )
    .await;

    let detail = app.wait_for_finished_run(hog.name(), 1).await;
    let restart = step_states(&detail, 0)
        .into_iter()
        .find(|(id, _)| id == "restart")
        .map(|(_, state)| state);
    assert_eq!(restart.as_deref(), Some("succeeded"), "{detail:#}");
    assert_eq!(detail["runs"][0]["outcome"], "succeeded");
    assert_ne!(hog.started_at(), started, "the container was restarted");

    let noted = pd
        .wait_for(|notes, _| !notes.is_empty(), Duration::from_secs(20))
        .await;
    assert!(noted, "no note reached PagerDuty");
    let notes = pd.notes();
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert_eq!(notes[0].incident, "QFULL001");
    assert_eq!(notes[0].from, PD_FROM);
    let summary = detail["runs"][0]["summary"].as_str().unwrap();
    assert!(
        notes[0].content.contains("high-memory")
            && notes[0].content.contains(hog.name())
            && notes[0].content.contains("succeeded")
            && notes[0].content.contains(summary),
        "{}",
        notes[0].content
    );
    assert!(
        pd.events().is_empty(),
        "a PagerDuty incident is not paged again"
    );
    app.stop().await;
}

/// One destructive step, one use per hour: the second alert on the same container escalates.
fn budget_catalog(dir: &Path) -> (PathBuf, PathBuf) {
    catalog_dir(
        dir,
        "routes:\n  - matchers: ['alertname=\"Bounce\"']\n    responder: bounce\n",
        &[(
            "bounce",
            r#"
name: bounce
target: "{{ alert.labels.container }}"
allow_targets: ['k2-.*']
budget: { cooldown: 1h, max: 1, per: 1h }
# P1: its escalation pages (P2 and P3 do not).
priority: P1
steps:
  - id: restart
    action: docker_restart
    container: "{{ target }}"
"#,
        )],
    )
}

#[tokio::test]
async fn an_alertmanager_incident_escalated_by_its_budget_triggers_one_event_and_its_resolve_resolves_it(
) {
    let idle = TestContainer::idle("pd-budget");
    let pd = FakePagerDuty::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(
        dir.path(),
        None,
        options(&pd, Some(budget_catalog(dir.path()))),
    )
    .await;
    let (first, second) = ("b0d9e70000000001", "b0d9e70000000002");
    let alert = |status: &str, fp: &str| {
        am_alert(status, "Bounce", idle.name(), fp, "2026-11-27T05:00:00Z")
    };

    app.post_alertmanager(&alert("firing", first)).await;
    let detail = app.wait_for_finished_run(idle.name(), 1).await;
    assert_eq!(detail["runs"][0]["outcome"], "succeeded", "{detail:#}");
    // Resolved first: a second alert while this incident is open would fold into it. The
    // first incident's resolve pages nothing (it never escalated).
    app.post_alertmanager(&alert("resolved", first)).await;
    app.post_alertmanager(&alert("firing", second)).await;
    let escalated = app.wait_for_newest_finished(idle.name(), 2).await;
    assert_eq!(
        escalated["runs"][0]["outcome"], "escalated",
        "{escalated:#}"
    );
    let incident = escalated["incident"]["id"].as_i64().unwrap();

    let triggered = pd
        .wait_for(|_, events| !events.is_empty(), Duration::from_secs(20))
        .await;
    assert!(triggered, "no event reached PagerDuty");
    // The escalated incident's resolve resolves its event.
    app.post_alertmanager(&alert("resolved", second)).await;
    let resolved = pd
        .wait_for(|_, events| events.len() >= 2, Duration::from_secs(20))
        .await;
    assert!(resolved, "{:#?}", pd.events());

    let events = pd.events();
    assert_eq!(events.len(), 2, "{events:#?}");
    let (trigger, resolve) = (&events[0], &events[1]);
    let dedup_key = format!("alert-responder/{second}/{incident}");
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], PD_ROUTING_KEY);
    assert_eq!(trigger["dedup_key"], dedup_key.as_str());
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["source"], idle.name());
    let summary = trigger["payload"]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(&format!("Bounce on {}: ", idle.name())),
        "{summary}"
    );
    assert!(summary.contains("budget"), "{summary}");
    assert_eq!(
        trigger["payload"]["custom_details"]["incident_id"],
        incident
    );
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], dedup_key.as_str());
    assert_eq!(resolve["routing_key"], PD_ROUTING_KEY);
    assert!(pd.notes().is_empty(), "Alertmanager incidents get no notes");
    app.stop().await;
}

/// A run that fails at once: inspecting a container that does not exist.
pub(crate) fn failing_catalog(dir: &Path) -> (PathBuf, PathBuf) {
    catalog_dir(
        dir,
        "routes:\n  - matchers: ['alertname=~\"Gone|PagerDutyIncident\"']\n    responder: gone\n",
        &[(
            "gone",
            r#"
name: gone
target: "k2-pd-out-never-created"
allow_targets: ['k2-.*']
# P1: its escalation pages (P2 and P3 do not).
priority: P1
steps:
  - id: state
    action: docker_inspect
    container: "{{ target }}"
"#,
        )],
    )
}

#[tokio::test]
async fn pagerduty_answering_429_then_500_then_ok_gets_every_note_and_event_exactly_once() {
    let pd = FakePagerDuty::start().await;
    pd.script(&[
        Fault::RateLimited(Some(1)),
        Fault::ServerError,
        Fault::RateLimited(None),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(
        dir.path(),
        None,
        options(&pd, Some(failing_catalog(dir.path()))),
    )
    .await;

    // A PagerDuty incident whose run fails: a note. An Alertmanager one: a trigger, then a resolve.
    post_signed(
        &app,
        &webhook(
            "incident.triggered",
            "ev-r1",
            "QRETRY01",
            "Disk on fire",
            json!({}),
        ),
        "wh-r1",
    )
    .await;
    let am = |status: &str| {
        am_alert(
            status,
            "Gone",
            "k2-pd-out-never-created",
            "9e7e900000000001",
            "2026-11-27T05:00:00Z",
        )
    };
    app.post_alertmanager(&am("firing")).await;
    let both = pd
        .wait_for(
            |notes, events| !notes.is_empty() && !events.is_empty(),
            Duration::from_secs(30),
        )
        .await;
    assert!(both, "notes {:#?} events {:#?}", pd.notes(), pd.events());
    app.post_alertmanager(&am("resolved")).await;
    let resolved = pd
        .wait_for(|_, events| events.len() >= 2, Duration::from_secs(30))
        .await;
    assert!(resolved, "{:#?}", pd.events());

    // Let any duplicate that would come arrive: the outbox is idle once every row is sent.
    let idle = app.wait_outbox_drained("pagerduty").await;
    assert!(idle, "the outbox still has pending rows");
    let notes = pd.notes();
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert_eq!(notes[0].incident, "QRETRY01");
    assert!(notes[0].content.contains("failed"), "{}", notes[0].content);
    let actions: Vec<_> = pd
        .events()
        .iter()
        .map(|e| e["event_action"].clone())
        .collect();
    assert_eq!(actions, [json!("trigger"), json!("resolve")]);
    assert_eq!(
        pd.requests_seen(),
        3 + 3,
        "three faults, then one accepted call each"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_refused_note_is_recorded_as_failed_without_the_token_and_not_retried() {
    const WRONG: &str = "u+revoked-token-never-shown";
    let pd = FakePagerDuty::start().await;
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        pagerduty_token: Some(WRONG.into()),
        ..options(&pd, Some(failing_catalog(dir.path())))
    };
    let app = TestApp::spawn(dir.path(), None, options).await;
    post_signed(
        &app,
        &webhook(
            "incident.triggered",
            "ev-x1",
            "QREFUSE1",
            "Disk on fire",
            json!({}),
        ),
        "wh-x1",
    )
    .await;

    use sqlx::Connection;
    let mut row: Option<(String, String, i64)> = None;
    for _ in 0..300 {
        let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
            .await
            .unwrap();
        row = sqlx::query_as(
            "SELECT state, COALESCE(last_error, ''), attempts FROM outbox WHERE destination = 'pagerduty'",
        )
        .fetch_optional(&mut conn)
        .await
        .unwrap();
        if row.as_ref().is_some_and(|(state, _, _)| state == "failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (state, error, attempts) = row.expect("the note was queued");
    assert_eq!((state.as_str(), attempts), ("failed", 1), "{error}");
    assert!(error.contains("401"), "{error}");
    assert!(
        !error.contains(WRONG),
        "the token never reaches the record: {error}"
    );
    assert!(pd.notes().is_empty());
    // The incident's alert lookup (refused too: the title is used) and the one note.
    assert_eq!(pd.requests_seen(), 2, "a refusal is not retried");
    app.stop().await;
}
