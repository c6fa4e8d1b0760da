//! Leases and recovery: a run whose holder is gone is reported interrupted (its started step
//! now `unknown`, never re-run) and its never-started runs are taken over, once.
//!
//! Who counts as gone differs on purpose. PostgreSQL: a holder whose lease expired, so a
//! live replica that renews keeps its runs. SQLite: one process owns the file, so every other
//! holder is an earlier process, gone however fresh its lease.

use alert_responder::store::{Claim, NewStep, RecoverScope, Store};

use super::{incident_with_run, now, outlive_short_lease, Backend, SHORT_LEASE};

on_both_backends!(
    a_gone_holders_running_run_is_interrupted_and_its_pending_run_taken_over_once,
    at_shutdown_a_replica_interrupts_its_running_runs_and_releases_its_pending_ones,
);
on_postgres!(
    a_live_replica_that_renews_keeps_its_runs,
    two_reapers_at_once_report_an_abandoned_run_once,
);
on_sqlite!(every_other_holder_is_an_earlier_process_however_fresh_its_lease);

/// What a crash leaves: one run stopped inside its restart step, one never started.
/// Returns (the running run's incident, the running run, the pending run).
async fn crashed_mid_restart(holder: &dyn Store) -> (i64, i64, i64) {
    let (incident, running) = incident_with_run(holder, "l-a", "a000000000000001").await;
    let (_, pending) = incident_with_run(holder, "l-b", "a000000000000002").await;
    assert_eq!(
        holder.claim_run(running, 10, now()).await.unwrap(),
        Claim::Started
    );
    let restart = NewStep {
        run_id: running,
        step_id: "restart".into(),
        action: "docker_restart".into(),
        destructive: true,
    };
    holder.step_started(&restart, now()).await.unwrap();
    (incident, running, pending)
}

async fn a_gone_holders_running_run_is_interrupted_and_its_pending_run_taken_over_once(b: Backend) {
    let gone = b.open_with_lease(SHORT_LEASE).await;
    let reaper = b.open().await;
    let (_, running, pending) = crashed_mid_restart(&*gone).await;
    outlive_short_lease().await;

    let recovery = reaper
        .recover_runs(RecoverScope::Abandoned, now())
        .await
        .unwrap();
    assert_eq!(recovery.interrupted.len(), 1, "{b}: {recovery:?}");
    let interrupted = &recovery.interrupted[0];
    assert_eq!(interrupted.run_id, running, "{b}");
    assert_eq!(interrupted.last_step.as_deref(), Some("restart"), "{b}");
    assert_eq!(
        interrupted.holder.as_deref(),
        Some(gone.owner()),
        "{b}: who lost it"
    );
    let taken: Vec<i64> = recovery.pending.iter().map(|p| p.run_id).collect();
    assert_eq!(taken, [pending], "{b}: the never-started run, to start now");
    assert_eq!(recovery.pending[0].target, "l-b", "{b}");

    let detail = super::detail(&*reaper, interrupted.incident_id).await;
    let run = &detail["runs"][0];
    assert_eq!(run["state"], "interrupted", "{b}: {detail}");
    assert_eq!(
        run["steps"][0]["state"], "unknown",
        "{b}: it may or may not have happened"
    );

    let again = reaper
        .recover_runs(RecoverScope::Abandoned, now())
        .await
        .unwrap();
    assert!(
        again.interrupted.is_empty() && again.pending.is_empty(),
        "{b}: a second pass finds nothing: {again:?}"
    );
    assert_eq!(
        reaper.claim_run(pending, 10, now()).await.unwrap(),
        Claim::Started,
        "{b}: the taken-over run starts on its new holder"
    );
}

async fn at_shutdown_a_replica_interrupts_its_running_runs_and_releases_its_pending_ones(
    b: Backend,
) {
    let (leaving, staying) = b.replicas().await;
    let (_, running, pending) = crashed_mid_restart(&*leaving).await;
    let mine = leaving
        .recover_runs(RecoverScope::Mine, now())
        .await
        .unwrap();
    let interrupted: Vec<i64> = mine.interrupted.iter().map(|r| r.run_id).collect();
    assert_eq!(interrupted, [running], "{b}: {mine:?}");
    assert!(
        mine.pending.is_empty(),
        "{b}: pending runs are released, not returned"
    );

    let taken = staying
        .recover_runs(RecoverScope::Abandoned, now())
        .await
        .unwrap();
    assert!(
        taken.interrupted.is_empty(),
        "{b}: reported once already: {taken:?}"
    );
    let taken: Vec<i64> = taken.pending.iter().map(|p| p.run_id).collect();
    assert_eq!(taken, [pending], "{b}: the released run is taken at once");
}

async fn a_live_replica_that_renews_keeps_its_runs(b: Backend) {
    let live = b.open_with_lease(SHORT_LEASE).await;
    let reaper = b.open().await;
    let (incident, _, _) = crashed_mid_restart(&*live).await;
    for _ in 0..10 {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        live.renew_leases(now()).await.unwrap();
    }
    let recovery = reaper
        .recover_runs(RecoverScope::Abandoned, now())
        .await
        .unwrap();
    assert!(
        recovery.interrupted.is_empty() && recovery.pending.is_empty(),
        "{b}: 3 s is three short leases, each renewed in time: {recovery:?}"
    );
    let detail = super::detail(&*live, incident).await;
    assert_eq!(detail["runs"][0]["state"], "running", "{b}: {detail}");
}

async fn two_reapers_at_once_report_an_abandoned_run_once(b: Backend) {
    let gone = b.open_with_lease(SHORT_LEASE).await;
    let (first, second) = (b.open().await, b.open().await);
    let (_, running, pending) = crashed_mid_restart(&*gone).await;
    outlive_short_lease().await;
    let (x, y) = tokio::join!(
        first.recover_runs(RecoverScope::Abandoned, now()),
        second.recover_runs(RecoverScope::Abandoned, now()),
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    let interrupted: Vec<i64> = x
        .interrupted
        .iter()
        .chain(&y.interrupted)
        .map(|r| r.run_id)
        .collect();
    let taken: Vec<i64> = x
        .pending
        .iter()
        .chain(&y.pending)
        .map(|r| r.run_id)
        .collect();
    assert_eq!(interrupted, [running], "{b}: reported by one reaper only");
    assert_eq!(taken, [pending], "{b}: taken over by one reaper only");
}

async fn every_other_holder_is_an_earlier_process_however_fresh_its_lease(b: Backend) {
    let earlier = b.open().await;
    let (_, running, pending) = crashed_mid_restart(&*earlier).await;
    earlier.renew_leases(now()).await.unwrap();
    let started = b.open().await;
    let recovery = started
        .recover_runs(RecoverScope::Abandoned, now())
        .await
        .unwrap();
    let interrupted: Vec<i64> = recovery.interrupted.iter().map(|r| r.run_id).collect();
    let taken: Vec<i64> = recovery.pending.iter().map(|r| r.run_id).collect();
    assert_eq!(interrupted, [running], "{b}: {recovery:?}");
    assert_eq!(taken, [pending], "{b}");
}
