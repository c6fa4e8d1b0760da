//! Incidents: a firing opens one, later firings of the same fingerprint join it, a storm of
//! other fingerprints for the same alert and target folds into it, and a resolve closes it,
//! asking whichever replica holds its runs to cancel them.

use alert_responder::store::IncidentStatus;

use super::{firing, incident_with_run, journal_and_record, now, resolved, Backend};

on_both_backends!(
    a_second_firing_of_the_same_fingerprint_joins_the_open_incident,
    another_fingerprint_of_the_same_alert_and_target_folds_into_the_open_incident,
    a_resolve_closes_the_incident_and_asks_the_holder_to_cancel_its_runs,
    a_resolve_without_an_open_incident_is_recorded_as_such,
    an_idle_incident_closes_only_when_no_run_is_left,
);

async fn a_second_firing_of_the_same_fingerprint_joins_the_open_incident(b: Backend) {
    let store = b.open().await;
    let first = journal_and_record(
        &*store,
        firing(
            "HighMemoryUsage",
            "i-a",
            "e000000000000001",
            "2026-11-27T05:00:00Z",
        ),
    )
    .await;
    assert!(first.opened, "{b}: the first firing opens an incident");
    let again = journal_and_record(
        &*store,
        firing(
            "HighMemoryUsage",
            "i-a",
            "e000000000000001",
            "2026-11-27T05:10:00Z",
        ),
    )
    .await;
    assert!(!again.opened, "{b}");
    assert_eq!(
        again.incident_id, first.incident_id,
        "{b}: it joins the open one"
    );
    let open = store.list_incidents(true, 10).await.unwrap();
    assert_eq!(open.len(), 1, "{b}: {open:?}");
    assert_eq!(open[0].target.as_deref(), Some("i-a"), "{b}");
}

async fn another_fingerprint_of_the_same_alert_and_target_folds_into_the_open_incident(b: Backend) {
    let store = b.open().await;
    let (incident, _) = incident_with_run(&*store, "i-b", "e000000000000002").await;
    let storm = journal_and_record(
        &*store,
        firing(
            "HighMemoryUsage",
            "i-b",
            "e000000000000003",
            "2026-11-27T05:00:00Z",
        ),
    )
    .await;
    assert_eq!(
        storm.incident_id,
        Some(incident),
        "{b}: folded by alert name and target"
    );
    assert!(
        !storm.opened && storm.run_ids.is_empty(),
        "{b}: no new run: {storm:?}"
    );
    let detail = super::detail(&*store, incident).await;
    let folded = detail["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "folded");
    assert_eq!(folded.count(), 1, "{b}: {detail}");
    assert_eq!(
        detail["alerts"].as_array().unwrap().len(),
        2,
        "{b}: {detail}"
    );

    let other_alert = journal_and_record(
        &*store,
        firing(
            "ContainerDown",
            "i-b",
            "e000000000000004",
            "2026-11-27T05:00:00Z",
        ),
    )
    .await;
    assert!(
        other_alert.opened,
        "{b}: another alert name on the target is its own incident"
    );
}

async fn a_resolve_closes_the_incident_and_asks_the_holder_to_cancel_its_runs(b: Backend) {
    let (holder, other) = b.replicas().await;
    let (incident, run) = incident_with_run(&*holder, "i-c", "e000000000000005").await;
    assert_eq!(
        holder.claim_run(run, 10, now()).await.unwrap(),
        alert_responder::store::Claim::Started,
        "{b}"
    );
    assert!(
        holder.renew_leases(now()).await.unwrap().cancel.is_empty(),
        "{b}: nothing to cancel yet"
    );

    let resolve = journal_and_record(
        &*other,
        resolved(
            "HighMemoryUsage",
            "i-c",
            "e000000000000005",
            "2026-11-27T05:00:00Z",
        ),
    )
    .await;
    assert!(resolve.resolved, "{b}: {resolve:?}");
    assert_eq!(resolve.incident_id, Some(incident), "{b}");
    assert_eq!(resolve.active_runs, [run], "{b}: its unfinished runs");
    assert_eq!(
        holder.renew_leases(now()).await.unwrap().cancel,
        [run],
        "{b}: the holder hears of the cancellation at its next renewal"
    );
    assert!(
        holder.list_incidents(true, 10).await.unwrap().is_empty(),
        "{b}: closed"
    );
    let incidents = holder.list_incidents(false, 10).await.unwrap();
    assert_eq!(
        incidents[0].status,
        IncidentStatus::Resolved,
        "{b}: {incidents:?}"
    );
}

async fn a_resolve_without_an_open_incident_is_recorded_as_such(b: Backend) {
    let store = b.open().await;
    let recorded = journal_and_record(
        &*store,
        resolved(
            "HighMemoryUsage",
            "i-d",
            "e000000000000006",
            "2026-11-27T05:00:00Z",
        ),
    )
    .await;
    assert_eq!(recorded.incident_id, None, "{b}");
    assert!(!recorded.resolved, "{b}");
    assert!(
        store.list_incidents(false, 10).await.unwrap().is_empty(),
        "{b}"
    );
}

async fn an_idle_incident_closes_only_when_no_run_is_left(b: Backend) {
    let store = b.open().await;
    let (incident, run) = incident_with_run(&*store, "i-e", "e000000000000007").await;
    assert!(
        !store.close_idle_incident(incident, now()).await.unwrap(),
        "{b}: a pending run keeps it open"
    );
    store.claim_run(run, 10, now()).await.unwrap();
    store
        .finish_run(
            run,
            alert_responder::store::RunOutcome::Succeeded,
            "done",
            now(),
        )
        .await
        .unwrap();
    assert!(
        store.close_idle_incident(incident, now()).await.unwrap(),
        "{b}"
    );
    assert!(
        store.list_incidents(true, 10).await.unwrap().is_empty(),
        "{b}"
    );
}
