//! The shipped high-memory responder end to end: webhook → store → real Docker → fake Slack.

use std::time::Duration;

use crate::support::app::{am_alert, step_states, Options, TestApp};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;

fn states(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test]
async fn hog_is_restarted_and_verified_idle_is_left_alone_and_both_are_reported() {
    let hog = TestContainer::memory_hog("hm-hog");
    let idle = TestContainer::idle("hm-idle");
    let hog_started = hog.started_at();
    let idle_started = idle.started_at();
    let slack = FakeSlack::start(crate::support::app::SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(dir.path(), Some(&slack), Options::default()).await;

    for (container, fingerprint) in [
        (hog.name(), "f00000000000a001"),
        (idle.name(), "f00000000000a002"),
    ] {
        let body = am_alert(
            "firing",
            "HighMemoryUsage",
            container,
            fingerprint,
            "2026-11-27T05:00:00Z",
        );
        let response = app.post_alertmanager(&body).await;
        assert_eq!(response.status(), 200);
    }

    let hog_detail = app.wait_for_finished_run(hog.name(), 1).await;
    assert_eq!(
        step_states(&hog_detail, 0),
        states(&[
            ("state", "succeeded"),
            ("mem", "succeeded"),
            ("logs", "succeeded"),
            ("restart", "succeeded"),
            ("verify_running", "succeeded"),
            ("verify_memory", "succeeded"),
        ]),
        "{hog_detail:#}"
    );
    assert_eq!(hog_detail["runs"][0]["outcome"], "succeeded");
    let before = hog_detail["runs"][0]["steps"][1]["outputs"]["memory_percent"]
        .as_f64()
        .unwrap();
    let after = hog_detail["runs"][0]["steps"][5]["outputs"]["memory_percent"]
        .as_f64()
        .unwrap();
    assert!(
        before >= 90.0 && after < before,
        "memory {before} -> {after}"
    );
    assert!(
        hog_detail["runs"][0]["steps"][2]["outputs"]["match_count"]
            .as_i64()
            .unwrap()
            >= 1
    );
    assert_ne!(hog.started_at(), hog_started, "the hog was restarted");

    let idle_detail = app.wait_for_finished_run(idle.name(), 1).await;
    assert_eq!(
        step_states(&idle_detail, 0),
        states(&[
            ("state", "succeeded"),
            ("mem", "succeeded"),
            ("logs", "succeeded"),
            ("restart", "skipped"),
            ("verify_running", "skipped"),
            ("verify_memory", "skipped"),
        ]),
    );
    assert_eq!(idle_detail["runs"][0]["summary"], "no change needed");
    assert_eq!(
        idle.started_at(),
        idle_started,
        "the idle container was not restarted"
    );

    // One parent per incident, every step as a reply in its thread, the parent edited at the end.
    let delivered = slack
        .wait_for(
            |calls| {
                calls.iter().filter(|c| c.method == "chat.update").count() >= 2 && calls.len() >= 16
            },
            Duration::from_secs(20),
        )
        .await;
    assert!(delivered, "slack calls: {:#?}", slack.calls());
    let parents: Vec<_> = slack
        .messages()
        .into_iter()
        .filter(|m| m.thread_ts.is_none())
        .collect();
    assert_eq!(parents.len(), 2, "{parents:#?}");
    for parent in &parents {
        let replies: Vec<_> = slack
            .messages()
            .into_iter()
            .filter(|m| m.thread_ts.as_deref() == Some(&parent.ts))
            .collect();
        assert_eq!(replies.len(), 6, "one reply per step: {replies:#?}");
        let text = slack.current_text(&parent.ts).unwrap();
        assert!(text.contains("*HighMemoryUsage* FIRING"), "{text}");
        assert!(text.contains("severity *critical*"), "{text}");
        assert!(
            text.contains("*succeeded*"),
            "the edit shows the outcome: {text}"
        );
    }
    let hog_parent = parents
        .iter()
        .find(|p| p.text.contains(hog.name()))
        .unwrap();
    let edited = slack.current_text(&hog_parent.ts).unwrap();
    assert!(edited.contains("Done: restart: restarted"), "{edited}");
    assert!(edited.contains("Found: state:"), "{edited}");
    app.stop().await;
}
