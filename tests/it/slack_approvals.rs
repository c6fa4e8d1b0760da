//! Approval buttons end to end against the fake Slack: the request carries Approve / Deny,
//! a click by an allowed user decides it once and the message is edited (chat.update) to say
//! who decided and when; refused, repeated and late clicks change nothing and say why.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::approvals::catalog;
use crate::support::app::{am_alert, step_states, Options, TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::{FakeSlack, Recorded};
use crate::support::slack::{click, click_payload, reply, User, SIGNING_SECRET};

const ALICE: User = ("U0ALICE", "alice");
const MALLORY: User = ("U0MALLORY", "mallory");
const WAIT: Duration = Duration::from_secs(30);

/// Starts the app, fires the alert, and returns the approval request message and its id.
pub(crate) async fn requested(
    dir: &Path,
    slack: &FakeSlack,
    target: &TestContainer,
    ttl: &str,
) -> (TestApp, Recorded, String) {
    let options = Options {
        catalog: Some(catalog(dir)),
        approval_ttl: Some(ttl.into()),
        slack_signing_secret: Some(SIGNING_SECRET.into()),
        slack_allowed: [None, Some(ALICE.0.into()), None],
        ..Default::default()
    };
    let app = TestApp::spawn(dir, Some(slack), options).await;
    app.post_alertmanager(&am_alert(
        "firing",
        "Careful",
        target.name(),
        "f00000000000000a",
        "2026-11-27T05:00:00Z",
    ))
    .await;
    let asked = |m: &[Recorded]| {
        m.iter()
            .any(|c| c.text.contains("Approval needed for *restart*"))
    };
    assert!(slack.wait_for(asked, WAIT).await, "{:#?}", slack.messages());
    let message = slack
        .messages()
        .into_iter()
        .find(|c| asked(std::slice::from_ref(c)))
        .unwrap();
    assert!(
        message.thread_ts.is_some(),
        "the request is in the incident thread"
    );
    let blocks = slack
        .blocks_of(&message.ts)
        .expect("the request carries blocks");
    let buttons = blocks[1]["elements"].as_array().unwrap();
    let labels: Vec<&str> = buttons
        .iter()
        .map(|b| b["text"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["Approve", "Deny"]);
    let approval = buttons[0]["value"].as_str().unwrap().to_owned();
    assert_eq!(buttons[1]["value"], approval.as_str());
    (app, message, approval)
}

/// Waits for a chat.update of `ts` whose text contains `needle`; returns its text.
async fn updated(slack: &FakeSlack, ts: &str, needle: &str) -> String {
    let seen = slack
        .wait_for(
            |c| {
                c.iter()
                    .any(|u| u.method == "chat.update" && u.ts == ts && u.text.contains(needle))
            },
            WAIT,
        )
        .await;
    assert!(
        seen,
        "no chat.update of {ts} with {needle:?}: {:#?}",
        slack.updates()
    );
    slack.current_text(ts).unwrap()
}

async fn answer(slack: &FakeSlack, id: &str) -> String {
    let body = slack
        .wait_for_response(id, WAIT)
        .await
        .unwrap_or_else(|| panic!("no response_url answer {id}"));
    assert_eq!(body["response_type"], "ephemeral", "{body}");
    assert_eq!(body["replace_original"], false, "{body}");
    body["text"].as_str().unwrap().to_owned()
}

fn audit_of(entries: &Value) -> Vec<(String, String)> {
    entries
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .filter(|e| e["command"] == "button")
        .map(|e| {
            (
                e["user_id"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn approve_click_runs_the_step_edits_the_message_and_a_second_click_changes_nothing() {
    let idle = TestContainer::idle("slackok");
    let before = idle.started_at();
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (app, message, approval) = requested(dir.path(), &slack, &idle, "10m").await;

    let refused = click_payload(
        MALLORY,
        "approval_approve",
        &approval,
        &slack.response_url("mallory"),
    );
    assert_eq!(click(&app, &refused).await, 200);
    assert!(answer(&slack, "mallory")
        .await
        .contains("Not allowed to decide approvals"));
    assert_eq!(idle.started_at(), before, "a refused click decides nothing");

    let ok = click_payload(
        ALICE,
        "approval_approve",
        &approval,
        &slack.response_url("alice"),
    );
    assert_eq!(click(&app, &ok).await, 200);
    let text = updated(&slack, &message.ts, "Approved by").await;
    assert!(
        text.starts_with(":white_check_mark: Approved by @alice (U0ALICE) at "),
        "{text}"
    );
    assert!(text.contains(" UTC: *restart*: "), "{text}");
    let blocks = slack.blocks_of(&message.ts).unwrap();
    assert!(
        !blocks.to_string().contains("button"),
        "the buttons are gone: {blocks}"
    );
    assert!(answer(&slack, "alice")
        .await
        .starts_with("You approved *restart*"));

    let detail = app.wait_for_finished_run(idle.name(), 1).await;
    assert_eq!(
        step_states(&detail, 0),
        [
            ("state", "succeeded"),
            ("restart", "succeeded"),
            ("after", "succeeded")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_ne!(idle.started_at(), before, "restarted after the click");
    assert_eq!(detail["approvals"][0]["decided_by"], "@alice (U0ALICE)");

    // A second click, even the other button, changes nothing and says why.
    let again = click_payload(
        ALICE,
        "approval_deny",
        &approval,
        &slack.response_url("again"),
    );
    assert_eq!(click(&app, &again).await, 200);
    let why = answer(&slack, "again").await;
    assert!(
        why.contains("Nothing changed: *restart* was already approved by @alice (U0ALICE)"),
        "{why}"
    );
    let detail = app
        .get_json(&format!("/api/incidents/{}", detail["incident"]["id"]))
        .await;
    assert_eq!(detail["approvals"][0]["state"], "approved");
    assert!(slack
        .current_text(&message.ts)
        .unwrap()
        .contains("Approved by @alice"));
    assert_eq!(
        audit_of(&app.get_json("/api/audit").await),
        [
            ("U0MALLORY", "refused"),
            ("U0ALICE", "allowed"),
            ("U0ALICE", "refused")
        ]
        .map(|(u, o)| (u.to_owned(), o.to_owned()))
    );
    app.stop().await;
}

#[tokio::test]
async fn deny_click_stops_the_run_and_says_who() {
    let idle = TestContainer::idle("slackdeny");
    let before = idle.started_at();
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (app, message, approval) = requested(dir.path(), &slack, &idle, "10m").await;

    let deny = click_payload(
        ALICE,
        "approval_deny",
        &approval,
        &slack.response_url("deny"),
    );
    assert_eq!(click(&app, &deny).await, 200);
    let text = updated(&slack, &message.ts, "Denied by").await;
    assert!(
        text.starts_with(":no_entry_sign: Denied by @alice (U0ALICE) at "),
        "{text}"
    );
    let detail = app.wait_for_finished_run(idle.name(), 1).await;
    assert_eq!(detail["runs"][0]["outcome"], "cancelled");
    assert_eq!(
        step_states(&detail, 0)[1],
        ("restart".to_owned(), "refused".to_owned())
    );
    assert_eq!(idle.started_at(), before, "denied: never restarted");
    app.stop().await;
}

#[tokio::test]
async fn a_click_after_expiry_changes_nothing_and_the_message_shows_it_expired() {
    let idle = TestContainer::idle("slackexp");
    let before = idle.started_at();
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (app, message, approval) = requested(dir.path(), &slack, &idle, "2s").await;

    let text = updated(&slack, &message.ts, "Expired").await;
    assert!(text.starts_with(":hourglass: Expired at "), "{text}");
    let late = click_payload(
        ALICE,
        "approval_approve",
        &approval,
        &slack.response_url("late"),
    );
    assert_eq!(click(&app, &late).await, 200);
    let why = answer(&slack, "late").await;
    assert!(
        why.contains("Nothing changed: *restart* was expired"),
        "{why}"
    );
    let detail = app.wait_for_finished_run(idle.name(), 1).await;
    assert_eq!(detail["approvals"][0]["state"], "expired");
    assert_eq!(detail["runs"][0]["outcome"], "escalated");
    assert_eq!(idle.started_at(), before);
    app.stop().await;
}

#[tokio::test]
async fn the_slash_command_approves_too_and_the_buttons_follow() {
    let idle = TestContainer::idle("slackcmd");
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (app, message, _) = requested(dir.path(), &slack, &idle, "10m").await;
    let incident = app.incidents().await[0]["id"].as_i64().unwrap();

    assert!(reply(&app, MALLORY, &format!("approve {incident}"))
        .await
        .contains("Not allowed"));
    let done = reply(&app, ALICE, &format!("approve {incident}")).await;
    assert!(
        done.starts_with(&format!("Approved *restart* of incident *#{incident}*")),
        "{done}"
    );
    updated(&slack, &message.ts, "Approved by @alice (U0ALICE)").await;
    app.wait_for_finished_run(idle.name(), 1).await;
    let again = reply(&app, ALICE, &format!("deny {incident}")).await;
    assert!(again.contains("Nothing changed"), "{again}");
    app.stop().await;
}
