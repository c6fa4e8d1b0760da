//! The shipped oom-killed responder on real Docker: a dead container is started under
//! budget and verified; one already brought back by its restart policy is left alone.

use std::time::Duration;

use crate::support::app::{am_alert, step_states, Options, TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;

#[tokio::test]
async fn a_killed_container_is_started_and_verified_and_a_running_one_is_left_alone() {
    let dead = TestContainer::idle("oomr-dead");
    dead.stop();
    let back = TestContainer::idle("oomr-back");
    let back_started = back.started_at();
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(dir.path(), Some(&slack), Options::default()).await;
    for (c, fp) in [
        (dead.name(), "f100000000000001"),
        (back.name(), "f100000000000002"),
    ] {
        app.post_alertmanager(&am_alert(
            "firing",
            "ContainerOomKilled",
            c,
            fp,
            "2026-11-27T05:00:00Z",
        ))
        .await;
    }

    let d = app.wait_for_finished_run(dead.name(), 1).await;
    let states: Vec<_> = step_states(&d, 0)
        .into_iter()
        .map(|(id, s)| format!("{id}={s}"))
        .collect();
    assert_eq!(
        states,
        [
            "state=succeeded",
            "logs=succeeded",
            "start=succeeded",
            "stays_up=succeeded",
            "memory=succeeded",
            "advice=succeeded"
        ],
        "{d:#}"
    );
    assert!(dead.is_running(), "started again");
    let advice = d["runs"][0]["steps"][5]["summary"].as_str().unwrap();
    assert!(
        advice.contains("64.0 MiB") && advice.contains("docker-compose.yml"),
        "{advice}"
    );

    let b = app.wait_for_finished_run(back.name(), 1).await;
    let states: Vec<_> = step_states(&b, 0)
        .into_iter()
        .map(|(id, s)| format!("{id}={s}"))
        .collect();
    assert_eq!(states[2], "start=skipped", "{b:#}");
    assert_eq!(
        back.started_at(),
        back_started,
        "its restart policy already brought it back"
    );
    assert!(
        slack
            .wait_for(
                |m| m.iter().any(|c| c.text.contains("*advice*")),
                Duration::from_secs(10)
            )
            .await
    );
    app.stop().await;
}
