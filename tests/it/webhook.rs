//! The webhook contract: auth, status codes, durability before ack, duplicates.

use std::time::Duration;

use serde_json::Value;

use crate::support::app::{am_alert, Options, TestApp};
use crate::support::fake_slack::FakeSlack;

const TOKEN: &str = "am-webhook-token-7c1e";

fn outside_allow_list(fingerprint: &str) -> Value {
    // `web-frontend` is outside the shipped responder's allow-list: recorded, never touched.
    am_alert(
        "firing",
        "HighMemoryUsage",
        "web-frontend",
        fingerprint,
        "2026-11-27T05:00:00Z",
    )
}

#[tokio::test]
async fn webhooks_need_the_bearer_token_when_one_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(
        dir.path(),
        None,
        Options {
            webhook_token: Some(TOKEN.into()),
            ..Default::default()
        },
    )
    .await;
    let url = format!("{}/webhook/alertmanager", app.address);
    let body = outside_allow_list("b000000000000001");
    for auth in [
        None,
        Some("Bearer wrong"),
        Some(&*format!("Bearer {TOKEN}x")),
        Some(TOKEN),
    ] {
        let mut request = app.client.post(&url).json(&body);
        if let Some(value) = auth {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "auth {auth:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    let unauthenticated_api = app
        .client
        .get(format!("{}/api/incidents", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        unauthenticated_api.status(),
        401,
        "the incident API is behind the token too"
    );
    assert!(app.incidents().await.is_empty(), "nothing was accepted");
    assert_eq!(app.post_alertmanager(&body).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn bad_bodies_get_400_with_one_line_reasons_and_oversized_ones_413() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(
        dir.path(),
        None,
        Options {
            body_limit: Some(4096),
            ..Default::default()
        },
    )
    .await;
    let url = format!("{}/webhook/alertmanager", app.address);
    let cases: &[(&str, u16, &str)] = &[
        ("{not json", 400, "not an Alertmanager v4 payload"),
        (
            r#"{"version":"3","alerts":[]}"#,
            400,
            "unsupported Alertmanager payload version",
        ),
        (
            r#"{"version":"4","alerts":[{"status":"firing"}]}"#,
            400,
            "missing field",
        ),
    ];
    for (body, status, reason) in cases {
        let response = app
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(*body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), *status, "{body}");
        let json: Value = response.json().await.unwrap();
        let error = json["error"].as_str().unwrap();
        assert!(error.contains(reason) && !error.contains('\n'), "{error}");
    }
    let big = "x".repeat(10_000);
    let response = app.client.post(&url).body(big).send().await.unwrap();
    assert_eq!(response.status(), 413);
    let json: Value = response.json().await.unwrap();
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("RESPONDER_BODY_LIMIT"),
        "{json}"
    );
    assert!(app.incidents().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn the_alert_is_in_the_store_before_the_ack_and_duplicates_are_acked_as_noops() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(dir.path(), None, Options::default()).await;
    let body = outside_allow_list("b000000000000002");
    let first: Value = app.post_alertmanager(&body).await.json().await.unwrap();
    assert_eq!(first["new"], 1);
    // Durable at ack time: the journal already holds it, whatever the dispatcher has done.
    let journal = sqlx_count(&app.database_url, "SELECT COUNT(*) FROM journal").await;
    assert_eq!(journal, 1);
    // Two HA peers and a retry deliver the same notification again, some at the same time.
    let (a, b) = tokio::join!(app.post_alertmanager(&body), app.post_alertmanager(&body));
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let again: Value = app.post_alertmanager(&body).await.json().await.unwrap();
    assert_eq!(
        (again["new"].clone(), again["duplicates"].clone()),
        (0.into(), 1.into())
    );
    assert_eq!(
        sqlx_count(&app.database_url, "SELECT COUNT(*) FROM journal").await,
        1
    );
    // The refused target is recorded as a decision on one incident.
    let detail = wait_for_decision(&app, "target_refused").await;
    assert_eq!(app.incidents().await.len(), 1);
    assert!(detail["decisions"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("outside high-memory's allow-list"));
    assert!(
        detail["runs"].as_array().unwrap().is_empty(),
        "never touched"
    );
    // Duplicates survive a restart of the service too.
    let app = app.restart(None).await;
    let after_restart: Value = app.post_alertmanager(&body).await.json().await.unwrap();
    assert_eq!(after_restart["duplicates"], 1);
    assert_eq!(app.incidents().await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_store_that_cannot_take_the_alert_answers_503_so_alertmanager_retries() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(dir.path(), None, Options::default()).await;
    let body = outside_allow_list("b000000000000003");
    // Another process holds the database's write lock longer than the store waits for it.
    let path = app.database_url.trim_start_matches("sqlite://").to_owned();
    let mut locker = std::process::Command::new("sqlite3")
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sqlite3 CLI is installed (Debian package sqlite3)");
    {
        use std::io::{BufRead, Write};
        let stdin = locker.stdin.as_mut().unwrap();
        writeln!(stdin, "BEGIN EXCLUSIVE; INSERT INTO decisions (kind, detail, at) VALUES ('lock', 'held by test', 'now'); SELECT 'locked';").unwrap();
        stdin.flush().unwrap();
        // sqlite3 answers only once it holds the lock: a fixed sleep was not always enough
        // on a loaded machine, and the webhook then went through with a 200.
        let mut line = String::new();
        std::io::BufReader::new(locker.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked", "sqlite3 took the lock");
    }
    let response = app.post_alertmanager(&body).await;
    assert_eq!(response.status(), 503);
    let json: Value = response.json().await.unwrap();
    assert_eq!(
        json["error"], "store unavailable: the database is locked",
        "a reason, but no internals in a 5xx body"
    );
    drop(locker.stdin.take()); // EOF: sqlite3 exits and the lock is released
    let _ = locker.wait();
    // Alertmanager's retry now succeeds, and the alert is not lost.
    let response = app.post_alertmanager(&body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        sqlx_count(&app.database_url, "SELECT COUNT(*) FROM journal").await,
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn health_readiness_and_unknown_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start(crate::support::app::SLACK_TOKEN).await;
    let app = TestApp::spawn(dir.path(), Some(&slack), Options::default()).await;
    for path in ["/healthz", "/readyz"] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let response = app
        .client
        .get(format!("{}/api/incidents/999", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn an_alert_without_route_or_target_is_recorded_not_acted_on_and_only_the_routed_one_posted()
{
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start(crate::support::app::SLACK_TOKEN).await;
    let app = TestApp::spawn(dir.path(), Some(&slack), Options::default()).await;
    let unrouted = am_alert(
        "firing",
        "SomethingElse",
        "k2-x",
        "b000000000000004",
        "2026-11-27T05:00:00Z",
    );
    assert_eq!(app.post_alertmanager(&unrouted).await.status(), 200);
    let mut no_container = am_alert(
        "firing",
        "HighMemoryUsage",
        "k2-x",
        "b000000000000005",
        "2026-11-27T05:00:00Z",
    );
    no_container["alerts"][0]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("container");
    assert_eq!(app.post_alertmanager(&no_container).await.status(), 200);
    wait_for_decision(&app, "no_route").await;
    wait_for_decision(&app, "target_unresolved").await;
    // The routed one says why in its thread; the unrouted one is recorded only
    // (`SLACK_POST_UNROUTED` is off by default), and it came first, so it would be in by now.
    assert!(
        slack
            .wait_for(
                |m| m
                    .iter()
                    .any(|c| c.text.contains("Not acted on") && c.text.contains("HighMemoryUsage")),
                Duration::from_secs(10)
            )
            .await
    );
    let calls = slack.calls();
    assert!(
        !calls.iter().any(|c| c.text.contains("SomethingElse")),
        "{calls:#?}"
    );
    app.stop().await;
}

async fn wait_for_decision(app: &TestApp, kind: &str) -> Value {
    for _ in 0..200 {
        for incident in app.incidents().await {
            let detail = app
                .get_json(&format!("/api/incidents/{}", incident["id"]))
                .await;
            if detail["decisions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["kind"] == kind)
            {
                return detail;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {kind} decision recorded");
}

/// Counts rows with an independent connection (the test's own view of the file).
async fn sqlx_count(database_url: &str, sql: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(database_url).await.unwrap();
    sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
}
