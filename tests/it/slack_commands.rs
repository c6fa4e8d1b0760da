//! The Slack slash command end to end: signed requests only, each subcommand against the
//! real app (status against real Docker containers), authorization per user and user group,
//! and every attempt in the audit.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::app::{catalog_dir, step_states, Options, TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;
use crate::support::slack::{
    command, command_body, now, post_raw, post_signed, reply, signature, User, SIGNING_SECRET,
};

const ALICE: User = ("U0ALICE", "alice");
const BOB: User = ("U0BOB", "bob");
const MALLORY: User = ("U0MALLORY", "mallory");

mod groups;
mod mode;
mod replays;
mod status;

/// One read-only responder allowed on `k2-test-slack*` containers.
fn catalog(dir: &Path) -> (PathBuf, PathBuf) {
    catalog_dir(
        dir,
        "routes:\n  - matchers: ['alertname=\"Never\"']\n    responder: check\n",
        &[(
            "check",
            r#"
name: check
target: "{{ alert.labels.container }}"
allow_targets: ['k2-test-slack.*']
steps:
  - id: state
    action: docker_inspect
    container: "{{ target }}"
"#,
        )],
    )
}

fn options(dir: &Path) -> Options {
    Options {
        catalog: Some(catalog(dir)),
        slack_signing_secret: Some(SIGNING_SECRET.into()),
        ..Default::default()
    }
}

/// `/responder run …` as `user`: the reply, with the incident number the follow-up gives when
/// the dispatcher was slower than the reply may wait.
async fn run(app: &TestApp, slack: &FakeSlack, user: User, text: &str) -> String {
    let id = format!("run-{}", user.0);
    let (code, json) = command(app, user, text, &slack.response_url(&id)).await;
    assert_eq!(code, 200, "{json}");
    let reply = json["text"].as_str().unwrap().to_owned();
    if !reply.contains("its incident number follows") {
        return reply;
    }
    let followed = slack.wait_for_response(&id, Duration::from_secs(30)).await;
    let followed = followed.expect("the incident number follows");
    format!("{reply} {}", followed["text"].as_str().unwrap())
}

async fn audit(app: &TestApp) -> Vec<Value> {
    app.get_json("/api/audit")
        .await
        .as_array()
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn only_validly_signed_recent_requests_are_answered() {
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(dir.path(), Some(&slack), options(dir.path())).await;
    // One body (its trigger_id is unique per call), signed and sent as is.
    let help = command_body("/responder", "help", ALICE, "");
    let body = || help.clone();

    let ts = now();
    let good = post_raw(
        &app,
        "/slack/commands",
        body(),
        ts,
        &signature(SIGNING_SECRET, ts, &body()),
    )
    .await;
    assert_eq!(good.status(), 200);
    let json: Value = good.json().await.unwrap();
    assert!(
        json["text"]
            .as_str()
            .unwrap()
            // Escaped like every reply: Slack shows `<responder>`, and never reads it as a link.
            .contains("/responder run &lt;responder&gt; &lt;target&gt;"),
        "{json}"
    );

    let forged = post_raw(
        &app,
        "/slack/commands",
        body(),
        ts,
        &signature("not-the-secret", ts, &body()),
    )
    .await;
    assert_eq!(forged.status(), 401);
    let tampered = post_raw(
        &app,
        "/slack/commands",
        body().replace("help", "mode"),
        ts,
        &signature(SIGNING_SECRET, ts, &body()),
    )
    .await;
    assert_eq!(tampered.status(), 401);
    // A captured request replayed six minutes later, correctly signed for its old timestamp.
    let old = ts - 360;
    let stale = post_raw(
        &app,
        "/slack/commands",
        body(),
        old,
        &signature(SIGNING_SECRET, old, &body()),
    )
    .await;
    assert_eq!(stale.status(), 401);
    let unsigned = app
        .client
        .post(format!("{}/slack/commands", app.address))
        .body(body())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let click = post_raw(
        &app,
        "/slack/interactions",
        "payload=%7B%7D".into(),
        ts,
        "v0=00",
    )
    .await;
    assert_eq!(click.status(), 401);

    // Another command pointed at this URL is refused, and recorded.
    let other = post_signed(
        &app,
        "/slack/commands",
        command_body("/deploy", "prod", ALICE, ""),
    )
    .await;
    assert_eq!(other.status(), 200);
    let text = other.json::<Value>().await.unwrap()["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains("answers /responder only"), "{text}");
    let entries = audit(&app).await;
    assert_eq!(
        entries.len(),
        2,
        "help and the refused /deploy; unsigned ones never count: {entries:#?}"
    );
    assert_eq!(
        (
            entries[0]["command"].as_str(),
            entries[0]["outcome"].as_str()
        ),
        (Some("unknown"), Some("refused"))
    );
    app.stop().await;

    // Without a signing secret the endpoints are off, not open.
    let dir = tempfile::tempdir().unwrap();
    let off = TestApp::spawn(
        dir.path(),
        Some(&slack),
        Options {
            catalog: Some(catalog(dir.path())),
            ..Default::default()
        },
    )
    .await;
    let response = post_signed(&off, "/slack/commands", body()).await;
    assert_eq!(response.status(), 503);
    off.stop().await;
}

#[tokio::test]
async fn nobody_may_run_approve_or_change_the_mode_by_default_and_every_attempt_is_audited() {
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(dir.path(), Some(&slack), options(dir.path())).await;

    for text in [
        "run check k2-test-slack-x",
        "approve 1",
        "deny 1",
        "mode dry-run",
    ] {
        let answer = reply(&app, MALLORY, text).await;
        assert!(
            answer.contains(":no_entry: Not allowed"),
            "{text}: {answer}"
        );
        assert!(answer.contains("is empty"), "{text}: {answer}");
    }
    assert!(app.incidents().await.is_empty(), "nothing was run");
    assert!(reply(&app, MALLORY, "mode")
        .await
        .contains("global *live* (RESPONDER_MODE)"));
    assert_eq!(reply(&app, MALLORY, "incidents").await, "No incidents yet.");
    let nonsense = reply(&app, MALLORY, "reboot everything").await;
    assert!(
        nonsense.contains("cannot read `reboot everything`"),
        "{nonsense}"
    );

    let entries = audit(&app).await;
    let seen: Vec<(String, String, String, String)> = entries
        .iter()
        .rev()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap().to_owned();
            (s("user_id"), s("command"), s("args"), s("outcome"))
        })
        .collect();
    let want = [
        ("run", "run check k2-test-slack-x", "refused"),
        ("approve", "approve 1", "refused"),
        ("deny", "deny 1", "refused"),
        ("mode", "mode dry-run", "refused"),
        ("mode", "mode", "allowed"),
        ("incidents", "incidents", "allowed"),
        ("invalid", "reboot everything", "failed"),
    ]
    .map(|(c, a, o)| {
        (
            MALLORY.0.to_owned(),
            c.to_owned(),
            a.to_owned(),
            o.to_owned(),
        )
    });
    assert_eq!(seen, want);
    assert_eq!(entries[0]["user_name"], "mallory");
    assert!(entries[0]["at"].as_str().unwrap().starts_with("20"));
    app.stop().await;
}

#[tokio::test]
async fn a_group_member_runs_a_responder_for_real_and_others_are_refused() {
    let idle = TestContainer::idle("slackrun");
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    slack.set_usergroup("S0ONCALL", &[BOB.0]);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.slack_allowed[0] = Some(format!("{},S0ONCALL", ALICE.0));
    let app = TestApp::spawn(dir.path(), Some(&slack), opts).await;

    let refused = reply(&app, MALLORY, &format!("run check {}", idle.name())).await;
    assert!(
        refused.contains("you are not in SLACK_RUN_ALLOWED"),
        "{refused}"
    );

    let started = run(&app, &slack, BOB, &format!("run check {}", idle.name())).await;
    assert!(started.contains("Run of *check*"), "{started}");
    assert!(started.contains("(live)"), "{started}");
    let id: i64 = started
        .split("incident *#")
        .nth(1)
        .and_then(|s| s.split('*').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{started}"));
    let detail = app.wait_for_finished_run(idle.name(), 1).await;
    assert_eq!(detail["incident"]["id"], id, "{detail:#}");
    assert_eq!(
        step_states(&detail, 0),
        [("state".to_owned(), "succeeded".to_owned())]
    );
    assert_eq!(detail["runs"][0]["responder"], "check");
    assert_eq!(detail["runs"][0]["mode"], "live");
    // Nothing resolves a manual run: its incident closes once the run is done.
    let mut closed = false;
    for _ in 0..200 {
        let incident = app.get_json(&format!("/api/incidents/{id}")).await;
        if incident["incident"]["status"] == "resolved" {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(closed, "the manual incident closes after its run");

    let listed = reply(&app, ALICE, "incidents").await;
    assert!(
        listed.contains(&format!("*#{id}* resolved ManualRun `{}`", idle.name())),
        "{listed}"
    );
    // The allow-list holds for people too.
    let outside = reply(&app, ALICE, "run check k2-kafka").await;
    assert!(outside.contains("outside check's allow-list"), "{outside}");
    let unknown = reply(&app, ALICE, "run nosuch k2-test-slack-x").await;
    assert!(
        unknown.contains("no responder named nosuch; known: check"),
        "{unknown}"
    );
    assert_eq!(app.incidents().await.len(), 1, "refusals create nothing");

    let entries = audit(&app).await;
    let outcomes: Vec<(&str, &str)> = entries
        .iter()
        .rev()
        .filter(|e| e["command"] == "run")
        .map(|e| {
            (
                e["user_id"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (MALLORY.0, "refused"),
            (BOB.0, "allowed"),
            (ALICE.0, "refused"),
            (ALICE.0, "failed")
        ]
    );
    let bob = entries.iter().find(|e| e["user_id"] == BOB.0).unwrap();
    // `incident N (live)`, or `queued (live)` when the dispatcher was slower than the reply.
    let detail = bob["detail"].as_str().unwrap();
    assert!(
        detail == format!("incident {id} (live)") || detail == "queued (live)",
        "{detail}"
    );
    app.stop().await;
}
