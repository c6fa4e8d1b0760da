//! Preemption: recording a death asks the run of another incident holding its target to stop
//! (for whichever replica holds it), unless that run has a destructive step started.

use alert_responder::store::{
    AlertPlan, Claim, JournalEntry, NewStep, PreemptRequest, RunOutcome, Store, TargetDeath,
};

use super::{detail, firing, incident_with_run, journal_and_record_with, now, plan_for, Backend};

on_both_backends!(a_death_asks_the_holder_of_its_target_to_stop_unless_it_is_acting);

/// What dispatch plans for a death of the container (the Docker source's alert).
fn death_plan(entry: &JournalEntry) -> AlertPlan {
    let mut plan = plan_for(entry);
    if let AlertPlan::Firing { runs, .. } = &mut plan {
        runs[0].responder = "oom-killed".into();
        runs[0].preempts = true;
    }
    plan
}

/// Opens an incident with a run holding `container`; returns (incident, run).
async fn holding(store: &dyn Store, container: &str, fingerprint: &str) -> (i64, i64) {
    let (incident, run) = incident_with_run(store, container, fingerprint).await;
    assert_eq!(
        store.claim_run(run, 10, now()).await.unwrap(),
        Claim::Started
    );
    (incident, run)
}

async fn a_death_asks_the_holder_of_its_target_to_stop_unless_it_is_acting(b: Backend) {
    let (holder, other) = b.replicas().await;
    let (observing_incident, observing) = holding(&*holder, "p-a", "e100000000000001").await;
    let (_, acting) = holding(&*holder, "p-b", "e100000000000002").await;
    let step = NewStep {
        run_id: acting,
        step_id: "restart".into(),
        action: "docker_restart".into(),
        destructive: true,
    };
    holder.step_started(&step, now()).await.unwrap();

    let not_a_death = journal_and_record_with(
        &*other,
        firing(
            "ContainerDown",
            "p-a",
            "e100000000000003",
            "2026-11-27T05:00:00Z",
        ),
        plan_for,
    )
    .await;
    assert!(not_a_death.preempting.is_empty(), "{b}: {not_a_death:?}");
    let death = |container: &str, fingerprint: &str| {
        firing(
            "ContainerOomKilled",
            container,
            fingerprint,
            "2026-11-27T05:01:00Z",
        )
    };
    let dead_a =
        journal_and_record_with(&*other, death("p-a", "e100000000000004"), death_plan).await;
    assert_eq!(
        dead_a.preempting,
        [observing],
        "{b}: the observer is asked to stop"
    );
    let dead_b =
        journal_and_record_with(&*other, death("p-b", "e100000000000005"), death_plan).await;
    assert!(
        dead_b.preempting.is_empty(),
        "{b}: a run with a destructive step started is never asked: {dead_b:?}"
    );

    let by = dead_a.incident_id.unwrap();
    let news = holder.renew_leases(now()).await.unwrap();
    let asked = PreemptRequest {
        run_id: observing,
        by,
        died_unix: death("p-a", "e100000000000004").starts_at.unix_timestamp(),
    };
    assert_eq!(
        news.preempt,
        [asked],
        "{b}: the holder hears of it, with the death's time"
    );
    assert!(
        news.cancel.is_empty(),
        "{b}: a preemption is not a resolve: {news:?}"
    );

    let new_run = dead_a.run_ids[0];
    assert_eq!(
        other.claim_run(new_run, 10, now()).await.unwrap(),
        Claim::TargetBusy,
        "{b}: the target is still held"
    );
    // The death's run, waiting, asks whoever holds the target now: still the observer.
    let death_of = |target| TargetDeath {
        target,
        incident: by,
        died_unix: asked.died_unix,
    };
    let again = other.ask_preemption(&death_of("p-a")).await.unwrap();
    assert_eq!(again, [observing], "{b}");
    let acting_again = other.ask_preemption(&death_of("p-b")).await.unwrap();
    assert!(acting_again.is_empty(), "{b}: {acting_again:?}");
    holder
        .finish_run(
            observing,
            RunOutcome::Preempted,
            "preempted by incident",
            now(),
        )
        .await
        .unwrap();
    assert_eq!(
        other.claim_run(new_run, 10, now()).await.unwrap(),
        Claim::Started,
        "{b}: the dead target's run takes it at once"
    );
    let own = other.ask_preemption(&death_of("p-a")).await.unwrap();
    assert!(
        own.is_empty(),
        "{b}: a death never preempts its own run: {own:?}"
    );
    let d = detail(&*holder, observing_incident).await;
    assert_eq!(d["runs"][0]["outcome"], "preempted", "{b}: {d}");
}
