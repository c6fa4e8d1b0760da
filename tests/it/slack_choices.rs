//! A choice in Slack: one message with an Approve button per option; a click on one runs
//! it, and a later click on another option is refused and says so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::app::{am_alert, catalog_dir, step_states, Options, TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::{FakeSlack, Recorded};
use crate::support::slack::{click, click_payload, User, SIGNING_SECRET};

const ALICE: User = ("U0ALICE", "alice");
const BOB: User = ("U0BOB", "bob");
const WAIT: Duration = Duration::from_secs(30);

/// `Pick` goes to `pick`: restart or start the container, one of the two.
fn catalog(dir: &Path) -> (PathBuf, PathBuf) {
    catalog_dir(
        dir,
        "routes:\n  - matchers: ['alertname=\"Pick\"']\n    responder: pick\n",
        &[(
            "pick",
            r#"
name: pick
target: "{{ alert.labels.container }}"
steps:
  - id: bounce
    approval: required
    choice: fix
    warning: the job pauses for a moment
    action: docker_restart
    container: "{{ target }}"
  - id: nudge
    approval: required
    choice: fix
    action: docker_start
    container: "{{ target }}"
  - id: after
    action: docker_inspect
    container: "{{ target }}"
"#,
        )],
    )
}

async fn answer(slack: &FakeSlack, id: &str) -> String {
    let body = slack
        .wait_for_response(id, WAIT)
        .await
        .unwrap_or_else(|| panic!("no response_url answer {id}"));
    body["text"].as_str().unwrap().to_owned()
}

/// Starts the app and fires `Pick` on `target`; returns the app and the choice message.
async fn offered(dir: &Path, slack: &FakeSlack, target: &TestContainer) -> (TestApp, Recorded) {
    let options = Options {
        catalog: Some(catalog(dir)),
        slack_signing_secret: Some(SIGNING_SECRET.into()),
        slack_allowed: [None, Some(format!("{},{}", ALICE.0, BOB.0)), None],
        ..Default::default()
    };
    let app = TestApp::spawn(dir, Some(slack), options).await;
    app.post_alertmanager(&am_alert(
        "firing",
        "Pick",
        target.name(),
        "c4010e0000000001",
        "2026-11-27T05:00:00Z",
    ))
    .await;
    let asked = |m: &[Recorded]| {
        m.iter()
            .any(|c| c.text.contains("Choose one option of *fix*"))
    };
    assert!(slack.wait_for(asked, WAIT).await, "{:#?}", slack.messages());
    let message = slack
        .messages()
        .into_iter()
        .find(|c| asked(std::slice::from_ref(c)))
        .unwrap();
    assert!(
        message.text.contains("the job pauses for a moment"),
        "{}",
        message.text
    );
    (app, message)
}

#[tokio::test]
async fn one_click_chooses_and_a_click_on_the_other_option_is_refused() {
    let idle = TestContainer::idle("choice");
    let before = idle.started_at();
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (app, message) = offered(dir.path(), &slack, &idle).await;
    let blocks = slack.blocks_of(&message.ts).unwrap();
    let buttons = blocks[1]["elements"].as_array().unwrap();
    let labels: Vec<&str> = buttons
        .iter()
        .map(|b| b["text"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["Approve bounce", "Approve nudge", "Deny all"]);
    let button = |i: usize| {
        (
            buttons[i]["action_id"].as_str().unwrap().to_owned(),
            buttons[i]["value"].as_str().unwrap().to_owned(),
        )
    };
    let ((bounce_action, bounce), (nudge_action, nudge)) = (button(0), button(1));
    assert_eq!(idle.started_at(), before, "nothing runs before a click");

    let chosen = click_payload(ALICE, &bounce_action, &bounce, &slack.response_url("alice"));
    assert_eq!(click(&app, &chosen).await, 200);
    assert!(answer(&slack, "alice")
        .await
        .starts_with("You approved *bounce*"));
    let detail = app.wait_for_finished_run(idle.name(), 1).await;
    assert_eq!(
        step_states(&detail, 0),
        [
            ("bounce", "succeeded"),
            ("nudge", "refused"),
            ("after", "succeeded")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_ne!(idle.started_at(), before, "the chosen option ran");

    let late = click_payload(BOB, &nudge_action, &nudge, &slack.response_url("bob"));
    assert_eq!(click(&app, &late).await, 200);
    let why = answer(&slack, "bob").await;
    assert!(
        why.contains("*nudge* was refused: another option was chosen"),
        "{why}"
    );
    let settled = slack
        .wait_for(
            |c| {
                c.iter().any(|u| {
                    u.method == "chat.update" && u.ts == message.ts && u.text.contains("Not chosen")
                })
            },
            WAIT,
        )
        .await;
    assert!(settled, "{:#?}", slack.updates());
    let text = slack.current_text(&message.ts).unwrap();
    assert!(
        text.contains("Approved by @alice (U0ALICE)") && text.contains("*nudge*"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn deny_all_runs_no_option() {
    let idle = TestContainer::idle("choice-deny");
    let before = idle.started_at();
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (app, message) = offered(dir.path(), &slack, &idle).await;
    let blocks = slack.blocks_of(&message.ts).unwrap();
    let deny = &blocks[1]["elements"][2];
    let payload = click_payload(
        BOB,
        deny["action_id"].as_str().unwrap(),
        deny["value"].as_str().unwrap(),
        &slack.response_url("bob"),
    );
    assert_eq!(click(&app, &payload).await, 200);
    let detail = app.wait_for_finished_run(idle.name(), 1).await;
    assert_eq!(detail["runs"][0]["outcome"], "cancelled", "{detail:#}");
    assert_eq!(
        step_states(&detail, 0),
        [
            ("bounce", "refused"),
            ("nudge", "refused"),
            ("after", "skipped")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(idle.started_at(), before, "no option ran");
    app.stop().await;
}
