//! Floods: after tens of thousands of alerts nobody acts on, a routed high-memory alert for a
//! real container is recorded and acted on before the backlog, which is still recorded in full
//! afterwards; so is one after a flood of the same priority for another target (targets take
//! turns); and beyond `RESPONDER_MAX_BACKLOG` webhooks are refused (503) until the backlog
//! is worked off, losing nothing that was accepted.

use serde_json::{json, Value};

use crate::support::app::{am_alert, Options, TestApp};
use crate::support::docker::TestContainer;

/// Flood alerts per webhook request, and requests.
const PER_REQUEST: usize = 200;
const REQUESTS: usize = 100;

/// One Alertmanager notification of `PER_REQUEST` distinct alerts no route matches.
fn flood_body(request: usize) -> Value {
    flood_of(request, PER_REQUEST)
}

/// One Alertmanager notification of `size` distinct alerts no route matches.
fn flood_of(request: usize, size: usize) -> Value {
    notification(
        request,
        size,
        |n| json!({"alertname": "FloodNobodyActsOn", "instance": format!("node-{}", n % 50), "n": n.to_string(), "severity": "critical"}),
    )
}

/// One Alertmanager notification of `size` distinct alerts labelled by `labels(n)`.
fn notification(request: usize, size: usize, labels: impl Fn(usize) -> Value) -> Value {
    let alerts: Vec<Value> = (0..size)
        .map(|i| {
            let n = request * 1_000_000 + i;
            json!({
                "status": "firing",
                "labels": labels(n),
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
    urgent_alert_goes_before_the_flood("prio-hog", "f00000000000b001", flood_body).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_target_does_not_delay_another_targets_alert_of_the_same_priority() {
    // A flood routed to high-memory, as critical as the urgent alert, for one container the
    // responder may not touch (each is declined, so the flood costs records, not runs).
    urgent_alert_goes_before_the_flood("turn-hog", "f00000000000b002", |request| {
        notification(request, PER_REQUEST, |n| {
            json!({"alertname": "HighMemoryUsage", "container": "outside-allowed", "n": n.to_string(), "severity": "critical"})
        })
    })
    .await;
}

/// Sends `REQUESTS` bodies of `flood(request)`, then a critical high-memory alert for a real
/// container at 96 %: its restart succeeds, every flood alert is recorded, and the urgent one
/// was recorded ahead of the backlog it arrived behind (at most the one batch the dispatcher
/// had already read, 256 entries, went before it).
async fn urgent_alert_goes_before_the_flood(
    hog_name: &str,
    fingerprint: &str,
    flood: impl Fn(usize) -> Value,
) {
    let hog = TestContainer::memory_hog(hog_name);
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(dir.path(), None, Options::default()).await;

    // The flood, four requests at a time: every alert acknowledged, so durable.
    let mut sent = 0;
    for wave in (0..REQUESTS).collect::<Vec<_>>().chunks(4) {
        let bodies: Vec<Value> = wave.iter().map(|r| flood(*r)).collect();
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
        fingerprint,
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
    drained(&app).await;
    let mut db = database(&app).await;
    assert_eq!(
        alert_rows(&mut db).await,
        i64::try_from(sent + 1).unwrap(),
        "every alert recorded"
    );
    let after_urgent: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM alerts WHERE id > (
             SELECT a.id FROM alerts a JOIN incidents i ON i.id = a.incident_id
             WHERE i.alertname = 'HighMemoryUsage' AND a.alert LIKE '%' || ? || '%')",
    )
    .bind(hog.name())
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

/// The app's database, over a connection of the test's own.
async fn database(app: &TestApp) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    sqlx::SqliteConnection::connect(&app.database_url)
        .await
        .unwrap()
}

/// Alerts recorded against incidents.
async fn alert_rows(db: &mut sqlx::SqliteConnection) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM alerts")
        .fetch_one(db)
        .await
        .unwrap()
}

/// Waits until the dispatcher has recorded every journal entry (120 s at most).
async fn drained(app: &TestApp) {
    for _ in 0..1_200 {
        if journal_pending(app).await == 0.0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the backlog was not worked off within 120 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_backlog_bound_webhooks_get_503_and_nothing_accepted_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        max_backlog: Some(1_000),
        ..Options::default()
    };
    let app = TestApp::spawn(dir.path(), None, options).await;
    // Under the bound when it arrives, so taken whole: 5,000 entries now wait.
    assert_eq!(
        app.post_alertmanager(&flood_of(0, 5_000)).await.status(),
        200
    );
    // Recording 4,000 of them takes far longer than sending the next request.
    let refused = app.post_alertmanager(&flood_of(1, 10)).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    let reason = body["error"].as_str().unwrap();
    assert!(reason.contains("RESPONDER_MAX_BACKLOG is 1000"), "{reason}");

    // Worked off, the bound lets webhooks in again (counted once a second).
    drained(&app).await;
    let mut status = 0;
    for _ in 0..50 {
        status = app
            .post_alertmanager(&flood_of(1, 10))
            .await
            .status()
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        status, 200,
        "still refused after the backlog was worked off"
    );
    drained(&app).await;
    let recorded = alert_rows(&mut database(&app).await).await;
    assert_eq!(
        recorded, 5_010,
        "every accepted alert recorded, the refused one only once retried"
    );
    app.stop().await;
}
