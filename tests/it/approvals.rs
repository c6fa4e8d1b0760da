//! Steps marked `approval: required` wait for a human: approved over the API they run,
//! denied or expired they do not, and a resolve cancels the wait.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::app::{am_alert, catalog_dir, step_states, Options, TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;

const ADMIN: &str = "admin-token-5f2a";

/// Route `Careful` to `careful`: inspect, restart only once approved, inspect again.
pub(crate) fn catalog(dir: &Path) -> (PathBuf, PathBuf) {
    catalog_dir(
        dir,
        "routes:\n  - matchers: ['alertname=\"Careful\"']\n    responder: careful\n",
        &[(
            "careful",
            r#"
name: careful
target: "{{ alert.labels.container }}"
steps:
  - id: state
    action: docker_inspect
    container: "{{ target }}"
  - id: restart
    approval: required
    action: docker_restart
    container: "{{ target }}"
  - id: after
    action: docker_inspect
    container: "{{ target }}"
"#,
        )],
    )
}

async fn start(dir: &Path, slack: &FakeSlack, ttl: &str) -> TestApp {
    let options = Options {
        catalog: Some(catalog(dir)),
        admin_token: Some(ADMIN.into()),
        approval_ttl: Some(ttl.into()),
        ..Default::default()
    };
    TestApp::spawn(dir, Some(slack), options).await
}

async fn wait_for_request(slack: &FakeSlack) {
    let asked = slack
        .wait_for(
            |m| {
                m.iter()
                    .any(|c| c.text.contains("Approval needed for *restart*"))
            },
            Duration::from_secs(20),
        )
        .await;
    assert!(asked, "{:#?}", slack.messages());
}

async fn decide(
    app: &TestApp,
    incident: i64,
    token: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!(
            "{}/api/incidents/{incident}/approvals",
            app.address
        ))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn an_approved_step_runs_and_a_second_decision_is_refused() {
    let idle = TestContainer::idle("approve");
    let before = idle.started_at();
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &slack, "5m").await;
    app.post_alertmanager(&am_alert(
        "firing",
        "Careful",
        idle.name(),
        "e000000000000001",
        "2026-11-27T05:00:00Z",
    ))
    .await;
    wait_for_request(&slack).await;
    let incident = app.incidents().await[0]["id"].as_i64().unwrap();
    assert_eq!(idle.started_at(), before, "nothing happens before approval");

    let no_token = decide(&app, incident, None, json!({"decision": "approve"})).await;
    assert_eq!(no_token.status(), 401);
    let wrong = decide(&app, incident, Some("nope"), json!({"decision": "approve"})).await;
    assert_eq!(wrong.status(), 401);
    let bad = decide(&app, incident, Some(ADMIN), json!({"decision": "maybe"})).await;
    assert_eq!(bad.status(), 400);

    let approved = decide(
        &app,
        incident,
        Some(ADMIN),
        json!({"decision": "approve", "by": "alice"}),
    )
    .await;
    assert_eq!(approved.status(), 200);
    let row: Value = approved.json().await.unwrap();
    assert_eq!(
        (row["state"].as_str(), row["decided_by"].as_str()),
        (Some("approved"), Some("alice"))
    );

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
    assert_ne!(idle.started_at(), before, "restarted after approval");
    assert_eq!(detail["approvals"][0]["state"], "approved");
    assert!(
        slack
            .wait_for(
                |m| m
                    .iter()
                    .any(|c| c.text.contains("*restart* approved by alice")),
                Duration::from_secs(10)
            )
            .await
    );
    let again = decide(&app, incident, Some(ADMIN), json!({"decision": "deny"})).await;
    assert_eq!(again.status(), 409, "a second click finds nothing pending");
    app.stop().await;
}

#[tokio::test]
async fn denied_expired_and_resolved_approvals_never_act() {
    let denied = TestContainer::idle("deny");
    let expired = TestContainer::idle("expire");
    let resolved = TestContainer::idle("resolve");
    let before = [
        denied.started_at(),
        expired.started_at(),
        resolved.started_at(),
    ];
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &slack, "4s").await;

    app.post_alertmanager(&am_alert(
        "firing",
        "Careful",
        denied.name(),
        "e000000000000002",
        "2026-11-27T05:00:00Z",
    ))
    .await;
    app.post_alertmanager(&am_alert(
        "firing",
        "Careful",
        expired.name(),
        "e000000000000003",
        "2026-11-27T05:00:00Z",
    ))
    .await;
    app.post_alertmanager(&am_alert(
        "firing",
        "Careful",
        resolved.name(),
        "e000000000000004",
        "2026-11-27T05:00:00Z",
    ))
    .await;
    let all_asked = slack
        .wait_for(
            |m| {
                m.iter()
                    .filter(|c| c.text.contains("Approval needed"))
                    .count()
                    == 3
            },
            Duration::from_secs(20),
        )
        .await;
    assert!(all_asked, "{:#?}", slack.messages());
    let id_of = |incidents: &[Value], name: &str| {
        incidents.iter().find(|i| i["target"] == name).unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let incidents = app.incidents().await;
    let response = decide(
        &app,
        id_of(&incidents, denied.name()),
        Some(ADMIN),
        json!({"decision": "deny", "by": "bob"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    app.post_alertmanager(&am_alert(
        "resolved",
        "Careful",
        resolved.name(),
        "e000000000000004",
        "2026-11-27T05:00:00Z",
    ))
    .await;

    let d = app.wait_for_finished_run(denied.name(), 1).await;
    assert_eq!(d["runs"][0]["outcome"], "cancelled");
    assert!(
        d["runs"][0]["summary"]
            .as_str()
            .unwrap()
            .starts_with("denied by bob"),
        "{d:#}"
    );
    assert_eq!(
        step_states(&d, 0)[1],
        ("restart".to_owned(), "refused".to_owned())
    );

    let r = app.wait_for_finished_run(resolved.name(), 1).await;
    assert_eq!(r["runs"][0]["outcome"], "cancelled");
    assert_eq!(r["approvals"][0]["state"], "cancelled");

    let e = app.wait_for_finished_run(expired.name(), 1).await;
    assert_eq!(e["runs"][0]["outcome"], "escalated", "{e:#}");
    assert_eq!(e["approvals"][0]["state"], "expired");
    let late = decide(
        &app,
        id_of(&incidents, expired.name()),
        Some(ADMIN),
        json!({"decision": "approve"}),
    )
    .await;
    assert_eq!(late.status(), 409, "an expired approval cannot be approved");
    assert!(
        slack
            .wait_for(
                |m| m
                    .iter()
                    .any(|c| c.text.contains("approval for restart expired after 4s")),
                Duration::from_secs(10)
            )
            .await
    );

    assert_eq!(
        [
            denied.started_at(),
            expired.started_at(),
            resolved.started_at()
        ],
        before,
        "none was restarted"
    );
    app.stop().await;
}

#[tokio::test]
async fn approvals_are_refused_when_no_admin_token_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(
        dir.path(),
        None,
        Options {
            catalog: Some(catalog(dir.path())),
            ..Default::default()
        },
    )
    .await;
    let response = decide(&app, 1, Some("anything"), json!({"decision": "approve"})).await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("RESPONDER_ADMIN_TOKEN"));
    app.stop().await;
}
