//! Slack outages and rate limits delay messages but neither lose nor duplicate them, and the
//! thread stays in order.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::faults::{one_route, query_strings};
use crate::support::app::{am_alert, Options, TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;
use crate::support::wait;

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
    assert!(
        wait::until(Duration::from_secs(30), || async {
            slack.requests_seen() > 0
        })
        .await,
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
    // Every outbox row delivered and recorded so: nothing is left that could be sent twice.
    assert!(
        app.wait_outbox_drained("slack").await,
        "the Slack outbox drains"
    );

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

/// Three report steps: a parent, three replies and parent updates per incident, no Docker.
const CHATTY: &str = r#"
name: chatty
description: Three notes in the thread.
target: "{{ alert.labels.container }}"
allow_targets: ['k2-test-.*']
steps:
  - id: one
    action: report
    text: "One for {{ target }}"
  - id: two
    action: report
    text: "Two for {{ target }}"
  - id: three
    action: report
    text: "Three for {{ target }}"
"#;

/// How long each phase of the outage lasts: HTTP 500s, then 429s with Retry-After.
const PHASE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_minute_of_500s_then_429s_loses_nothing_doubles_nothing_keeps_order_and_health() {
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let catalog = one_route(dir.path(), "Chatty", "chatty", CHATTY);
    let app = TestApp::spawn(dir.path(), Some(&slack), Options::with_catalog(catalog)).await;
    // Alerts keep coming through the outage; the service answers them and stays ready.
    let mut n = 0;
    for phase in [Some(500), Some(429)] {
        slack.set_failing(phase == Some(500));
        slack.set_throttled((phase == Some(429)).then_some(3));
        let end = tokio::time::Instant::now() + PHASE;
        while tokio::time::Instant::now() < end {
            n += 1;
            let body = am_alert(
                "firing",
                "Chatty",
                &format!("k2-test-chatty-{n}"),
                &format!("a{n:015x}"),
                "2026-11-27T05:00:00Z",
            );
            assert_eq!(app.post_alertmanager(&body).await.status(), 200);
            assert_eq!(app.get_json("/readyz").await["status"], "ready");
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    assert!(
        slack.calls().is_empty(),
        "nothing accepted during the outage"
    );
    assert!(slack.requests_seen() > n, "delivery kept being attempted");
    slack.set_throttled(None);

    // Afterwards every queued message arrives; the outbox is the list of what must.
    let url = app.database_url.clone();
    let mut pending = i64::MAX;
    for _ in 0..1_200 {
        pending =
            crate::faults::query_i64(&url, "SELECT COUNT(*) FROM outbox WHERE state <> 'sent'")
                .await;
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pending, 0, "every message delivered after the outage");
    let posts = query_strings(
        &url,
        "SELECT incident_id || char(9) || kind || char(9) || text FROM outbox WHERE kind <> 'update' ORDER BY id",
    )
    .await;
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut parents = BTreeMap::new();
    for row in &posts {
        let [incident, kind, text] = row.splitn(3, '\t').collect::<Vec<_>>()[..] else {
            panic!("{row}")
        };
        if kind == "parent" {
            parents.insert(text.to_owned(), incident.to_owned());
        } else {
            expected
                .entry(incident.to_owned())
                .or_default()
                .push(text.to_owned());
        }
    }
    assert_eq!(parents.len(), n, "one incident per alert");
    let messages = slack.messages();
    assert_eq!(
        messages.len(),
        posts.len(),
        "each message once: {messages:#?}"
    );
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut thread_of = BTreeMap::new();
    for m in &messages {
        match &m.thread_ts {
            None => {
                let incident = parents.get(&m.text).expect("a parent the outbox holds");
                thread_of.insert(m.ts.clone(), incident.clone());
            }
            Some(ts) => {
                let incident = thread_of.get(ts).expect("replies follow their parent");
                seen.entry(incident.clone())
                    .or_default()
                    .push(m.text.clone());
            }
        }
    }
    assert_eq!(
        seen, expected,
        "every thread complete, in order, nothing twice"
    );
    let updates =
        crate::faults::query_i64(&url, "SELECT COUNT(*) FROM outbox WHERE kind = 'update'").await;
    assert_eq!(slack.updates().len() as i64, updates);
    app.stop().await;
}
