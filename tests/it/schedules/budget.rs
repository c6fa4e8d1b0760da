//! A scheduled run spends the same budget as an alert's run on its target: the first slot
//! restarts the container, the next one inside the cooldown is refused and escalated.

use alert_responder::sources::schedule::Clock;
use time::macros::datetime;

use super::{wait_for_closed, wait_for_mark};
use crate::support::app::{catalog_dir, Options, TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;

#[tokio::test]
async fn a_slot_spends_its_targets_budget_and_the_next_inside_the_cooldown_is_refused() {
    let idle = TestContainer::idle("sched");
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let responder = format!(
        r#"
name: nightly
description: A nightly restart, within budget.
schedule: "0 3 * * *"
target: {target}
allow_targets: ['k2-test-.*']
budget: {{ cooldown: 1h, max: 1, per: 1h }}
steps:
  - id: restart
    action: docker_restart
    container: "{{{{ target }}}}"
    stop_timeout: 2s
"#,
        target = idle.name()
    );
    let catalog = catalog_dir(
        dir.path(),
        "routes:\n  - matchers: ['alertname=\"Never\"']\n    responder: nightly\n",
        &[("nightly", &responder)],
    );
    let clock = Clock::manual(datetime!(2026-12-04 02:00 UTC));
    let options = Options {
        catalog: Some(catalog),
        clock: Some(clock.clone()),
        ..Default::default()
    };
    let app = TestApp::spawn(dir.path(), Some(&slack), options).await;
    wait_for_mark(&app, clock.now()).await;

    clock.set(datetime!(2026-12-04 03:00:02 UTC));
    let closed = wait_for_closed(&app, 1).await;
    let first = app
        .get_json(&format!("/api/incidents/{}", closed[0]["id"]))
        .await;
    assert_eq!(first["runs"][0]["target"], idle.name(), "{first:#}");
    assert_eq!(first["runs"][0]["outcome"], "succeeded", "{first:#}");
    assert_eq!(idle.starts(), 2, "restarted once");

    // The next night's slot, minutes later in real time: inside the one-hour cooldown.
    clock.set(datetime!(2026-12-05 03:00:02 UTC));
    let closed = wait_for_closed(&app, 2).await;
    let second = app
        .get_json(&format!("/api/incidents/{}", closed[0]["id"]))
        .await;
    assert_eq!(second["runs"][0]["outcome"], "escalated", "{second:#}");
    let kinds: Vec<&str> = (second["decisions"].as_array().unwrap().iter())
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"budget_exhausted"), "{kinds:?}");
    assert_eq!(idle.starts(), 2, "not restarted again");
    app.stop().await;
}
