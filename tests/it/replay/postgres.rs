//! `replay` on PostgreSQL: a run recorded as dispatch records it (its budget use, each step
//! with its outputs), then read back by the real binary, read-only. The run's own budget use
//! is decided again, not counted against it: the unchanged catalog differs in nothing.

use alert_responder::limits::Budget;
use alert_responder::store::{connect, NewStep, RunOutcome, StepEnd, StepState, StoreOptions};
use serde_json::json;

use super::{catalog_args, replay, responders_with_threshold};
use crate::store_conformance::{firing, journal_and_record, now};
use crate::support::app::shipped_catalog;
use crate::support::postgres::fresh_database;

/// The shipped high-memory responder's steps as a run that restarted its target records them.
fn restart_run() -> Vec<(&'static str, &'static str, bool, serde_json::Value)> {
    vec![
        ("state", "docker_inspect", false, json!({"running": true})),
        (
            "mem",
            "docker_stats",
            false,
            json!({"memory_percent": 96.5}),
        ),
        ("logs", "docker_logs", false, json!({"match_count": 1})),
        (
            "restart",
            "docker_restart",
            true,
            json!({"container": "k2-pg-hog"}),
        ),
        (
            "verify_running",
            "docker_inspect",
            false,
            json!({"running": true}),
        ),
        (
            "verify_memory",
            "docker_stats",
            false,
            json!({"memory_percent": 1.3}),
        ),
    ]
}

#[tokio::test]
async fn replay_reads_a_postgresql_database_read_only() {
    let url = fresh_database();
    let store = connect(&url, &StoreOptions::default()).await.unwrap();
    let alert = firing(
        "HighMemoryUsage",
        "k2-pg-hog",
        "f0000000000p0001",
        "2026-11-27T05:00:00Z",
    );
    let run = journal_and_record(&*store, alert).await.run_ids[0];
    store.start_run(run, now()).await.unwrap();
    for (id, action, destructive, outputs) in restart_run() {
        let step = NewStep {
            run_id: run,
            step_id: id.into(),
            action: action.into(),
            destructive,
        };
        if destructive {
            let budget = Budget::default();
            let spent = store
                .consume_budget("high-memory", "k2-pg-hog", id, &budget, run, now())
                .await
                .unwrap();
            assert_eq!(spent, alert_responder::limits::Admission::Allowed);
        }
        let row = store.step_started(&step, now()).await.unwrap();
        let end = StepEnd {
            state: StepState::Succeeded,
            summary: format!("{id} done"),
            outputs: Some(outputs),
            error: None,
        };
        store.step_finished(row, &end, now()).await.unwrap();
    }
    store
        .finish_run(run, RunOutcome::Succeeded, "restarted", now())
        .await
        .unwrap();
    store.close().await;

    let dir = tempfile::tempdir().unwrap();
    let (routes, shipped) = shipped_catalog();
    let (routes, shipped) = (routes.display().to_string(), shipped.display().to_string());
    let args = [&catalog_args(&routes, &shipped)[..], &["--fail-on-diff"]].concat();
    let (status, out, err) = replay(dir.path(), &url, &args).await;
    assert_eq!(status.code(), Some(0), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("Replay of 1 alert(s)") && out.contains("No difference"),
        "{out}"
    );

    let raised = responders_with_threshold(dir.path(), "99")
        .display()
        .to_string();
    let args = [&catalog_args(&routes, &raised)[..], &["--fail-on-diff"]].concat();
    let (status, out, err) = replay(dir.path(), &url, &args).await;
    assert_eq!(status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("- restart (docker_restart DESTRUCTIVE): would NOT have happened"),
        "{out}"
    );
}
