//! The intake journal: a redelivery is a no-op, entries come out in order, a batch records
//! every entry in one transaction (each seeing what the ones before it recorded), targets
//! take turns within a priority, and an entry two replicas both read is recorded once.

use alert_responder::store::{AlertPlan, JournalEntry, Priority, Rank, StoreError};
use serde_json::Value;

use super::{firing, journal_and_record, now, plan_for, resolved, Backend};

on_both_backends!(
    a_redelivered_alert_is_a_no_op_whichever_replica_receives_it,
    pending_entries_come_out_oldest_first_and_leave_once_recorded,
    the_most_urgent_entries_come_out_first_in_arrival_order_within_a_priority,
    targets_take_turns_within_a_priority_and_each_keeps_its_own_order,
    one_batch_records_every_entry_and_repeats_join_the_waiting_run,
    a_repeat_after_the_run_started_gets_a_run_of_its_own,
);
on_postgres!(an_entry_recorded_by_one_replica_is_already_recorded_for_the_other);
on_postgres!(replicas_recording_at_once_record_each_entry_once);

async fn a_redelivered_alert_is_a_no_op_whichever_replica_receives_it(b: Backend) {
    let (a, other) = b.replicas().await;
    let alert = firing(
        "HighMemoryUsage",
        "j-a",
        "d000000000000001",
        "2026-11-27T05:00:00Z",
    );
    assert_eq!(
        a.append_journal(std::slice::from_ref(&alert))
            .await
            .unwrap(),
        [true],
        "{b}"
    );
    assert_eq!(
        a.append_journal(std::slice::from_ref(&alert))
            .await
            .unwrap(),
        [false],
        "{b}: the same notification again is a no-op"
    );
    assert_eq!(
        other
            .append_journal(std::slice::from_ref(&alert))
            .await
            .unwrap(),
        [false],
        "{b}: an HA peer's copy through another replica too"
    );
    let resolve = resolved(
        "HighMemoryUsage",
        "j-a",
        "d000000000000001",
        "2026-11-27T05:00:00Z",
    );
    assert_eq!(
        other.append_journal(&[resolve, alert]).await.unwrap(),
        [true, false],
        "{b}: per alert, in order; the resolve is a notification of its own"
    );
    assert_eq!(a.pending_journal(10).await.unwrap().len(), 2, "{b}");
}

async fn the_most_urgent_entries_come_out_first_in_arrival_order_within_a_priority(b: Backend) {
    let (a, other) = b.replicas().await;
    let alert = |i: usize| {
        firing(
            "Flood",
            &format!("p-{i}"),
            &format!("e0000000000000{i:02}"),
            "2026-11-27T05:00:00Z",
        )
    };
    // A backlog of six low ones, then two urgent ones, one through each replica, then a
    // middle one: the urgent come first in their arrival order, the backlog last.
    let low: Vec<_> = (0..6).map(alert).collect();
    a.append_ranked(&low, &vec![ranked(0); 6]).await.unwrap();
    a.append_ranked(&[alert(6)], &[ranked(9)]).await.unwrap();
    other
        .append_ranked(&[alert(7)], &[ranked(9)])
        .await
        .unwrap();
    other
        .append_ranked(&[alert(8)], &[ranked(4)])
        .await
        .unwrap();
    let expected = [
        "p-6", "p-7", "p-8", "p-0", "p-1", "p-2", "p-3", "p-4", "p-5",
    ];
    assert_eq!(order(a.pending_journal(20).await.unwrap()), expected, "{b}");
    assert_eq!(
        order(other.pending_journal(3).await.unwrap()),
        expected[..3],
        "{b}: a short read takes the urgent ones"
    );
    // Recorded, the urgent leave; the backlog follows in arrival order.
    let first = a.pending_journal(2).await.unwrap();
    record(a.as_ref(), &first).await;
    assert_eq!(
        order(other.pending_journal(20).await.unwrap()),
        expected[2..],
        "{b}"
    );
    // The same alert again, ranked differently, is still one entry (the key decides).
    assert_eq!(
        a.append_ranked(&[alert(0)], &[ranked(9)]).await.unwrap(),
        [false],
        "{b}"
    );
}

/// One target for every alert: arrival order within a priority.
fn ranked(priority: u8) -> Rank {
    Rank::new(Priority(priority), "")
}

/// The containers of `entries`, in order.
fn order(entries: Vec<JournalEntry>) -> Vec<String> {
    entries
        .into_iter()
        .map(|e| e.alert.labels["container"].clone())
        .collect()
}

/// Records `entries` (the dispatcher's batch).
async fn record(store: &dyn alert_responder::store::Store, entries: &[JournalEntry]) {
    let batch: Vec<_> = entries.iter().map(|e| (e, plan_for(e))).collect();
    let refs: Vec<_> = batch.iter().map(|(e, p)| (*e, p)).collect();
    store.record_alerts(&refs, now()).await.unwrap();
}

async fn targets_take_turns_within_a_priority_and_each_keeps_its_own_order(b: Backend) {
    let (a, other) = b.replicas().await;
    let alert = |target: &str, i: usize| {
        firing(
            "Flood",
            &format!("{target}-{i}"),
            &format!("f{:015}", i + 100 * (target.as_bytes()[0] - b'a') as usize),
            "2026-11-27T05:00:00Z",
        )
    };
    let on = |target: &str| Rank::new(Priority(9), target);
    // Target a floods; b's one alert goes with a's first, not after all of a's.
    let flood: Vec<_> = (0..6).map(|i| alert("a", i)).collect();
    a.append_ranked(&flood, &vec![on("a"); 6]).await.unwrap();
    a.append_ranked(&[alert("b", 0)], &[on("b")]).await.unwrap();
    assert_eq!(
        order(a.pending_journal(20).await.unwrap()),
        ["a-0", "b-0", "a-1", "a-2", "a-3", "a-4", "a-5"],
        "{b}"
    );
    // The dispatcher takes three; then c arrives, through the other replica (on SQLite, a
    // store that reads the turns back from the journal, as after a restart). It goes next or
    // right after a's next, not after a's backlog; a's next alert goes after a's backlog.
    let first = a.pending_journal(3).await.unwrap();
    record(a.as_ref(), &first).await;
    other
        .append_ranked(&[alert("c", 0)], &[on("c")])
        .await
        .unwrap();
    other
        .append_ranked(&[alert("a", 6)], &[on("a")])
        .await
        .unwrap();
    let rest = order(other.pending_journal(20).await.unwrap());
    let c = rest.iter().position(|t| t == "c-0").unwrap();
    assert!(
        c <= 1,
        "{b}: c waits behind at most a's next, not a's backlog: {rest:?}"
    );
    let a_order: Vec<_> = rest.iter().filter(|t| t.starts_with("a-")).collect();
    assert_eq!(
        a_order,
        ["a-2", "a-3", "a-4", "a-5", "a-6"],
        "{b}: a keeps its order"
    );
    // A lower priority still waits, however early its turn.
    other
        .append_ranked(&[alert("d", 0)], &[Rank::new(Priority(8), "d")])
        .await
        .unwrap();
    let rest = order(a.pending_journal(20).await.unwrap());
    assert_eq!(
        rest.last().map(String::as_str),
        Some("d-0"),
        "{b}: {rest:?}"
    );
}

async fn pending_entries_come_out_oldest_first_and_leave_once_recorded(b: Backend) {
    let store = b.open().await;
    let alerts: Vec<_> = (1..=3)
        .map(|i| {
            firing(
                "HighMemoryUsage",
                &format!("j-{i}"),
                &format!("d00000000000001{i}"),
                "2026-11-27T05:00:00Z",
            )
        })
        .collect();
    store.append_journal(&alerts).await.unwrap();
    let pending = store.pending_journal(10).await.unwrap();
    let containers: Vec<&str> = pending
        .iter()
        .map(|e| e.alert.labels["container"].as_str())
        .collect();
    assert_eq!(
        containers,
        ["j-1", "j-2", "j-3"],
        "{b}: in the order received"
    );
    assert!(pending.windows(2).all(|w| w[0].id < w[1].id), "{b}: by id");
    assert_eq!(
        store.pending_journal(2).await.unwrap().len(),
        2,
        "{b}: the limit holds"
    );

    store
        .record_alert(&pending[0], &plan_for(&pending[0]), now())
        .await
        .unwrap();
    let left: Vec<i64> = store
        .pending_journal(10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        left,
        [pending[1].id, pending[2].id],
        "{b}: a recorded entry is no longer pending"
    );
}

async fn one_batch_records_every_entry_and_repeats_join_the_waiting_run(b: Backend) {
    let store = b.open().await;
    let alerts = vec![
        firing(
            "HighMemoryUsage",
            "k2-a",
            "b000000000000001",
            "2026-11-27T05:00:00Z",
        ),
        firing(
            "HighMemoryUsage",
            "k2-a",
            "b000000000000001",
            "2026-11-27T05:01:00Z",
        ),
        firing(
            "HighMemoryUsage",
            "k2-b",
            "b000000000000002",
            "2026-11-27T05:00:00Z",
        ),
        firing(
            "HighMemoryUsage",
            "k2-a",
            "b000000000000001",
            "2026-11-27T05:02:00Z",
        ),
    ];
    store.append_journal(&alerts).await.unwrap();
    let entries = store.pending_journal(10).await.unwrap();
    assert_eq!(entries.len(), 4, "{b}");
    let plans: Vec<AlertPlan> = entries.iter().map(plan_for).collect();
    let batch: Vec<_> = entries.iter().zip(&plans).collect();
    let recorded = store.record_alerts(&batch, now()).await.unwrap();

    assert!(
        store.pending_journal(10).await.unwrap().is_empty(),
        "{b}: every entry of the batch is processed"
    );
    let first = &recorded[0];
    assert!(first.opened, "{b}");
    assert_eq!(first.run_ids.len(), 1, "{b}");
    assert!(first.coalesced.is_empty(), "{b}");
    for repeat in [&recorded[1], &recorded[3]] {
        assert!(
            !repeat.opened,
            "{b}: a later entry sees the incident an earlier one opened"
        );
        assert_eq!(repeat.incident_id, first.incident_id, "{b}");
        assert!(
            repeat.run_ids.is_empty(),
            "{b}: no second run while one waits"
        );
        assert_eq!(repeat.coalesced, vec![(0, first.run_ids[0])], "{b}");
    }
    assert!(recorded[2].opened, "{b}");
    assert_ne!(recorded[2].incident_id, first.incident_id, "{b}");
    assert_eq!(recorded[2].run_ids.len(), 1, "{b}");

    let detail = super::detail(&*store, first.incident_id.unwrap()).await;
    assert_eq!(
        detail["alerts"].as_array().unwrap().len(),
        3,
        "{b}: {detail}"
    );
    assert_eq!(detail["runs"].as_array().unwrap().len(), 1, "{b}: {detail}");
    let joined: Vec<&Value> = detail["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "joined")
        .collect();
    assert_eq!(
        joined.len(),
        2,
        "{b}: each repeat is accounted for: {detail}"
    );
}

async fn a_repeat_after_the_run_started_gets_a_run_of_its_own(b: Backend) {
    let store = b.open().await;
    let first = journal_and_record(
        &*store,
        firing(
            "HighMemoryUsage",
            "k2-a",
            "b000000000000003",
            "2026-11-27T05:00:00Z",
        ),
    )
    .await;
    store.start_run(first.run_ids[0], now()).await.unwrap();

    let second = journal_and_record(
        &*store,
        firing(
            "HighMemoryUsage",
            "k2-a",
            "b000000000000003",
            "2026-11-27T05:05:00Z",
        ),
    )
    .await;
    assert_eq!(second.incident_id, first.incident_id, "{b}");
    assert!(
        second.coalesced.is_empty(),
        "{b}: a running run may have looked already"
    );
    assert_eq!(second.run_ids.len(), 1, "{b}");
    assert_ne!(second.run_ids[0], first.run_ids[0], "{b}");
}

/// Two replicas read the same pending entries before either records them: the second to
/// record finds them done and does nothing (one incident, one run).
async fn an_entry_recorded_by_one_replica_is_already_recorded_for_the_other(b: Backend) {
    let (a, other) = b.replicas().await;
    let alerts = vec![
        firing(
            "HighMemoryUsage",
            "r-a",
            "b000000000000004",
            "2026-11-27T05:00:00Z",
        ),
        firing(
            "HighMemoryUsage",
            "r-b",
            "b000000000000005",
            "2026-11-27T05:00:00Z",
        ),
    ];
    a.append_journal(&alerts).await.unwrap();
    let seen_by_a = a.pending_journal(10).await.unwrap();
    let seen_by_other = other.pending_journal(10).await.unwrap();
    assert_eq!(seen_by_other.len(), 2, "{b}: both replicas see the entries");

    let plans: Vec<AlertPlan> = seen_by_a.iter().map(plan_for).collect();
    let first = a
        .record_alerts(&seen_by_a.iter().zip(&plans).collect::<Vec<_>>(), now())
        .await
        .unwrap();
    assert!(
        first.iter().all(|r| !r.already_recorded && r.opened),
        "{b}: {first:?}"
    );

    let again = other
        .record_alerts(&seen_by_other.iter().zip(&plans).collect::<Vec<_>>(), now())
        .await
        .unwrap();
    assert_eq!(again.len(), 2, "{b}: one answer per entry");
    for recorded in &again {
        assert!(recorded.already_recorded, "{b}: {again:?}");
        assert!(
            recorded.run_ids.is_empty() && !recorded.opened,
            "{b}: nothing done twice: {again:?}"
        );
    }
    let incidents = a.list_incidents(false, 10).await.unwrap();
    assert_eq!(
        incidents.len(),
        2,
        "{b}: one incident per alert: {incidents:?}"
    );
    for incident in incidents {
        let detail = super::detail(&*a, incident.id).await;
        assert_eq!(
            detail["runs"].as_array().unwrap().len(),
            1,
            "{b}: one run: {detail}"
        );
        assert_eq!(
            detail["alerts"].as_array().unwrap().len(),
            1,
            "{b}: {detail}"
        );
    }
}

/// Two replicas recording the same entries at the same moment: one records (the other is told
/// it is `Contended`, or finds them already recorded); every entry is recorded once.
async fn replicas_recording_at_once_record_each_entry_once(b: Backend) {
    let (a, other) = b.replicas().await;
    let alerts: Vec<_> = (0..40)
        .map(|i| {
            firing(
                "HighMemoryUsage",
                &format!("race-{i}"),
                &format!("c0000000000{i:05}"),
                "2026-11-27T05:00:00Z",
            )
        })
        .collect();
    a.append_journal(&alerts).await.unwrap();
    let entries = a.pending_journal(100).await.unwrap();
    let plans: Vec<AlertPlan> = entries.iter().map(plan_for).collect();
    let mut recorded_once = 0;
    for (chunk, chunk_plans) in entries.chunks(4).zip(plans.chunks(4)) {
        let batch: Vec<_> = chunk.iter().zip(chunk_plans).collect();
        let (first, second) = tokio::join!(
            a.record_alerts(&batch, now()),
            other.record_alerts(&batch, now())
        );
        for answer in [first, second] {
            match answer {
                Ok(recorded) => {
                    recorded_once += recorded.iter().filter(|r| !r.already_recorded).count();
                }
                Err(StoreError::Contended) => {}
                Err(e) => panic!("{b}: {e}"),
            }
        }
    }
    assert_eq!(
        recorded_once, 40,
        "{b}: each entry recorded by exactly one replica"
    );
    assert_eq!(a.list_incidents(false, 100).await.unwrap().len(), 40, "{b}");
    assert!(a.pending_journal(100).await.unwrap().is_empty(), "{b}");
}
