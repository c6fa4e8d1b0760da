//! What PagerDuty says about an incident shows in its Slack thread (acknowledgements, notes),
//! and the two destinations do not wait for each other.

use std::time::Duration;

use serde_json::json;

use crate::pagerduty_out::{failing_catalog, options, post_signed, webhook};
use crate::support::app::{TestApp, SLACK_TOKEN};
use crate::support::fake_pagerduty::FakePagerDuty;
use crate::support::fake_slack::FakeSlack;

#[tokio::test]
async fn acknowledgements_and_notes_from_pagerduty_appear_in_the_incident_thread() {
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let pd = FakePagerDuty::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(dir.path(), Some(&slack), options(&pd, None)).await;
    // Outside the allow-list: the incident is recorded and refused, nothing touches Docker.
    let title = "High Memory Usage: web-frontend";
    post_signed(
        &app,
        &webhook("incident.triggered", "ev-1", "QACK0001", title, json!({})),
        "wh-1",
    )
    .await;
    let ack = webhook(
        "incident.acknowledged",
        "ev-2",
        "QACK0001",
        title,
        json!({}),
    );
    post_signed(&app, &ack, "wh-2").await;
    post_signed(&app, &ack, "wh-2").await; // PagerDuty's redelivery: one reply only
    let note = webhook(
        "incident.annotated",
        "ev-3",
        "QACK0001",
        title,
        json!({ "data": {
            "incident": { "id": "QACK0001", "type": "incident_reference", "summary": title },
            "id": "PNOTE9", "type": "incident_note", "trimmed": false,
            "content": "Heap dump taken <!channel>, restarting by hand"
        }}),
    );
    post_signed(&app, &note, "wh-3").await;

    let shown = slack
        .wait_for(
            |calls| calls.iter().any(|c| c.text.contains("Note in PagerDuty")),
            Duration::from_secs(20),
        )
        .await;
    assert!(shown, "{:#?}", slack.messages());
    let parent = slack
        .messages()
        .into_iter()
        .find(|m| m.thread_ts.is_none())
        .expect("a parent message");
    let replies: Vec<String> = slack
        .messages()
        .into_iter()
        .filter(|m| m.thread_ts.as_deref() == Some(&parent.ts))
        .map(|m| m.text)
        .collect();
    let acks: Vec<_> = replies
        .iter()
        .filter(|t| t.contains("Acknowledged in PagerDuty by *Dana Ops*"))
        .collect();
    assert_eq!(acks.len(), 1, "{replies:#?}");
    let notes: Vec<_> = replies
        .iter()
        .filter(|t| t.contains("Note in PagerDuty"))
        .collect();
    assert_eq!(notes.len(), 1, "{replies:#?}");
    assert!(
        notes[0].contains("by *Dana Ops*")
            && notes[0].contains("Heap dump taken &lt;!channel&gt;, restarting by hand"),
        "PagerDuty text is data, never a mention: {}",
        notes[0]
    );
    // No run happened, so nothing is said back to PagerDuty.
    assert!(pd.notes().is_empty() && pd.events().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_slack_outage_does_not_hold_back_pagerduty() {
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    slack.set_down(true);
    let pd = FakePagerDuty::start().await;
    let dir = tempfile::tempdir().unwrap();
    let options = options(&pd, Some(failing_catalog(dir.path())));
    let app = TestApp::spawn(dir.path(), Some(&slack), options).await;
    post_signed(
        &app,
        &webhook(
            "incident.triggered",
            "ev-s1",
            "QSLACK01",
            "Disk on fire",
            json!({}),
        ),
        "wh-s1",
    )
    .await;

    let noted = pd
        .wait_for(|notes, _| !notes.is_empty(), Duration::from_secs(20))
        .await;
    assert!(noted, "the note waited for Slack");
    assert!(
        slack.messages().is_empty(),
        "Slack is down: nothing posted yet"
    );

    // Slack back: its thread arrives, in order, and PagerDuty gets nothing twice.
    slack.set_down(false);
    let posted = slack
        .wait_for(|calls| !calls.is_empty(), Duration::from_secs(30))
        .await;
    assert!(posted, "Slack messages were kept for later");
    assert!(slack.messages()[0].thread_ts.is_none(), "the parent first");
    assert_eq!(pd.notes().len(), 1);
    app.stop().await;
}
