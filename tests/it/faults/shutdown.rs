//! SIGTERM to the real binary: webhooks are refused with 503 (and `/readyz` says "shutting
//! down") for the drain period, a run that can finish in the grace period finishes and its
//! messages reach Slack, a run that cannot is recorded and reported as interrupted before
//! the exit, and the process exits 0 within a bounded time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::{database_url, one_route, query_i64, serve_command};
use crate::support::app::{am_alert, SLACK_TOKEN};
use crate::support::binary::{free_port, http, Child, SHUTDOWN};
use crate::support::fake_slack::FakeSlack;

const RESPONDER: &str = r#"
name: linger
description: Say hello, wait as long as the alert asks, say goodbye.
target: "{{ alert.labels.container }}"
allow_targets: ['k2-test-.*']
timeout: 5m
steps:
  - id: hello
    action: report
    text: "Hello {{ target }}"
  - id: short_wait
    when: "'short' in target"
    after: 3s
    action: report
    text: "Goodbye {{ target }}"
  - id: long_wait
    when: "'long' in target"
    after: 120s
    action: report
    text: "Goodbye {{ target }}"
"#;

fn serve(dir: &Path, port: u16, catalog: &(PathBuf, PathBuf), slack: &FakeSlack) -> Child {
    let mut cmd = serve_command(dir, port, catalog);
    cmd.env("RESPONDER_SHUTDOWN_DRAIN", "2s")
        .env("SLACK_BOT_TOKEN", SLACK_TOKEN)
        .env("SLACK_API_URL", slack.api_url());
    Child::spawn(cmd, dir)
}

fn alert(container: &str, fingerprint: &str) -> Value {
    am_alert(
        "firing",
        "Linger",
        container,
        fingerprint,
        "2026-11-27T05:00:00Z",
    )
}

/// Polls `sql` (bounded, 30 s) until it counts at least `n`.
async fn wait_count(url: &str, sql: &str, n: i64) {
    for _ in 0..300 {
        if query_i64(url, sql).await >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{sql} never reached {n}");
}

#[tokio::test]
async fn sigterm_refuses_webhooks_with_503_finishes_or_interrupts_runs_flushes_slack_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = one_route(dir.path(), "Linger", "linger", RESPONDER);
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let url = database_url(dir.path());
    let mut server = serve(dir.path(), port, &catalog, &slack);
    server.wait_healthy(port).await;
    let client = http();
    let post = |body: Value| {
        client
            .post(format!("{base}/webhook/alertmanager"))
            .json(&body)
            .send()
    };
    assert_eq!(
        post(alert("k2-test-short", "d100000000000001"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        post(alert("k2-test-long", "d100000000000002"))
            .await
            .unwrap()
            .status(),
        200
    );
    // Both runs are under way (their first step is done) before the signal.
    wait_count(
        &url,
        "SELECT COUNT(*) FROM steps WHERE step_id = 'hello'",
        2,
    )
    .await;

    server.send_sigterm();
    // The signal arrives asynchronously: a webhook sent in the instant before the process
    // handles it is still taken (durably, a 200 like any other). Once `/readyz` says the
    // service is shutting down, the drain has begun.
    let mut draining = false;
    for _ in 0..200 {
        match client.get(format!("{base}/readyz")).send().await {
            Ok(ready) if ready.status() == 503 => {
                draining = true;
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(_) => break,
        }
    }
    assert!(draining, "/readyz never said the service was shutting down");
    // During the drain: webhooks get 503 and a reason, /readyz says why; nothing is taken.
    let mut refused = 0;
    for n in 0..200 {
        match post(alert("k2-test-late", &format!("d2{n:014x}"))).await {
            Ok(response) => {
                assert_eq!(response.status(), 503, "nothing is taken after SIGTERM");
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"], "shutting down: retry later");
                refused += 1;
                // The listener may close between the two requests.
                let Ok(ready) = client.get(format!("{base}/readyz")).send().await else {
                    break;
                };
                assert_eq!(ready.status(), 503);
                let ready: Value = ready.json().await.unwrap();
                assert_eq!(ready["reason"], "shutting down");
            }
            Err(_) => break, // the listener closed after the drain
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused > 0, "webhooks were answered 503 during the drain");

    let status = server.wait_exit(SHUTDOWN).await.unwrap_or_else(|| {
        panic!(
            "still running {SHUTDOWN:?} after SIGTERM:\n{}",
            server.output()
        )
    });
    assert!(
        status.success(),
        "exit 0 after SIGTERM, got {status}:\n{}",
        server.output()
    );
    let count = |sql: &'static str| query_i64(&url, sql);
    assert_eq!(
        count("SELECT COUNT(*) FROM journal WHERE alert LIKE '%k2-test-late%'").await,
        0,
        "no refused alert was written"
    );
    // The short run finished, and its messages went out before the exit.
    assert_eq!(
        count("SELECT COUNT(*) FROM runs WHERE target = 'k2-test-short' AND state = 'finished' AND outcome = 'succeeded'").await,
        1
    );
    assert!(
        slack
            .messages()
            .iter()
            .any(|m| m.text.contains("Goodbye k2-test-short")),
        "{:#?}",
        slack.messages()
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM outbox o JOIN runs r ON r.incident_id = o.incident_id WHERE r.target = 'k2-test-short' AND o.state <> 'sent'").await,
        0,
        "the outbox was flushed"
    );
    // The long one could not finish: recorded as interrupted, never re-run, and the thread
    // was told before the exit.
    assert_eq!(
        count("SELECT COUNT(*) FROM runs WHERE target = 'k2-test-long' AND state = 'interrupted'")
            .await,
        1
    );
    assert!(
        slack.messages().iter().any(|m| m
            .text
            .contains("interrupted by a shutdown of the responder")),
        "{:#?}",
        slack.messages()
    );
}
