//! Recording in batches records exactly what recording one entry at a time records: the same
//! incidents, folds, joins, runs and decisions, with the same ids, whatever the batch's size.

use alert_responder::alert::Alert;
use alert_responder::store::{AlertPlan, Recorded, RunPlan, Store};
use serde_json::Value;

use super::folding::unrouted;
use super::{firing, now, resolved, Backend, Kind};

on_both_backends!(batches_of_any_size_record_what_one_by_one_records);

fn acting(target: &str) -> AlertPlan {
    AlertPlan::Firing {
        runs: vec![RunPlan {
            responder: "high-memory".into(),
            target: target.into(),
            mode: alert_responder::responders::Mode::Live,
            preempts: false,
        }],
        declines: vec![],
        target: Some(target.into()),
    }
}

/// Real work whose plan names no incident target.
fn acting_nowhere() -> AlertPlan {
    match acting("c-e") {
        AlertPlan::Firing { runs, declines, .. } => AlertPlan::Firing {
            runs,
            declines,
            target: None,
        },
        other => other,
    }
}

/// A storm's every case, in an order where each depends on what came before.
fn story() -> Vec<(Alert, AlertPlan)> {
    let at = "2026-11-27T05:00:00Z";
    let fire = |name: &str, target: &str, fp: &str| firing(name, target, fp, at);
    vec![
        // Noise opens an incident, more noise folds into it.
        (
            fire("Mem", "c-a", "a000000000000001"),
            unrouted(Some("c-a")),
        ),
        (
            fire("Mem", "c-a", "a000000000000002"),
            unrouted(Some("c-a")),
        ),
        // Real work never folds into it: it opens its own, with a run.
        (fire("Mem", "c-a", "a000000000000003"), acting("c-a")),
        // Real work of another fingerprint folds into the one with a run.
        (fire("Mem", "c-a", "a000000000000004"), acting("c-a")),
        // Its re-fire joins the run still waiting.
        (fire("Mem", "c-a", "a000000000000003"), acting("c-a")),
        // Noise folds into the newest open incident of its name and target.
        (
            fire("Mem", "c-a", "a000000000000005"),
            unrouted(Some("c-a")),
        ),
        // No target: folds by name alone.
        (fire("Disk", "c-b", "a000000000000006"), unrouted(None)),
        (fire("Disk", "c-c", "a000000000000007"), unrouted(None)),
        // The run's incident resolves; then real work opens a new one, noise folds into it.
        (
            resolved("Mem", "c-a", "a000000000000003", at),
            AlertPlan::Resolve,
        ),
        (fire("Mem", "c-a", "a000000000000008"), acting("c-a")),
        (
            fire("Mem", "c-a", "a000000000000009"),
            unrouted(Some("c-a")),
        ),
        // The first noise incident resolves (twice: the second finds none); its alert re-fires
        // and folds into the newest open incident of its name and target.
        (
            resolved("Mem", "c-a", "a000000000000001", at),
            AlertPlan::Resolve,
        ),
        (
            resolved("Mem", "c-a", "a000000000000001", at),
            AlertPlan::Resolve,
        ),
        (
            fire("Mem", "c-a", "a000000000000001"),
            unrouted(Some("c-a")),
        ),
        // A note after the resolve belongs to the resolved incident's thread.
        (fire("Mem", "c-a", "a000000000000003"), AlertPlan::Update),
        (fire("Mem", "c-z", "a0000000000000ff"), AlertPlan::Update),
        // A resolve nobody opened an incident for.
        (
            resolved("Cpu", "c-d", "a00000000000000a", at),
            AlertPlan::Resolve,
        ),
        // An open incident without a run gains one when its alert re-fires with a route.
        (fire("Disk", "c-b", "a000000000000006"), acting("c-b")),
        // Real work with no target of its own folds by name alone, into one with a run.
        (fire("Disk", "c-e", "a00000000000000b"), acting_nowhere()),
    ]
}

/// Records the story in batches of `size`; returns each entry's outcome and every incident.
async fn record_in_batches(store: &dyn Store, size: usize) -> (Vec<Recorded>, Vec<Value>) {
    let (mut alerts, plans): (Vec<Alert>, Vec<AlertPlan>) = story().into_iter().unzip();
    for (minutes, alert) in (0..).zip(&mut alerts) {
        // Repeats of one alert are distinct notifications, not duplicates.
        alert.starts_at += time::Duration::minutes(minutes);
        store
            .append_journal(std::slice::from_ref(alert))
            .await
            .unwrap();
    }
    let mut entries = store.pending_journal(1_000).await.unwrap();
    entries.sort_by_key(|e| e.id);
    assert_eq!(entries.len(), plans.len());
    let pairs: Vec<_> = entries.iter().zip(&plans).collect();
    let mut recorded = Vec::new();
    for chunk in pairs.chunks(size) {
        recorded.extend(store.record_alerts(chunk, now()).await.unwrap());
    }
    let mut incidents = Vec::new();
    for id in 1..=20 {
        if let Some(detail) = store.incident_detail(id).await.unwrap() {
            let mut detail = serde_json::to_value(&detail).unwrap();
            strip_times(&mut detail);
            incidents.push(detail);
        }
    }
    (recorded, incidents)
}

/// Drops what differs between two recordings of the same story: times and holders.
fn strip_times(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| {
                !(k.ends_with("_at") || k == "at" || k.contains("owner") || k.contains("lease"))
            });
            map.values_mut().for_each(strip_times);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_times),
        _ => {}
    }
}

/// Another fresh database of `b`'s kind.
fn fresh(b: &Backend) -> Backend {
    match b.kind {
        Kind::Sqlite => Backend::sqlite(),
        Kind::Postgres => Backend::postgres(),
    }
}

async fn batches_of_any_size_record_what_one_by_one_records(b: Backend) {
    let (expected, incidents) = record_in_batches(&*b.open().await, 1).await;
    assert!(
        expected.iter().any(|r| r.folded) && expected.iter().any(|r| !r.coalesced.is_empty()),
        "{b}: the story folds and joins: {expected:?}"
    );
    for size in [3, 7, 64] {
        let other = fresh(&b);
        let (recorded, details) = record_in_batches(&*other.open().await, size).await;
        assert_eq!(recorded, expected, "{b}: batches of {size}");
        assert_eq!(details, incidents, "{b}: batches of {size}");
    }
}
