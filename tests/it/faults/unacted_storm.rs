//! Storms of alerts that are not acted on, against the real binary: 1,000 distinct alerts of
//! one name for one target with no route, and 1,000 whose target the allow-list refuses, each
//! fold into one incident and at most one Slack thread whose parent counts them in place;
//! with the default settings, unrouted alerts are recorded and never posted. A Slack outage
//! meanwhile is one line in the log, not one per attempt per pending message.

use std::time::Duration;

use serde_json::{json, Value};

use super::{database_url, one_route, query_i64, serve_command, threads};
use crate::support::app::SLACK_TOKEN;
use crate::support::binary::{free_port, http, Child};
use crate::support::fake_slack::FakeSlack;

/// A responder that would act, were its targets allowed: `web-*` never is.
const RESPONDER: &str = r#"
name: guarded
description: Acts only on k2 containers.
target: "{{ alert.labels.container }}"
allow_targets: ['k2-test-.*']
steps:
  - id: note
    action: report
    text: "Would act on {{ target }}"
"#;

struct Server {
    _dir: tempfile::TempDir,
    url: String,
    base: String,
    server: Child,
    slack: FakeSlack,
}

impl Server {
    async fn start(post_unrouted: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let catalog = one_route(dir.path(), "Refused", "guarded", RESPONDER);
        let slack = FakeSlack::start(SLACK_TOKEN).await;
        let port = free_port();
        let mut cmd = serve_command(dir.path(), port, &catalog);
        cmd.env("SLACK_BOT_TOKEN", SLACK_TOKEN)
            .env("SLACK_API_URL", slack.api_url())
            .env("RESPONDER_SHUTDOWN_DRAIN", "0s")
            .env("RUST_LOG", "warn");
        if let Some(value) = post_unrouted {
            cmd.env("SLACK_POST_UNROUTED", value);
        }
        let mut server = Child::spawn(cmd, dir.path());
        server.wait_healthy(port).await;
        Self {
            url: database_url(dir.path()),
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
            server,
            slack,
        }
    }

    /// Posts `n` distinct firing alerts named `name` for `container`, 100 to a webhook.
    async fn storm(&self, name: &str, container: &str, n: usize, tag: u8) {
        let alerts: Vec<Value> = (0..n)
            .map(|i| {
                json!({
                    "status": "firing",
                    "labels": {"alertname": name, "container": container, "pod": format!("p-{i}")},
                    "annotations": {},
                    "startsAt": "2026-11-27T05:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "fingerprint": format!("{tag:02x}{i:014x}"),
                })
            })
            .collect();
        let client = http();
        for chunk in alerts.chunks(100) {
            let body = json!({
                "version": "4", "status": "firing", "receiver": "responder",
                "groupKey": "{}:{}", "alerts": chunk,
            });
            let status = client
                .post(format!("{}/webhook/alertmanager", self.base))
                .json(&body)
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 200);
        }
    }

    async fn count(&self, sql: &str) -> i64 {
        query_i64(&self.url, sql).await
    }

    /// Waits (bounded) until `journal` entries are recorded and the outbox holds nothing
    /// pending, so what Slack got is all it will get.
    async fn settle(&self, journal: i64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
        while tokio::time::Instant::now() < deadline {
            let recorded = self
                .count("SELECT COUNT(*) FROM journal WHERE processed = 1")
                .await;
            let pending = self
                .count("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
                .await;
            if recorded == journal && pending == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the storm did not settle: {}", self.server.output());
    }

    async fn stop(mut self) {
        let status = self.server.terminate().await;
        assert!(status.success(), "{}", self.server.output());
    }
}

#[tokio::test]
async fn a_thousand_unrouted_or_refused_alerts_of_one_name_and_target_are_one_thread_each() {
    // Posting unrouted alerts is asked for: the storm is then as loud as it can be.
    let server = Server::start(Some("true")).await;
    server.storm("Unrouted", "web-frontend", 1_000, 1).await;
    server.storm("Refused", "web-frontend", 1_000, 2).await;
    server.settle(2_000).await;

    assert_eq!(server.count("SELECT COUNT(*) FROM incidents").await, 2);
    assert_eq!(
        server.count("SELECT COUNT(*) FROM alerts").await,
        2_000,
        "every alert is recorded"
    );
    assert_eq!(
        server
            .count("SELECT COUNT(*) FROM decisions WHERE kind = 'folded'")
            .await,
        1_998
    );
    let messages = server.slack.messages();
    let threads = threads(&messages);
    assert_eq!(threads.len(), 2, "one thread per incident: {threads:?}");
    assert!(
        threads.values().all(|&n| n == 1),
        "a parent each and not one reply per alert: {messages:#?}"
    );
    // The counts are edited into the parents in place (the last edit may still be on its
    // way), in far fewer edits than alerts.
    let counted = |slack: &FakeSlack| {
        messages.iter().all(|parent| {
            slack
                .current_text(&parent.ts)
                .is_some_and(|text| text.contains("1000 firing alerts"))
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !counted(&server.slack) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let texts: Vec<_> = messages
        .iter()
        .map(|p| server.slack.current_text(&p.ts))
        .collect();
    assert!(counted(&server.slack), "the parents count them: {texts:#?}");
    let updates = server.slack.updates();
    assert!(updates.len() < 200, "{} edits", updates.len());
    server.stop().await;
}

#[tokio::test]
async fn by_default_unrouted_alerts_are_recorded_and_not_posted() {
    let server = Server::start(None).await;
    server.storm("Unrouted", "web-frontend", 200, 3).await;
    server.storm("Refused", "web-frontend", 1, 4).await;
    // The refused alert came last: once its thread is in Slack, every unrouted alert
    // before it was handled.
    assert!(
        server
            .slack
            .wait_for(|m| !m.is_empty(), Duration::from_secs(60))
            .await,
        "the refused alert's thread is posted"
    );
    server.settle(201).await;

    assert_eq!(server.count("SELECT COUNT(*) FROM incidents").await, 2);
    assert_eq!(
        server
            .count("SELECT COUNT(*) FROM outbox WHERE incident_id = (SELECT id FROM incidents WHERE alertname = 'Unrouted')")
            .await,
        0,
        "nothing queued for the unrouted incident"
    );
    let messages = server.slack.messages();
    assert_eq!(
        messages.len(),
        1,
        "only the refused alert's thread: {messages:#?}"
    );
    assert!(messages[0].text.contains("Refused"), "{messages:#?}");
    server.stop().await;
}

#[tokio::test]
async fn a_slack_outage_is_logged_once_not_once_per_attempt_per_message() {
    let server = Server::start(Some("true")).await;
    server.slack.set_down(true);
    // Twenty alert names: twenty incidents, twenty parents retried on their own schedules.
    for n in 0..20u8 {
        server
            .storm(&format!("Outage{n}"), "web-frontend", 1, 10 + n)
            .await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while server
        .count("SELECT COALESCE(SUM(attempts), 0) FROM outbox")
        .await
        < 60
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            server.server.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = server.server.output();
    assert_eq!(
        log.matches("Slack is not taking messages").count(),
        1,
        "one line for the outage: {log}"
    );
    assert_eq!(
        log.matches("Slack delivery failed").count(),
        0,
        "no line per attempt: {log}"
    );
    server.slack.set_down(false);
    server.settle(20).await;
    assert_eq!(server.slack.messages().len(), 20, "none lost");
    server.stop().await;
}
