//! Grafana annotations, against a protocol-faithful fake Grafana and real Docker: one run is
//! one annotation region with the right tags and links, delivered through the outbox despite
//! 429, 500 and Grafana being unreachable, never doubled; a refusal is recorded without the token.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::app::{am_alert, catalog_dir, Options, TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_grafana::{FakeGrafana, Fault, GF_DASHBOARD};
use crate::support::fake_slack::{FakeSlack, INCIDENTS_ID};

/// A restart of the alert's container, nothing else.
fn bounce_catalog(dir: &Path) -> (PathBuf, PathBuf) {
    catalog_dir(
        dir,
        "routes:\n  - matchers: ['alertname=\"Bounce\"']\n    responder: bounce\n",
        &[(
            "bounce",
            r#"
name: bounce
target: "{{ alert.labels.container }}"
allow_targets: ['k2-.*']
steps:
  - id: restart
    action: docker_restart
    container: "{{ target }}"
"#,
        )],
    )
}

fn options(dir: &Path, grafana_url: String) -> Options {
    Options {
        grafana: Some(grafana_url),
        public_url: Some("https://responder.example".into()),
        ..Options::with_catalog(bounce_catalog(dir))
    }
}

async fn fire(app: &TestApp, container: &str, fingerprint: &str) {
    let alert = am_alert(
        "firing",
        "Bounce",
        container,
        fingerprint,
        "2026-11-27T05:00:00Z",
    );
    assert_eq!(app.post_alertmanager(&alert).await.status(), 200);
}

/// The Grafana rows of the outbox as (kind, state, last error, attempts), once none is
/// pending (bounded), in order.
async fn settled_rows(app: &TestApp) -> Vec<(String, String, String, i64)> {
    use sqlx::Connection;
    let mut rows = Vec::new();
    for _ in 0..600 {
        let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
            .await
            .unwrap();
        rows = sqlx::query_as(
            "SELECT kind, state, COALESCE(last_error, ''), attempts FROM outbox
             WHERE destination = 'grafana' ORDER BY id",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        if rows.len() == 2 && rows.iter().all(|(_, state, _, _)| state != "pending") {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the annotation deliveries never settled: {rows:#?}");
}

fn is_region(annotation: &Value) -> bool {
    annotation.get("timeEnd").is_some()
}

#[tokio::test]
async fn one_run_is_one_annotation_region_with_its_tags_and_links_despite_429_and_500() {
    let idle = TestContainer::idle("gf-region");
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let grafana = FakeGrafana::start().await;
    // The creation meets a 429 (Retry-After: 1) and two 500s before Grafana takes it.
    grafana.script(&[
        Fault::RateLimited(Some(1)),
        Fault::ServerError,
        Fault::ServerError,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(dir.path(), Some(&slack), options(dir.path(), grafana.url())).await;
    fire(&app, idle.name(), "9fa0000000000001").await;

    let detail = app.wait_for_finished_run(idle.name(), 1).await;
    assert_eq!(detail["runs"][0]["outcome"], "succeeded", "{detail:#}");
    let incident = detail["incident"]["id"].as_i64().unwrap();
    let rows = settled_rows(&app).await;
    let states: Vec<_> = rows.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
    assert_eq!(states, [("create", "sent"), ("complete", "sent")]);
    assert_eq!(rows[0].3, 4, "three failed attempts, then the one taken");

    let annotations = grafana.annotations();
    assert_eq!(
        annotations.len(),
        1,
        "one run, one annotation: {annotations:#?}"
    );
    let region = &annotations[0];
    assert!(is_region(region), "{region:#}");
    let (start, end) = (
        region["time"].as_i64().unwrap(),
        region["timeEnd"].as_i64().unwrap(),
    );
    assert!(start <= end, "{region:#}");
    assert_eq!(region["dashboardUID"], GF_DASHBOARD);
    assert_eq!(
        region["tags"],
        json!(["alert-responder", "bounce", idle.name(), "succeeded"])
    );
    let text = region["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("bounce on {} (live) succeeded: ", idle.name())),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "<a href=\"https://responder.example/incidents/{incident}\">Incident {incident}</a>"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("https://slack.com/archives/{INCIDENTS_ID}/p")),
        "the completion links the Slack thread: {text}"
    );
    // Five requests: three faults, the creation, the completion. None more later.
    assert_eq!(grafana.requests_seen(), 5);
    app.stop().await;
}

#[tokio::test]
async fn a_grafana_unreachable_for_the_whole_run_gets_the_region_once_it_is_back() {
    let idle = TestContainer::idle("gf-down");
    // A port nothing listens on until the fake starts there.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(
        dir.path(),
        None,
        options(dir.path(), format!("http://{addr}")),
    )
    .await;
    fire(&app, idle.name(), "9fa0000000000002").await;
    let detail = app.wait_for_finished_run(idle.name(), 1).await;
    assert_eq!(detail["runs"][0]["outcome"], "succeeded", "{detail:#}");

    let grafana = FakeGrafana::start_on(addr).await;
    let arrived = grafana
        .wait_for(|a| a.iter().any(is_region), Duration::from_secs(60))
        .await;
    assert!(arrived, "{:#?}", grafana.annotations());
    let rows = settled_rows(&app).await;
    assert!(rows.iter().all(|r| r.1 == "sent"), "{rows:#?}");
    assert!(
        rows[0].3 > 1,
        "the creation was tried while Grafana was down: {rows:#?}"
    );
    let annotations = grafana.annotations();
    assert_eq!(annotations.len(), 1, "{annotations:#?}");
    assert_eq!(annotations[0]["tags"][3], "succeeded");
    app.stop().await;
}

#[tokio::test]
async fn a_refused_token_is_recorded_without_the_token_and_not_retried() {
    const WRONG: &str = "glsa_revokedToken_neverShown";
    let idle = TestContainer::idle("gf-refused");
    let grafana = FakeGrafana::start().await;
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        grafana_token: Some(WRONG.into()),
        ..options(dir.path(), grafana.url())
    };
    let app = TestApp::spawn(dir.path(), None, options).await;
    fire(&app, idle.name(), "9fa0000000000003").await;
    app.wait_for_finished_run(idle.name(), 1).await;

    let rows = settled_rows(&app).await;
    for (kind, state, error, attempts) in &rows {
        assert_eq!(
            (state.as_str(), *attempts),
            ("failed", 1),
            "{kind}: {error}"
        );
        assert!(error.contains("401"), "{error}");
        assert!(
            !error.contains(WRONG),
            "the token never reaches the record: {error}"
        );
    }
    assert!(grafana.annotations().is_empty());
    // The creation, then the completion trying to create the region itself; no retries.
    assert_eq!(grafana.requests_seen(), 2);
    app.stop().await;
}
