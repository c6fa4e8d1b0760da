//! Replays: a signed Slack request captured and sent again inside the five-minute window acts
//! once. The copy is refused (401), whatever it asked: `run`, `mode`, `approve`, `deny` or a
//! button click; the record shows one attempt.

use std::path::Path;

use serde_json::Value;

use super::{audit, options, ALICE, BOB};
use crate::slack_approvals::requested;
use crate::support::app::{TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;
use crate::support::slack::{
    click_payload, command_body, now, post_raw, reply, signature, SIGNING_SECRET,
};

/// Sends one signed request to `path`, then the very same bytes again; returns both answers.
async fn twice(app: &TestApp, path: &str, body: String) -> ((u16, Value), u16) {
    let ts = now();
    let sig = signature(SIGNING_SECRET, ts, &body);
    let first = post_raw(app, path, body.clone(), ts, &sig).await;
    let status = first.status().as_u16();
    let json = first.json().await.unwrap_or(Value::Null);
    let replay = post_raw(app, path, body, ts, &sig).await;
    ((status, json), replay.status().as_u16())
}

/// `/responder <text>` as Alice, sent twice.
async fn command_twice(app: &TestApp, text: &str) -> (String, u16) {
    let body = command_body("/responder", text, ALICE, "");
    let ((status, json), replay) = twice(app, "/slack/commands", body).await;
    assert_eq!(status, 200, "{text}: {json}");
    (json["text"].as_str().unwrap_or_default().to_owned(), replay)
}

async fn attempts(app: &TestApp, command: &str) -> usize {
    audit(app)
        .await
        .iter()
        .filter(|e| e["command"] == command)
        .count()
}

#[tokio::test]
async fn a_replayed_run_or_mode_acts_once() {
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.slack_allowed = [Some(ALICE.0.into()), None, Some(ALICE.0.into())];
    let app = TestApp::spawn(dir.path(), Some(&slack), opts).await;

    let (started, replay) = command_twice(&app, "run check k2-test-slack-replayed").await;
    assert!(started.contains("Run of *check*"), "{started}");
    assert_eq!(replay, 401, "the replayed run is refused");
    assert_eq!(app.journal_rows().await, 1, "one run requested");
    assert_eq!(attempts(&app, "run").await, 1);

    // A captured `mode dry-run`, replayed after someone set the mode back to live, would
    // undo that.
    let body = command_body("/responder", "mode dry-run", ALICE, "");
    let ts = now();
    let captured = signature(SIGNING_SECRET, ts, &body);
    let first = post_raw(&app, "/slack/commands", body.clone(), ts, &captured).await;
    assert_eq!(first.status(), 200);
    assert!(reply(&app, ALICE, "mode live")
        .await
        .contains("set to *live*"));
    let replay = post_raw(&app, "/slack/commands", body, ts, &captured).await;
    assert_eq!(replay.status(), 401);
    let shown = reply(&app, BOB, "mode").await;
    assert!(
        shown.contains("global *live*"),
        "the replay changed nothing: {shown}"
    );
    assert_eq!(
        attempts(&app, "mode").await,
        3,
        "dry-run, live, and the look"
    );
    app.stop().await;
}

/// Starts an app with a step waiting for approval on a fresh container; returns the app,
/// the incident and the approval id.
async fn waiting(dir: &Path, slack: &FakeSlack, target: &TestContainer) -> (TestApp, i64, String) {
    let (app, _, approval) = requested(dir, slack, target, "10m").await;
    let incident = app.incidents().await[0]["id"].as_i64().unwrap();
    (app, incident, approval)
}

/// `approve` or `deny` of a waiting step, sent twice: decided once.
async fn decided_once(container: &str, verb: &str, reply_start: &str) {
    let idle = TestContainer::idle(container);
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (app, incident, _) = waiting(dir.path(), &slack, &idle).await;
    let (done, replay) = command_twice(&app, &format!("{verb} {incident}")).await;
    assert!(done.starts_with(reply_start), "{done}");
    assert_eq!(replay, 401);
    assert_eq!(attempts(&app, verb).await, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_replayed_approve_acts_once() {
    decided_once("replayapprove", "approve", "Approved *restart*").await;
}

#[tokio::test]
async fn a_replayed_deny_acts_once() {
    decided_once("replaydeny", "deny", "Denied *restart*").await;
}

#[tokio::test]
async fn a_replayed_button_click_acts_once() {
    let idle = TestContainer::idle("replayclick");
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (app, _, approval) = waiting(dir.path(), &slack, &idle).await;
    let payload = click_payload(ALICE, "approval_approve", &approval, "");
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let ((status, _), replay) = twice(&app, "/slack/interactions", body).await;
    assert_eq!((status, replay), (200, 401));
    assert_eq!(attempts(&app, "button").await, 1, "one click recorded");
    app.wait_for_finished_run(idle.name(), 1).await;
    app.stop().await;
}
