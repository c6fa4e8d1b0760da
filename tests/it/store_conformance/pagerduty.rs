//! The PagerDuty outbox: one trigger per incident (even when two replicas queue it at once),
//! a resolve only after it and once, notes always; the oldest pending of each incident is due.

use alert_responder::store::{MessageKind, NewMessage, PagerDutyKind, PagerDutyMessage, Store};

use super::{incident_with_run, now, Backend};

on_both_backends!(
    one_trigger_per_incident_and_a_resolve_only_after_it_in_order,
    two_replicas_queueing_a_trigger_at_once_queue_one,
);

fn message(incident_id: i64, kind: PagerDutyKind) -> PagerDutyMessage {
    PagerDutyMessage {
        id: 0,
        incident_id,
        kind,
        body: serde_json::json!({ "dedup_key": format!("k{incident_id}") }),
        attempts: 0,
    }
}

async fn queued(store: &dyn Store, incident: i64, kind: PagerDutyKind) -> bool {
    let message = message(incident, kind);
    store
        .enqueue_pagerduty(&message, now())
        .await
        .unwrap()
        .is_some()
}

async fn one_trigger_per_incident_and_a_resolve_only_after_it_in_order(b: Backend) {
    let store = b.open().await;
    let (first, _) = incident_with_run(&*store, "p-a", "8000000000000001").await;
    let (second, _) = incident_with_run(&*store, "p-b", "8000000000000002").await;
    let store = &*store;
    assert!(
        !queued(store, first, PagerDutyKind::Resolve).await,
        "{b}: nothing to resolve yet"
    );
    assert!(queued(store, first, PagerDutyKind::Trigger).await, "{b}");
    assert!(
        !queued(store, first, PagerDutyKind::Trigger).await,
        "{b}: one trigger per incident"
    );
    assert!(queued(store, first, PagerDutyKind::Resolve).await, "{b}");
    assert!(
        !queued(store, first, PagerDutyKind::Resolve).await,
        "{b}: one resolve"
    );
    assert!(queued(store, second, PagerDutyKind::Note).await, "{b}");
    assert!(
        queued(store, second, PagerDutyKind::Note).await,
        "{b}: notes are never skipped"
    );

    // A Slack message of the same incident neither blocks nor is picked up here.
    let slack = NewMessage {
        incident_id: first,
        kind: MessageKind::Parent,
        text: "parent".into(),
        deliver: true,
        channel: None,
    };
    store.enqueue_message(&slack, now()).await.unwrap();
    let due = store.due_pagerduty(now(), 10).await.unwrap();
    let kinds: Vec<_> = due.iter().map(|m| (m.incident_id, m.kind)).collect();
    assert_eq!(
        kinds,
        [
            (first, PagerDutyKind::Trigger),
            (second, PagerDutyKind::Note)
        ],
        "{b}: the oldest pending of each incident"
    );
    assert_eq!(due[0].body["dedup_key"], format!("k{first}"), "{b}");
    let slack_due = store.due_messages(now(), 10).await.unwrap();
    assert_eq!(slack_due.len(), 1, "{b}: {slack_due:?}");
    assert_eq!(slack_due[0].text, "parent", "{b}");

    store.pagerduty_sent(due[0].id, now()).await.unwrap();
    let due = store.due_pagerduty(now(), 10).await.unwrap();
    assert_eq!(
        due[0].kind,
        PagerDutyKind::Resolve,
        "{b}: the resolve waited for its trigger"
    );
}

async fn two_replicas_queueing_a_trigger_at_once_queue_one(b: Backend) {
    let (a, other) = b.replicas().await;
    for i in 0..5 {
        let (incident, _) =
            incident_with_run(&*a, &format!("p-c{i}"), &format!("800000000000001{i}")).await;
        let (x, y) = tokio::join!(
            queued(&*a, incident, PagerDutyKind::Trigger),
            queued(&*other, incident, PagerDutyKind::Trigger),
        );
        assert!(
            x ^ y,
            "{b}: exactly one of the two is queued (got {x}, {y})"
        );
    }
    let due = a.due_pagerduty(now(), 100).await.unwrap();
    assert_eq!(due.len(), 5, "{b}: one trigger per incident: {due:?}");
}
