//! `GET /metrics`: webhook, duplicate and store counts move as alerts arrive; runs, budget
//! refusals, step durations and Slack failures move on real Docker and the fake Slack; every
//! scrape passes `promtool check metrics` (Debian's `prometheus` package; missing is a failure).

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::app::{am_alert, Options, TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;

/// Every sample of a scrape, keyed by `name{labels}` exactly as rendered.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("`series value`");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

async fn scrape(app: &TestApp) -> String {
    // No token: /metrics is open like /healthz.
    let response = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    response.text().await.unwrap()
}

fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (apt-get install prometheus; scripts/test does)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn webhooks_duplicates_and_store_gauges_show_in_a_valid_scrape() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(
        dir.path(),
        None,
        Options {
            webhook_token: Some("metrics-test-token".into()),
            ..Default::default()
        },
    )
    .await;
    let before = samples(&scrape(&app).await);
    assert_eq!(before["alert_responder_incidents_open"], 0.0);
    assert_eq!(before["alert_responder_journal_pending"], 0.0);

    // `web-frontend` is outside the allow-list: an incident is opened, nothing is touched.
    let body = am_alert(
        "firing",
        "HighMemoryUsage",
        "web-frontend",
        "d000000000000001",
        "2026-11-27T05:00:00Z",
    );
    assert_eq!(app.post_alertmanager(&body).await.status(), 200);
    assert_eq!(app.post_alertmanager(&body).await.status(), 200);
    let malformed = app
        .client
        .post(format!("{}/webhook/alertmanager", app.address))
        .bearer_auth("metrics-test-token")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let unauthorized = app
        .client
        .post(format!("{}/webhook/alertmanager", app.address));
    assert_eq!(unauthorized.json(&body).send().await.unwrap().status(), 401);

    // The dispatcher processes the journal in the background: wait (bounded) for the incident.
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape(&app).await;
        let s = samples(&text);
        if s["alert_responder_incidents_open"] == 1.0 && s["alert_responder_journal_pending"] == 0.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = samples(&text);
    let expected = [
        (
            r#"alert_responder_webhooks_total{source="alertmanager",status="200"}"#,
            2.0,
        ),
        (
            r#"alert_responder_webhooks_total{source="alertmanager",status="400"}"#,
            1.0,
        ),
        (
            r#"alert_responder_webhooks_total{source="alertmanager",status="401"}"#,
            1.0,
        ),
        (
            r#"alert_responder_alerts_duplicate_total{source="alertmanager"}"#,
            1.0,
        ),
        ("alert_responder_incidents_open", 1.0),
        ("alert_responder_journal_pending", 0.0),
        ("alert_responder_journal_oldest_pending_age_seconds", 0.0),
        // Without Slack, messages are recorded as not to be delivered: nothing pending.
        ("alert_responder_outbox_pending", 0.0),
        ("alert_responder_approvals_pending", 0.0),
    ];
    for (series, value) in expected {
        assert_eq!(s.get(series), Some(&value), "{series} in\n{text}");
    }
    // Nothing ran: no run, budget or step series (a family without series is left out).
    assert!(
        !s.keys().any(|k| k.starts_with("alert_responder_runs_total")
            || k.starts_with("alert_responder_budget_refusals_total")
            || k.starts_with("alert_responder_step_duration_seconds"))
    );
    assert!(!text.contains("web-frontend"), "no alert text in metrics");
    assert!(!text.contains("metrics-test-token"));
    promtool_check(&text);
    app.stop().await;
}

/// Restarts its target with no memory check, so the default budget (one per 15 minutes)
/// refuses the second restart of the same container.
const BOUNCE: &str = r#"
name: bounce
target: "{{ alert.labels.container }}"
steps:
  - id: state
    action: docker_inspect
    container: "{{ target }}"
  - id: restart
    action: docker_restart
    container: "{{ target }}"
"#;

#[tokio::test]
async fn runs_budget_refusals_step_durations_and_slack_failures_are_counted() {
    let idle = TestContainer::idle("metrics");
    let dir = tempfile::tempdir().unwrap();
    let (routes, responders) = (dir.path().join("routes"), dir.path().join("responders"));
    std::fs::create_dir_all(&routes).unwrap();
    std::fs::create_dir_all(&responders).unwrap();
    std::fs::write(
        routes.join("r.yaml"),
        "routes:\n  - matchers: ['alertname=\"Bounce\"']\n    responder: bounce\n",
    )
    .unwrap();
    std::fs::write(responders.join("bounce.yaml"), BOUNCE).unwrap();
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    // The first Slack request is rate limited, the second fails with a 500; both are retried.
    slack.rate_limit_next(1, 0);
    slack.fail_next(1);
    let options = Options {
        catalog: Some((routes, responders)),
        ..Default::default()
    };
    let app = TestApp::spawn(dir.path(), Some(&slack), options).await;

    // The alert fires, then fires again (a new instance, same incident): restarted once,
    // then refused.
    for (starts_at, runs) in [("2026-11-27T05:00:00Z", 1), ("2026-11-27T05:05:00Z", 2)] {
        let body = am_alert(
            "firing",
            "Bounce",
            idle.name(),
            "e000000000000001",
            starts_at,
        );
        assert_eq!(app.post_alertmanager(&body).await.status(), 200);
        let mut finished = 0;
        for _ in 0..300 {
            let s = samples(&scrape(&app).await);
            finished = s
                .iter()
                .filter(|(k, _)| k.starts_with("alert_responder_runs_total{"))
                .map(|(_, v)| *v as usize)
                .sum();
            if finished >= runs {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            finished, runs,
            "runs finished after the alert of {starts_at}"
        );
    }
    assert!(
        slack
            .wait_for(|calls| calls.len() >= 4, Duration::from_secs(20))
            .await,
        "{:#?}",
        slack.calls()
    );

    let text = scrape(&app).await;
    let s = samples(&text);
    let expected = [
        (
            r#"alert_responder_runs_total{responder="bounce",outcome="succeeded"}"#,
            1.0,
        ),
        (
            r#"alert_responder_runs_total{responder="bounce",outcome="escalated"}"#,
            1.0,
        ),
        (
            r#"alert_responder_budget_refusals_total{responder="bounce"}"#,
            1.0,
        ),
        // The refused restart never started: one restart observed, two inspects.
        (
            r#"alert_responder_step_duration_seconds_count{kind="docker_restart"}"#,
            1.0,
        ),
        (
            r#"alert_responder_step_duration_seconds_count{kind="docker_inspect"}"#,
            2.0,
        ),
        (
            r#"alert_responder_step_duration_seconds_bucket{kind="docker_inspect",le="+Inf"}"#,
            2.0,
        ),
        (
            r#"alert_responder_outbox_delivery_failures_total{channel="slack",kind="rate_limited"}"#,
            1.0,
        ),
        (
            r#"alert_responder_outbox_delivery_failures_total{channel="slack",kind="unavailable"}"#,
            1.0,
        ),
        ("alert_responder_incidents_open", 1.0),
    ];
    for (series, value) in expected {
        assert_eq!(s.get(series), Some(&value), "{series} in\n{text}");
    }
    let restart_seconds = s[r#"alert_responder_step_duration_seconds_sum{kind="docker_restart"}"#];
    assert!(
        restart_seconds > 0.0 && restart_seconds < 120.0,
        "{restart_seconds}"
    );
    assert!(!text.contains(idle.name()), "targets stay out of metrics");
    promtool_check(&text);
    app.stop().await;
}
