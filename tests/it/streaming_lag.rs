//! The shipped streaming-lag playbook end to end on real containers: a stuck job is
//! restarted and seen consuming again; a job falling behind is not restarted and gets the
//! runbook's tuning options. The playbook is the shipped one with its waits shortened.

use std::path::Path;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::lag_actions::http::spark_master_serving;
use crate::lag_actions::kafka::{kafka_container, write_file};
use crate::support::app::{
    am_alert, copy_playbook_defaults, shipped_catalog, step_states, Options, TestApp, SLACK_TOKEN,
};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;

const TOPIC: &str = "market.crypto.trades.binance.raw";

/// The shipped playbook and route, with 30 s sampling and the 60 s settle shortened.
fn quick_catalog(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (shipped_routes, shipped_responders) = shipped_catalog();
    let routes = dir.join("routes");
    let responders = dir.join("responders");
    std::fs::create_dir_all(&routes).unwrap();
    std::fs::create_dir_all(&responders).unwrap();
    std::fs::copy(
        shipped_routes.join("streaming-lag.yaml"),
        routes.join("streaming-lag.yaml"),
    )
    .unwrap();
    let playbook = std::fs::read_to_string(shipped_responders.join("streaming-lag.yaml")).unwrap();
    assert!(
        playbook.contains("interval: 30s") && playbook.contains("after: 60s"),
        "the shipped waits moved"
    );
    let quick = playbook
        .replace("interval: 30s", "interval: 2s")
        .replace("after: 60s", "after: 1s");
    std::fs::write(responders.join("streaming-lag.yaml"), quick).unwrap();
    copy_playbook_defaults(&responders);
    (routes, responders)
}

/// Moves the fake group's offsets every 300 ms: consumed by `consume`, produced by `produce`.
fn tick_offsets(kafka: &TestContainer, consume: i64, produce: i64) -> JoinHandle<()> {
    let name = kafka.name().to_owned();
    tokio::spawn(async move {
        let (mut current, mut end) = (1_000, 9_000);
        loop {
            current += consume;
            end += produce;
            let (n, line) = (name.clone(), format!("{TOPIC} 0 {current} {end}\n"));
            let _ =
                tokio::task::spawn_blocking(move || write_file(&n, "/tmp/offsets", &line)).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

fn lag_alert(job: &TestContainer, fingerprint: &str) -> serde_json::Value {
    let mut alert = am_alert(
        "firing",
        "StreamingQueryBehind",
        job.name(),
        fingerprint,
        "2026-11-27T05:00:00Z",
    );
    let labels = alert["alerts"][0]["labels"].as_object_mut().unwrap();
    labels.insert(
        "consumer_group".into(),
        "k2-bronze-binance-ingestion".into(),
    );
    labels.insert("spark_app".into(), "K2-Bronze-Binance-Ingestion".into());
    alert
}

#[tokio::test]
async fn a_stuck_job_is_restarted_and_a_job_falling_behind_gets_the_tuning_options() {
    let kafka = kafka_container("lag-kafka");
    let stuck = TestContainer::idle("lag-stuck");
    let behind = TestContainer::idle("lag-behind");
    let (stuck_before, behind_before) = (stuck.started_at(), behind.started_at());
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        catalog: Some(quick_catalog(dir.path())),
        config: vec![
            ("kafka_container", kafka.name().to_owned()),
            (
                "spark_master_url",
                spark_master_serving(include_str!("../fixtures/spark/master.json")).await,
            ),
        ],
        ..Default::default()
    };
    let app = TestApp::spawn(dir.path(), Some(&slack), options).await;

    // Stuck: lag 8000 and the committed offset does not move.
    write_file(
        kafka.name(),
        "/tmp/offsets",
        &format!("{TOPIC} 0 1000 9000\n"),
    );
    app.post_alertmanager(&lag_alert(&stuck, "a100000000000001"))
        .await;
    for _ in 0..200 {
        if stuck.started_at() != stuck_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(
        stuck.started_at(),
        stuck_before,
        "the stuck job was restarted"
    );
    // Restarted, it recovers from its checkpoint and consumes again.
    let ticker = tick_offsets(&kafka, 50, 10);
    let detail = app.wait_for_finished_run(stuck.name(), 1).await;
    ticker.abort();
    let states: Vec<_> = step_states(&detail, 0)
        .into_iter()
        .map(|(id, s)| format!("{id}={s}"))
        .collect();
    assert_eq!(
        states,
        [
            "lag=succeeded",
            "trend=skipped",
            "spark=succeeded",
            "restart=succeeded",
            "verify=succeeded",
            "stuck_not_restarted=skipped",
            "falling_behind=skipped",
            "catching_up=skipped",
            "steady=skipped"
        ],
        "{detail:#}"
    );
    assert_eq!(
        detail["runs"][0]["steps"][0]["outputs"]["classification"],
        "stuck"
    );
    assert_eq!(detail["runs"][0]["steps"][2]["outputs"]["workers_ok"], true);

    // Falling behind: offsets move, lag grows. Tuning is a human's change: no restart.
    let ticker = tick_offsets(&kafka, 10, 100);
    app.post_alertmanager(&lag_alert(&behind, "a100000000000002"))
        .await;
    let detail = app.wait_for_finished_run(behind.name(), 1).await;
    ticker.abort();
    assert_eq!(
        detail["runs"][0]["steps"][0]["outputs"]["classification"], "falling_behind",
        "{detail:#}"
    );
    let states = step_states(&detail, 0);
    assert!(
        states.contains(&("restart".to_owned(), "skipped".to_owned())),
        "{states:?}"
    );
    assert!(
        states.contains(&("falling_behind".to_owned(), "succeeded".to_owned())),
        "{states:?}"
    );
    assert_eq!(behind.started_at(), behind_before, "not restarted");
    let advice = detail["runs"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step_id"] == "falling_behind")
        .unwrap()["summary"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        advice.contains("maxOffsetsPerTrigger")
            && advice.contains("--total-executor-cores 2")
            && advice.contains("spark-worker-3"),
        "{advice}"
    );
    assert!(advice.contains("2/2 workers ALIVE"), "{advice}");
    app.stop().await;
}
