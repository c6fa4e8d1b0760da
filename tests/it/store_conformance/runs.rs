//! Claiming runs: one running run per target and a cap of running runs, both across every
//! replica; a run no longer pending is gone; finishing a run frees its target.

use alert_responder::store::{Claim, RunOutcome, Store};

use super::{firing, incident_with_run, journal_and_record, now, Backend};

on_both_backends!(
    a_target_runs_one_run_at_a_time_across_replicas,
    the_cap_of_running_runs_counts_every_replica,
    a_run_no_longer_pending_is_gone,
);

/// Three incidents on one target (three alert names), each with a pending run on it: two
/// recorded (so held) by `a`, the last by `other`.
async fn three_runs_on_one_target(a: &dyn Store, other: &dyn Store, target: &str) -> [i64; 3] {
    let (_, first) = incident_with_run(a, target, "f000000000000001").await;
    let mut runs = [first, 0, 0];
    for (i, (store, alertname)) in [(a, "ContainerDown"), (other, "DiskFull")]
        .into_iter()
        .enumerate()
    {
        let fingerprint = format!("f00000000000001{i}");
        let recorded = journal_and_record(
            store,
            firing(alertname, target, &fingerprint, "2026-11-27T05:00:00Z"),
        )
        .await;
        runs[i + 1] = recorded.run_ids[0];
    }
    runs
}

async fn a_target_runs_one_run_at_a_time_across_replicas(b: Backend) {
    let (a, other) = b.replicas().await;
    let [first, second, third] = three_runs_on_one_target(&*a, &*other, "u-a").await;
    assert_eq!(
        a.claim_run(first, 10, now()).await.unwrap(),
        Claim::Started,
        "{b}"
    );
    assert_eq!(
        a.claim_run(second, 10, now()).await.unwrap(),
        Claim::TargetBusy,
        "{b}: the replica's own running run holds the target"
    );
    assert_eq!(
        other.claim_run(third, 10, now()).await.unwrap(),
        Claim::TargetBusy,
        "{b}: and another replica's does too"
    );
    a.finish_run(first, RunOutcome::Succeeded, "done", now())
        .await
        .unwrap();
    assert_eq!(
        other.claim_run(third, 10, now()).await.unwrap(),
        Claim::Started,
        "{b}: a finished run frees its target"
    );
}

async fn the_cap_of_running_runs_counts_every_replica(b: Backend) {
    let (a, other) = b.replicas().await;
    let (_, on_x) = incident_with_run(&*a, "u-x", "f000000000000003").await;
    let (_, on_y) = incident_with_run(&*other, "u-y", "f000000000000004").await;
    assert_eq!(
        a.claim_run(on_x, 1, now()).await.unwrap(),
        Claim::Started,
        "{b}"
    );
    assert_eq!(
        other.claim_run(on_y, 1, now()).await.unwrap(),
        Claim::Full,
        "{b}: one running run anywhere fills a cap of one"
    );
    assert_eq!(
        other.claim_run(on_y, 2, now()).await.unwrap(),
        Claim::Started,
        "{b}"
    );
}

async fn a_run_no_longer_pending_is_gone(b: Backend) {
    let (a, other) = b.replicas().await;
    let (_, run) = incident_with_run(&*a, "u-z", "f000000000000005").await;
    assert_eq!(
        a.claim_run(run, 10, now()).await.unwrap(),
        Claim::Started,
        "{b}"
    );
    assert_eq!(
        a.claim_run(run, 10, now()).await.unwrap(),
        Claim::Gone,
        "{b}: claimed already"
    );
    assert_eq!(
        other.claim_run(run, 10, now()).await.unwrap(),
        Claim::Gone,
        "{b}: claimed by another replica"
    );
    a.finish_run(run, RunOutcome::Cancelled, "resolved", now())
        .await
        .unwrap();
    assert_eq!(
        a.claim_run(run, 10, now()).await.unwrap(),
        Claim::Gone,
        "{b}: finished"
    );
    assert_eq!(
        a.claim_run(run + 1_000, 10, now()).await.unwrap(),
        Claim::Gone,
        "{b}: unknown"
    );
}
