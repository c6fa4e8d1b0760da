//! Slack outages and rate limits delay messages but neither lose nor duplicate them, and the
//! thread stays in order.

use std::time::Duration;

use crate::support::app::{am_alert, Options, TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;

const STEPS: [&str; 6] = [
    "state",
    "mem",
    "logs",
    "restart",
    "verify_running",
    "verify_memory",
];

#[tokio::test]
async fn an_outage_and_429s_delay_the_thread_but_lose_and_double_nothing() {
    let idle = TestContainer::idle("outage");
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    slack.set_down(true);
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(dir.path(), Some(&slack), Options::default()).await;
    app.post_alertmanager(&am_alert(
        "firing",
        "HighMemoryUsage",
        idle.name(),
        "d000000000000001",
        "2026-11-27T05:00:00Z",
    ))
    .await;
    app.wait_for_finished_run(idle.name(), 1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        slack.requests_seen() > 0,
        "delivery was attempted during the outage"
    );
    assert!(
        slack.calls().is_empty(),
        "nothing accepted while Slack is down"
    );

    // Slack comes back but rate-limits the first attempts.
    slack.rate_limit_next(2, 1);
    slack.set_down(false);
    let all = slack
        .wait_for(
            |calls| {
                calls
                    .iter()
                    .filter(|c| c.method == "chat.postMessage")
                    .count()
                    >= 7
                    && calls.iter().any(|c| c.method == "chat.update")
            },
            Duration::from_secs(30),
        )
        .await;
    assert!(all, "{:#?}", slack.calls());
    tokio::time::sleep(Duration::from_millis(1500)).await; // a chance for any duplicate to show

    let messages = slack.messages();
    assert_eq!(
        messages.len(),
        7,
        "one parent and six replies, none twice: {messages:#?}"
    );
    let parent = &messages[0];
    assert!(parent.thread_ts.is_none() && parent.text.contains(idle.name()));
    let replies: Vec<_> = messages[1..]
        .iter()
        .map(|m| {
            assert_eq!(
                m.thread_ts.as_deref(),
                Some(parent.ts.as_str()),
                "in the thread"
            );
            STEPS
                .iter()
                .find(|s| m.text.contains(&format!("*{s}*")))
                .copied()
                .unwrap_or("?")
        })
        .collect();
    assert_eq!(replies, STEPS, "replies in step order");
    assert_eq!(slack.updates().len(), 1);
    let detail = app
        .get_json(&format!(
            "/api/incidents/{}",
            app.incidents().await[0]["id"]
        ))
        .await;
    let states: Vec<_> = detail["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap().to_owned())
        .collect();
    assert!(states.iter().all(|s| s == "sent"), "{states:?}");
    assert!(
        detail["messages"][0]["attempts"].as_i64().unwrap() > 1,
        "the parent was retried"
    );
    app.stop().await;
}
