//! Priority under a flood: after tens of thousands of alerts nobody acts on, a routed
//! high-memory alert for a real container is recorded and acted on before the backlog, which
//! is still recorded in full afterwards.

use serde_json::{json, Value};

use crate::support::app::{am_alert, Options, TestApp};
use crate::support::docker::TestContainer;

/// Flood alerts per webhook request, and requests.
const PER_REQUEST: usize = 200;
const REQUESTS: usize = 100;

/// One Alertmanager notification of `PER_REQUEST` distinct alerts no route matches.
fn flood_body(request: usize) -> Value {
    let alerts: Vec<Value> = (0..PER_REQUEST)
        .map(|i| {
            let n = request * PER_REQUEST + i;
            json!({
                "status": "firing",
                "labels": {"alertname": "FloodNobodyActsOn", "instance": format!("node-{}", n % 50), "n": n.to_string(), "severity": "critical"},
                "annotations": {"summary": "noise"},
                "startsAt": "2026-11-27T05:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": format!("{n:016x}"),
            })
        })
        .collect();
    json!({
        "receiver": "responder", "status": "firing", "alerts": alerts,
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093", "version": "4",
        "groupKey": format!("{{}}:{{request=\"{request}\"}}"), "truncatedAlerts": 0,
    })
}

/// The `alert_responder_journal_pending` gauge.
async fn journal_pending(app: &TestApp) -> f64 {
    let text = reqwest::get(format!("{}/metrics", app.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("alert_responder_journal_pending "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no journal gauge in /metrics:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routed_alert_goes_before_a_backlog_of_alerts_nobody_acts_on() {
    let hog = TestContainer::memory_hog("prio-hog");
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(dir.path(), None, Options::default()).await;

    // The flood, four requests at a time: every alert acknowledged, so durable.
    let mut sent = 0;
    for wave in (0..REQUESTS).collect::<Vec<_>>().chunks(4) {
        let bodies: Vec<Value> = wave.iter().map(|r| flood_body(*r)).collect();
        let answers =
            futures::future::join_all(bodies.iter().map(|b| app.post_alertmanager(b))).await;
        for answer in answers {
            assert_eq!(answer.status(), 200);
            sent += PER_REQUEST;
        }
    }
    let urgent = am_alert(
        "firing",
        "HighMemoryUsage",
        hog.name(),
        "f00000000000b001",
        "2026-11-27T05:00:00Z",
    );
    assert_eq!(app.post_alertmanager(&urgent).await.status(), 200);
    let backlog = journal_pending(&app).await;
    assert!(
        backlog >= 2_000.0,
        "the flood left too small a backlog ({backlog}) for this test to say anything"
    );

    let detail = app.wait_for_finished_run(hog.name(), 1).await;
    assert_eq!(detail["runs"][0]["outcome"], "succeeded", "{detail:#}");

    // Every flood alert is recorded in the end.
    let mut pending = backlog;
    for _ in 0..1_200 {
        pending = journal_pending(&app).await;
        if pending == 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(pending, 0.0, "the backlog was not worked off within 120 s");

    use sqlx::Connection;
    let mut db = sqlx::SqliteConnection::connect(&app.database_url)
        .await
        .unwrap();
    let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alerts")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(
        recorded,
        i64::try_from(sent + 1).unwrap(),
        "every alert recorded"
    );
    // The urgent alert was recorded ahead of the backlog it arrived behind: at most the one
    // batch the dispatcher had already read (256 entries) went before it.
    let after_urgent: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM alerts WHERE id > (
             SELECT a.id FROM alerts a JOIN incidents i ON i.id = a.incident_id
             WHERE i.alertname = 'HighMemoryUsage')",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    eprintln!("backlog at the urgent ack: {backlog}; flood alerts recorded after it: {after_urgent} of {sent}");
    #[allow(clippy::cast_possible_truncation)]
    let must_follow = backlog as i64 - 300;
    assert!(
        after_urgent >= must_follow,
        "{after_urgent} flood alerts were recorded after the urgent one; {backlog} were waiting when it was acknowledged"
    );
    app.stop().await;
}

/// A measurement, not a test (it asserts nothing about time): how fast the service records a
/// flood of 20,000 distinct alerts no route matches, from the first request until the
/// journal is empty, beside how fast it acknowledged them. Run it with `--ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it on purpose, with --nocapture"]
async fn measure_how_fast_a_flood_of_unrouted_alerts_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(dir.path(), None, Options::default()).await;
    let started = std::time::Instant::now();
    for wave in (0..REQUESTS).collect::<Vec<_>>().chunks(4) {
        let bodies: Vec<Value> = wave.iter().map(|r| flood_body(*r)).collect();
        let answers =
            futures::future::join_all(bodies.iter().map(|b| app.post_alertmanager(b))).await;
        assert!(answers.iter().all(|a| a.status() == 200));
    }
    let acknowledged = started.elapsed();
    while journal_pending(&app).await > 0.0 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let recorded = started.elapsed();
    let sent = (PER_REQUEST * REQUESTS) as f64;
    eprintln!(
        "{sent} unrouted alerts: acknowledged in {:.2} s ({:.0}/s), all recorded after {:.2} s ({:.0}/s)",
        acknowledged.as_secs_f64(),
        sent / acknowledged.as_secs_f64(),
        recorded.as_secs_f64(),
        sent / recorded.as_secs_f64()
    );
    app.stop().await;
}
