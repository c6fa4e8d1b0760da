//! The shipped dlq-rate and checkpoint-disk playbooks end to end on real containers: a
//! Spark master with a scripted spark-sql, a Schema Registry stand-in, real checkpoint files
//! with old mtimes, a stopped cleaner.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::support::app::{am_alert, step_states, Options, TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;

const ADMIN: &str = "admin-token-runbook";

/// A Schema Registry answering `/subjects/{subject}/versions` with the versions given.
async fn registry(versions: Arc<Mutex<Vec<i64>>>) -> String {
    async fn list(
        State(v): State<Arc<Mutex<Vec<i64>>>>,
        Path(subject): Path<String>,
    ) -> Json<Value> {
        assert_eq!(subject, "market.crypto.trades.binance.raw-value");
        Json(json!(*v.lock().unwrap()))
    }
    let app = Router::new()
        .route("/subjects/{subject}/versions", get(list))
        .with_state(versions);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

fn sh(container: &TestContainer, script: &str) -> String {
    container.exec(&["sh", "-c", script])
}

fn step_summary(detail: &Value, step: &str) -> String {
    detail["runs"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step_id"] == step)
        .map(|s| s["summary"].as_str().unwrap_or("").to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn dlq_rate_reports_top_errors_and_schema_changes_and_refuses_injected_labels() {
    let master = TestContainer::idle("dlq-master");
    // spark-sql as the Spark image has it: logs on stderr, TSV rows on stdout.
    sh(&master, "mkdir -p /opt/spark/bin && cat > /opt/spark/bin/spark-sql <<'EOF'\n#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done >> /tmp/argv.log\necho '---' >> /tmp/argv.log\necho 'WARN NativeCodeLoader: Unable to load native-hadoop library' >&2\nprintf '42\\tmissing field price\\n7\\tinvalid timestamp\\n'\necho 'Time taken: 3.2 seconds, Fetched 2 row(s)'\nEOF\nchmod +x /opt/spark/bin/spark-sql");
    let versions = Arc::new(Mutex::new(vec![1, 2, 3]));
    let registry_url = registry(versions.clone()).await;
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        config: vec![
            ("spark_master_container", master.name().to_owned()),
            ("schema_registry_url", registry_url),
        ],
        ..Default::default()
    };
    let app = TestApp::spawn(dir.path(), Some(&slack), options).await;
    let dlq = |status: &str, source: &str, fp: &str, starts: &str| {
        let mut alert = am_alert(status, "DlqRateHigh", "", fp, starts);
        let labels = alert["alerts"][0]["labels"].as_object_mut().unwrap();
        labels.remove("container");
        labels.insert("source".into(), source.into());
        alert
    };

    app.post_alertmanager(&dlq(
        "firing",
        "binance",
        "d100000000000001",
        "2026-11-27T05:00:00Z",
    ))
    .await;
    let first = app.wait_for_newest_finished("binance", 1).await;
    let states: Vec<_> = step_states(&first, 0)
        .into_iter()
        .map(|(id, s)| format!("{id}={s}"))
        .collect();
    assert_eq!(
        states,
        [
            "errors=succeeded",
            "schema=succeeded",
            "schema_change=succeeded",
            "top_errors=succeeded"
        ],
        "{first:#}"
    );
    assert_eq!(first["runs"][0]["steps"][0]["outputs"]["row_count"], 2);
    assert!(
        step_summary(&first, "top_errors").contains("missing field price"),
        "{first:#}"
    );
    assert!(
        step_summary(&first, "schema_change").contains("No earlier run"),
        "{first:#}"
    );
    let argv = sh(&master, "cat /tmp/argv.log");
    assert!(
        argv.contains("AND bronze_source = 'binance'"),
        "the label entered the query as data: {argv}"
    );

    // It resolves; the schema moves on; it fires again: the new version is called out.
    app.post_alertmanager(&dlq(
        "resolved",
        "binance",
        "d100000000000001",
        "2026-11-27T05:00:00Z",
    ))
    .await;
    versions.lock().unwrap().push(4);
    app.post_alertmanager(&dlq(
        "firing",
        "binance",
        "d100000000000001",
        "2026-11-27T05:30:00Z",
    ))
    .await;
    let second = app.wait_for_newest_finished("binance", 2).await;
    let change = step_summary(&second, "schema_change");
    assert!(
        change.contains("Schema CHANGED") && change.contains("v3 → v4"),
        "{change}"
    );

    // A label built to inject never reaches the SQL: refused before any step.
    let before = sh(&master, "grep -c -- --- /tmp/argv.log");
    app.post_alertmanager(&dlq(
        "firing",
        "binance'; DROP TABLE t; --",
        "d100000000000002",
        "2026-11-27T05:40:00Z",
    ))
    .await;
    let mut refused = Value::Null;
    for _ in 0..100 {
        if let Some(i) = app
            .incidents()
            .await
            .into_iter()
            .find(|i| i["fingerprint"] == "d100000000000002")
        {
            refused = app.get_json(&format!("/api/incidents/{}", i["id"])).await;
            if !refused["decisions"].as_array().unwrap().is_empty() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        refused["decisions"][0]["kind"], "label_refused",
        "{refused:#}"
    );
    assert!(refused["runs"].as_array().unwrap().is_empty());
    // Recorded with no run, and nothing recorded since adds one: spark-sql had no way to run.
    app.barrier().await;
    let again = app
        .get_json(&format!("/api/incidents/{}", refused["incident"]["id"]))
        .await;
    assert!(again["runs"].as_array().unwrap().is_empty(), "{again:#}");
    assert_eq!(
        sh(&master, "grep -c -- --- /tmp/argv.log"),
        before,
        "spark-sql never ran for it"
    );
    app.stop().await;
}

#[tokio::test]
async fn checkpoint_disk_starts_the_cleaner_and_deletes_exactly_the_old_metadata_after_approval() {
    let master = TestContainer::idle("ckpt-master");
    sh(
        &master,
        "mkdir -p /checkpoints/bronze /checkpoints/silver \
        && dd if=/dev/zero of=/checkpoints/bronze/state bs=1k count=512 2>/dev/null \
        && dd if=/dev/zero of=/checkpoints/bronze/metadata bs=1k count=64 2>/dev/null \
        && dd if=/dev/zero of=/checkpoints/silver/metadata bs=1k count=32 2>/dev/null \
        && touch -t 202001010000 /checkpoints/bronze/metadata /checkpoints/silver/metadata \
        && mkdir -p /checkpoints/gold && echo fresh > /checkpoints/gold/metadata",
    );
    let cleaner = TestContainer::idle("ckpt-cleaner");
    cleaner.stop();
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        admin_token: Some(ADMIN.into()),
        config: vec![("cleaner_container", cleaner.name().to_owned())],
        ..Default::default()
    };
    let app = TestApp::spawn(dir.path(), Some(&slack), options).await;
    app.post_alertmanager(&am_alert(
        "firing",
        "CheckpointDiskFull",
        master.name(),
        "d200000000000001",
        "2026-11-27T05:00:00Z",
    ))
    .await;

    let asked = slack
        .wait_for(
            |m| {
                m.iter()
                    .any(|c| c.text.contains("Approval needed for *cleanup*"))
            },
            Duration::from_secs(30),
        )
        .await;
    assert!(asked, "{:#?}", slack.messages());
    assert!(cleaner.is_running(), "the stopped cleaner was started");
    let listed = sh(&master, "find /checkpoints -name metadata | sort");
    assert_eq!(
        listed.lines().count(),
        3,
        "nothing deleted before approval: {listed}"
    );

    let incident = app.incidents().await[0]["id"].as_i64().unwrap();
    let approved = app
        .client
        .post(format!(
            "{}/api/incidents/{incident}/approvals",
            app.address
        ))
        .bearer_auth(ADMIN)
        .json(&json!({"decision": "approve", "by": "oncall"}))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 200);
    let detail = app.wait_for_finished_run(master.name(), 1).await;
    let states: Vec<_> = step_states(&detail, 0)
        .into_iter()
        .map(|(id, s)| format!("{id}={s}"))
        .collect();
    assert_eq!(
        states,
        [
            "usage=succeeded",
            "cleaner=succeeded",
            "start_cleaner=succeeded",
            "cleaner_logs=succeeded",
            "old_metadata=succeeded",
            "cleanup=succeeded",
            "usage_after=succeeded",
            "freed=succeeded"
        ],
        "{detail:#}"
    );
    assert_eq!(
        sh(&master, "find /checkpoints -name metadata").trim(),
        "/checkpoints/gold/metadata",
        "exactly the old files went"
    );
    assert!(
        sh(&master, "ls /checkpoints/bronze").contains("state"),
        "other files stay"
    );
    let freed = step_summary(&detail, "freed");
    assert!(freed.contains("Deleted 2 metadata files"), "{freed}");
    app.stop().await;
}
