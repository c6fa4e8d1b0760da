//! Batched recording of the journal: many entries in one transaction, each seeing what the
//! entries before it recorded, and re-firing alerts joining a run still waiting to start.

use alert_responder::alert::Alert;
use alert_responder::responders::Mode;
use alert_responder::store::{AlertPlan, JournalEntry, RunPlan, SqliteStore, Store};
use serde_json::Value;
use time::OffsetDateTime;

use crate::support::app::am_alert;

fn alert(container: &str, fingerprint: &str, starts_at: &str) -> Alert {
    let body = am_alert(
        "firing",
        "HighMemoryUsage",
        container,
        fingerprint,
        starts_at,
    );
    alert_responder::sources::alertmanager::parse(body.to_string().as_bytes())
        .unwrap()
        .remove(0)
}

fn firing(entry: &JournalEntry) -> AlertPlan {
    let target = entry.alert.labels["container"].clone();
    AlertPlan::Firing {
        runs: vec![RunPlan {
            responder: "high-memory".into(),
            target: target.clone(),
            mode: Mode::Live,
        }],
        declines: vec![],
        target: Some(target),
    }
}

async fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/responder.db", dir.path().display());
    (dir, SqliteStore::connect(&url).await.unwrap())
}

#[tokio::test]
async fn one_batch_records_every_entry_and_repeats_join_the_waiting_run() {
    let (_dir, store) = store().await;
    let alerts = vec![
        alert("k2-a", "b000000000000001", "2026-11-27T05:00:00Z"),
        alert("k2-a", "b000000000000001", "2026-11-27T05:01:00Z"),
        alert("k2-b", "b000000000000002", "2026-11-27T05:00:00Z"),
        alert("k2-a", "b000000000000001", "2026-11-27T05:02:00Z"),
    ];
    store.append_journal(&alerts).await.unwrap();
    let entries = store.pending_journal(10).await.unwrap();
    assert_eq!(entries.len(), 4);
    let plans: Vec<AlertPlan> = entries.iter().map(firing).collect();
    let batch: Vec<_> = entries.iter().zip(&plans).collect();
    let recorded = store
        .record_alerts(&batch, OffsetDateTime::now_utc())
        .await
        .unwrap();

    assert!(
        store.pending_journal(10).await.unwrap().is_empty(),
        "every entry of the batch is processed"
    );
    let first = &recorded[0];
    assert!(first.opened);
    assert_eq!(first.run_ids.len(), 1);
    assert!(first.coalesced.is_empty());
    for repeat in [&recorded[1], &recorded[3]] {
        assert!(
            !repeat.opened,
            "a later entry sees the incident an earlier one opened"
        );
        assert_eq!(repeat.incident_id, first.incident_id);
        assert!(repeat.run_ids.is_empty(), "no second run while one waits");
        assert_eq!(repeat.coalesced, vec![(0, first.run_ids[0])]);
    }
    assert!(recorded[2].opened);
    assert_ne!(recorded[2].incident_id, first.incident_id);
    assert_eq!(recorded[2].run_ids.len(), 1);

    let detail = store
        .incident_detail(first.incident_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    let detail = serde_json::to_value(&detail).unwrap();
    assert_eq!(detail["alerts"].as_array().unwrap().len(), 3, "{detail}");
    assert_eq!(detail["runs"].as_array().unwrap().len(), 1, "{detail}");
    let joined: Vec<&Value> = detail["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "joined")
        .collect();
    assert_eq!(joined.len(), 2, "each repeat is accounted for: {detail}");
}

#[tokio::test]
async fn a_repeat_after_the_run_started_gets_a_run_of_its_own() {
    let (_dir, store) = store().await;
    let now = OffsetDateTime::now_utc();
    store
        .append_journal(&[alert("k2-a", "b000000000000003", "2026-11-27T05:00:00Z")])
        .await
        .unwrap();
    let entry = store.pending_journal(10).await.unwrap().remove(0);
    let first = store
        .record_alert(&entry, &firing(&entry), now)
        .await
        .unwrap();
    store.start_run(first.run_ids[0], now).await.unwrap();

    store
        .append_journal(&[alert("k2-a", "b000000000000003", "2026-11-27T05:05:00Z")])
        .await
        .unwrap();
    let entry = store.pending_journal(10).await.unwrap().remove(0);
    let second = store
        .record_alert(&entry, &firing(&entry), now)
        .await
        .unwrap();
    assert_eq!(second.incident_id, first.incident_id);
    assert!(
        second.coalesced.is_empty(),
        "a running run may have looked already"
    );
    assert_eq!(second.run_ids.len(), 1);
    assert_ne!(second.run_ids[0], first.run_ids[0]);
}
