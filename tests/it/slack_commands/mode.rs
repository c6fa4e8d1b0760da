//! `mode`: set from Slack by an allowed user, applied to runs, kept across a restart.

use serde_json::Value;

use super::{audit, options, run, ALICE, BOB};
use crate::support::app::{TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;
use crate::support::slack::reply;

#[tokio::test]
async fn the_mode_set_from_slack_applies_to_runs_and_survives_a_restart() {
    let idle = TestContainer::idle("slackmode");
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.slack_allowed = [Some(ALICE.0.into()), None, Some(ALICE.0.into())];
    let app = TestApp::spawn(dir.path(), Some(&slack), opts).await;

    let set = reply(&app, ALICE, "mode dry-run").await;
    assert!(set.contains("Global mode set to *dry-run*"), "{set}");
    let own = reply(&app, ALICE, "mode live check").await;
    assert!(own.contains("Runs of it stay *dry-run*"), "{own}");
    let app = app.restart(Some(&slack)).await;
    let shown = reply(&app, BOB, "mode").await;
    assert_eq!(
        shown,
        "Mode: global *dry-run* (set at runtime); check *live*"
    );

    let started = run(&app, &slack, ALICE, &format!("run check {}", idle.name())).await;
    assert!(started.contains("(dry-run)"), "{started}");
    let detail = app.wait_for_finished_run(idle.name(), 1).await;
    assert_eq!(detail["runs"][0]["mode"], "dry-run");
    assert!(reply(&app, ALICE, "mode live")
        .await
        .contains("global *live* (set at runtime); check *live*"));
    let modes: Vec<Value> = audit(&app)
        .await
        .into_iter()
        .filter(|e| e["command"] == "mode")
        .collect();
    assert_eq!(modes.len(), 4, "{modes:#?}");
    app.stop().await;
}
