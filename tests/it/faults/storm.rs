//! Alert storms against the real binary: 10,000 distinct alerts for one container (each
//! delivered twice, as an HA pair would), and 1,000 containers alerting at once, twice. Exactly
//! the budgeted restarts happen, Slack gets a bounded number of messages, the process's peak
//! memory stays bounded, and every alert is accounted for in the store.
//!
//! Of the 1,000 containers, five are real; the other 995 are names that only a `report`
//! step sees (the responder skips the restart for them), so the run, budget and message
//! machinery is exercised for all 1,000 without starting 1,000 containers.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{database_url, one_route, query_i64, serve_command, threads};
use crate::support::app::SLACK_TOKEN;
use crate::support::binary::{free_port, http, Child};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;

const RESPONDER: &str = r#"
name: storm
description: Note the alert; restart real containers within budget.
target: "{{ alert.labels.container }}"
allow_targets: ['k2-test-.*']
budget: { cooldown: 15m, max: 1, per: 1h }
timeout: 1m
steps:
  - id: note
    action: report
    text: "Storm on {{ target }}"
  - id: restart
    when: "'storm-fake' not in target"
    action: docker_restart
    container: "{{ target }}"
    stop_timeout: 5s
    timeout: 30s
"#;

/// Peak resident memory the server may reach in a storm.
const MAX_RSS_KIB: u64 = 256 * 1024;

struct Storm {
    _dir: tempfile::TempDir,
    url: String,
    base: String,
    server: Child,
    slack: FakeSlack,
}

impl Storm {
    async fn start() -> Self {
        // fsync is free on tmpfs: the test measures the storm handling, not this disk.
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let catalog: (PathBuf, PathBuf) = one_route(dir.path(), "StormAlert", "storm", RESPONDER);
        let slack = FakeSlack::start(SLACK_TOKEN).await;
        let port = free_port();
        let mut cmd = serve_command(dir.path(), port, &catalog);
        cmd.env("SLACK_BOT_TOKEN", SLACK_TOKEN)
            .env("SLACK_API_URL", slack.api_url())
            .env("RESPONDER_SHUTDOWN_DRAIN", "0s")
            .env("RESPONDER_ACTIONS_PER_MINUTE", "1000")
            .env("RUST_LOG", "warn");
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

    /// Posts webhooks of `batch` alerts each, `copies` times each (HA peers), 16 at a time;
    /// every one must be answered 200. Returns how long it took.
    async fn post(&self, alerts: Vec<Value>, batch: usize, copies: usize) -> Duration {
        let started = Instant::now();
        let client = http();
        let mut bodies: Vec<Value> = alerts.chunks(batch).map(webhook).collect();
        bodies = bodies
            .into_iter()
            .flat_map(|b| std::iter::repeat_n(b, copies))
            .collect();
        let mut sending = tokio::task::JoinSet::new();
        for chunk in bodies.chunks(bodies.len().div_ceil(16)) {
            let (chunk, client) = (chunk.to_vec(), client.clone());
            let url = format!("{}/webhook/alertmanager", self.base);
            sending.spawn(async move {
                for body in chunk {
                    let status = client.post(&url).json(&body).send().await.unwrap().status();
                    assert_eq!(status, 200);
                }
            });
        }
        while let Some(done) = sending.join_next().await {
            done.unwrap();
        }
        started.elapsed()
    }

    async fn count(&self, sql: &str) -> i64 {
        query_i64(&self.url, sql).await
    }

    /// Waits (bounded, 180 s) until the journal is drained, no run is open and Slack has
    /// every message the outbox holds.
    async fn settle(&self, journal: i64) {
        for _ in 0..1_800 {
            if self
                .count("SELECT COUNT(*) FROM journal WHERE processed = 1")
                .await
                == journal
                && self
                    .count("SELECT COUNT(*) FROM runs WHERE state IN ('pending', 'running')")
                    .await
                    == 0
                && self
                    .count("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
                    .await
                    == 0
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the storm did not settle within 180 s");
    }

    async fn stop(mut self) -> u64 {
        let peak = self.server.peak_rss_kib();
        let status = self.server.terminate().await;
        assert!(status.success(), "{}", self.server.output());
        peak
    }
}

fn alert(container: &str, fingerprint: &str, starts_at: &str, instance: usize) -> Value {
    json!({
        "status": "firing",
        "labels": {"alertname": "StormAlert", "container": container, "instance": format!("i-{instance}")},
        "annotations": {"summary": "storm"},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": fingerprint,
    })
}

fn webhook(alerts: &[Value]) -> Value {
    json!({
        "version": "4", "status": "firing", "receiver": "responder", "groupKey": "{}:{}",
        "alerts": alerts,
    })
}

#[tokio::test]
async fn ten_thousand_alerts_for_one_container_fold_into_one_incident_and_one_restart() {
    let real = TestContainer::idle("storm-one");
    let storm = Storm::start().await;
    let alerts: Vec<Value> = (0..10_000)
        .map(|n| {
            alert(
                real.name(),
                &format!("5{n:015x}"),
                "2026-11-27T05:00:00Z",
                n,
            )
        })
        .collect();
    let took = storm.post(alerts, 100, 2).await;
    storm.settle(10_000).await;

    assert_eq!(
        storm.count("SELECT COUNT(*) FROM journal").await,
        10_000,
        "duplicates are no-ops"
    );
    assert_eq!(
        storm.count("SELECT COUNT(*) FROM alerts").await,
        10_000,
        "each alert recorded"
    );
    assert_eq!(storm.count("SELECT COUNT(*) FROM incidents").await, 1);
    assert_eq!(
        storm
            .count("SELECT COUNT(*) FROM decisions WHERE kind = 'folded'")
            .await,
        9_999
    );
    assert_eq!(storm.count("SELECT COUNT(*) FROM runs").await, 1);
    assert_eq!(
        storm
            .count("SELECT COUNT(*) FROM steps WHERE step_id = 'restart' AND state = 'succeeded'")
            .await,
        1
    );
    assert_eq!(real.starts(), 2, "restarted exactly once");
    let messages = storm.slack.messages();
    let updates = storm.slack.updates().len();
    assert!(messages.len() <= 5, "a handful of messages: {messages:#?}");
    let peak = storm.stop().await;
    assert!(peak < MAX_RSS_KIB, "peak RSS {peak} KiB");
    eprintln!(
        "storm-one: 10,000 alerts (20,000 deliveries) posted in {took:?}; {} Slack messages, \
         {} updates; peak RSS {} MiB",
        messages.len(),
        updates,
        peak / 1024
    );
}

#[tokio::test]
async fn a_thousand_containers_alerting_at_once_twice_restart_each_real_one_exactly_once() {
    let real: Vec<TestContainer> = (0..5).map(|_| TestContainer::idle("storm-many")).collect();
    let storm = Storm::start().await;
    let names: Vec<String> = real
        .iter()
        .map(|c| c.name().to_owned())
        .chain((5..1_000).map(|n| format!("k2-test-storm-fake-{n}")))
        .collect();
    // All fire, then all fire again (new startsAt: a new instance of each alert, same incident).
    let mut took = Vec::new();
    for (round, starts_at) in ["2026-11-27T05:00:00Z", "2026-11-27T05:05:00Z"]
        .iter()
        .enumerate()
    {
        let alerts: Vec<Value> = names
            .iter()
            .enumerate()
            .map(|(n, name)| alert(name, &format!("6{n:015x}"), starts_at, n))
            .collect();
        took.push(storm.post(alerts, 100, 1).await);
        storm.settle(1_000 * (round as i64 + 1)).await;
    }

    assert_eq!(storm.count("SELECT COUNT(*) FROM journal").await, 2_000);
    assert_eq!(storm.count("SELECT COUNT(*) FROM alerts").await, 2_000);
    assert_eq!(storm.count("SELECT COUNT(*) FROM incidents").await, 1_000);
    assert_eq!(storm.count("SELECT COUNT(*) FROM runs").await, 2_000);
    assert_eq!(
        storm
            .count("SELECT COUNT(*) FROM steps WHERE step_id = 'restart' AND state = 'succeeded'")
            .await,
        5,
        "one restart per real container"
    );
    assert_eq!(
        storm
            .count("SELECT COUNT(*) FROM decisions WHERE kind = 'budget_exhausted'")
            .await,
        5,
        "the second round's restarts were refused by the budget"
    );
    for container in &real {
        assert_eq!(
            container.starts(),
            2,
            "{} restarted exactly once",
            container.name()
        );
    }
    let messages = storm.slack.messages();
    let updates = storm.slack.updates().len();
    let per_thread = threads(&messages);
    assert_eq!(per_thread.len(), 1_000, "one thread per container");
    let longest = per_thread.values().max().copied().unwrap_or(0);
    assert!(
        longest <= 8,
        "at most 8 messages in a thread, saw {longest}"
    );
    let peak = storm.stop().await;
    assert!(peak < MAX_RSS_KIB, "peak RSS {peak} KiB");
    eprintln!(
        "storm-many: 1,000 containers x 2 rounds posted in {took:?}; {} Slack messages \
         ({longest} in the longest thread), {} updates; peak RSS {} MiB",
        messages.len(),
        updates,
        peak / 1024
    );
}
