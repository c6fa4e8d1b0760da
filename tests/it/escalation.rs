//! Escalation as the runbook says: each escalation names the responder's priority (P0-P3)
//! and the primary on-call group, and only P0/P1 page through PagerDuty.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::Connection;

use crate::support::app::{am_alert, catalog_dir, Options, TestApp, SLACK_TOKEN};
use crate::support::fake_pagerduty::FakePagerDuty;
use crate::support::fake_slack::FakeSlack;

/// Two responders whose only step fails at once (inspecting a container that never exists),
/// so every run escalates: `urgent` at P1, `routine` at P2.
fn catalog(dir: &Path) -> (PathBuf, PathBuf) {
    let responder = |name: &str, priority: &str| {
        format!(
            "name: {name}\ntarget: \"k2-escalation-never-created\"\nallow_targets: ['k2-.*']\n\
             priority: {priority}\nsteps:\n  - id: state\n    action: docker_inspect\n    container: \"{{{{ target }}}}\"\n"
        )
    };
    let (urgent, routine) = (responder("urgent", "P1"), responder("routine", "P2"));
    catalog_dir(
        dir,
        "routes:\n  - matchers: ['alertname=\"Urgent\"']\n    responder: urgent\n  - matchers: ['alertname=\"Routine\"']\n    responder: routine\n",
        &[("urgent", urgent.as_str()), ("routine", routine.as_str())],
    )
}

async fn spawn(dir: &Path, slack: &FakeSlack, pd: &FakePagerDuty) -> TestApp {
    let options = Options {
        pagerduty_out: Some(pd.url()),
        oncall_group: Some("S0DATAPLAT".into()),
        catalog: Some(catalog(dir)),
        ..Default::default()
    };
    TestApp::spawn(dir, Some(slack), options).await
}

/// Waits (bounded) until `incident`'s parent was refreshed after its escalation reply: the
/// run's PagerDuty decision is made between the two, so it is final then.
async fn wait_until_run_reported(app: &TestApp, incident: i64) -> bool {
    for _ in 0..300 {
        let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
            .await
            .unwrap();
        let done: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox u WHERE u.incident_id = ?1 AND u.kind = 'update' \
             AND u.id > (SELECT MAX(id) FROM outbox WHERE incident_id = ?1 AND text LIKE ':sos:%')",
        )
        .bind(incident)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if done > 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn pagerduty_rows(app: &TestApp, incident: i64) -> i64 {
    let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
        .await
        .unwrap();
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE destination = 'pagerduty' AND incident_id = ?1",
    )
    .bind(incident)
    .fetch_one(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_p1_escalation_pages_and_names_p1_and_the_oncall_group_while_a_p2_one_does_not_page() {
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let pd = FakePagerDuty::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &slack, &pd).await;
    let target = "k2-escalation-never-created";

    // P2 first: it says so in Slack and pages nobody.
    app.post_alertmanager(&am_alert(
        "firing",
        "Routine",
        target,
        "e5ca1a7e00000002",
        "2026-11-27T05:00:00Z",
    ))
    .await;
    let routine = app.wait_for_newest_finished(target, 1).await;
    assert_eq!(routine["runs"][0]["outcome"], "failed", "{routine:#}");
    let routine_id = routine["incident"]["id"].as_i64().unwrap();
    assert!(
        wait_until_run_reported(&app, routine_id).await,
        "the P2 run was never reported"
    );
    let said = slack
        .wait_for(
            |calls| calls.iter().any(|c| c.text.contains(":sos: *P2*")),
            Duration::from_secs(20),
        )
        .await;
    assert!(said, "{:#?}", slack.messages());
    let p2 = slack
        .messages()
        .into_iter()
        .find(|c| c.text.contains(":sos:"))
        .unwrap();
    assert!(
        p2.text.contains("single job failure")
            && p2
                .text
                .contains("escalating to a human <!subteam^S0DATAPLAT>"),
        "{}",
        p2.text
    );
    assert_eq!(
        pagerduty_rows(&app, routine_id).await,
        0,
        "a P2 escalation queued a page"
    );

    // P1: the same Slack form naming P1, and one trigger that carries the priority.
    app.post_alertmanager(&am_alert(
        "firing",
        "Urgent",
        target,
        "e5ca1a7e00000001",
        "2026-11-27T05:00:00Z",
    ))
    .await;
    let paged = pd
        .wait_for(|_, events| !events.is_empty(), Duration::from_secs(30))
        .await;
    assert!(paged, "the P1 escalation sent no PagerDuty event");
    let said = slack
        .wait_for(
            |calls| calls.iter().any(|c| c.text.contains(":sos: *P1*")),
            Duration::from_secs(20),
        )
        .await;
    assert!(said, "{:#?}", slack.messages());
    let p1 = slack
        .messages()
        .into_iter()
        .find(|c| c.text.contains(":sos: *P1*"))
        .unwrap();
    assert!(
        p1.text.contains("data loss risk") && p1.text.contains("<!subteam^S0DATAPLAT>"),
        "{}",
        p1.text
    );
    let events = pd.events();
    assert_eq!(events.len(), 1, "only the P1 escalation pages: {events:#?}");
    assert_eq!(events[0]["event_action"], "trigger");
    assert_eq!(events[0]["payload"]["custom_details"]["priority"], "P1");
    assert!(
        events[0]["dedup_key"]
            .as_str()
            .unwrap()
            .contains("e5ca1a7e00000001"),
        "{:#}",
        events[0]
    );
    assert_eq!(pagerduty_rows(&app, routine_id).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn without_an_oncall_group_an_escalation_names_the_runbook_s_primary_rotation() {
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let pd = FakePagerDuty::start().await;
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        pagerduty_out: Some(pd.url()),
        catalog: Some(catalog(dir.path())),
        ..Default::default()
    };
    let app = TestApp::spawn(dir.path(), Some(&slack), options).await;
    app.post_alertmanager(&am_alert(
        "firing",
        "Routine",
        "k2-escalation-never-created",
        "e5ca1a7e00000003",
        "2026-11-27T05:00:00Z",
    ))
    .await;
    let said = slack
        .wait_for(
            |calls| calls.iter().any(|c| c.text.contains(":sos: *P2*")),
            Duration::from_secs(30),
        )
        .await;
    assert!(said, "{:#?}", slack.messages());
    let text = slack
        .messages()
        .into_iter()
        .find(|c| c.text.contains(":sos:"))
        .unwrap()
        .text;
    assert!(
        text.ends_with("escalating to a human Data Platform Team (#data-platform-oncall)"),
        "{text}"
    );
    app.stop().await;
}
