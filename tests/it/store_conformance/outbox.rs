//! The Slack outbox: each incident's messages leave one at a time, in the order queued, by
//! whichever replica sends; a failure holds its thread back until the retry or the give-up.

use std::time::Duration;

use alert_responder::store::{MessageKind, NewMessage, OutboxMessage, Store};

use super::{incident_with_run, now, Backend};

on_both_backends!(
    each_incidents_messages_leave_one_at_a_time_in_order,
    a_failed_message_waits_for_its_retry_and_a_given_up_one_lets_the_next_go,
);

async fn queue(store: &dyn Store, incident_id: i64, kind: MessageKind, text: &str) -> i64 {
    let message = NewMessage {
        incident_id,
        kind,
        text: text.into(),
        deliver: true,
        channel: None,
    };
    store.enqueue_message(&message, now()).await.unwrap()
}

/// The texts of the due messages, sorted: the order across incidents is no promise.
fn texts(due: &[OutboxMessage]) -> Vec<&str> {
    let mut texts: Vec<&str> = due.iter().map(|m| m.text.as_str()).collect();
    texts.sort_unstable();
    texts
}

/// The due message of `incident`.
fn of(due: &[OutboxMessage], incident: i64) -> &OutboxMessage {
    due.iter().find(|m| m.incident_id == incident).unwrap()
}

async fn each_incidents_messages_leave_one_at_a_time_in_order(b: Backend) {
    let (a, sender) = b.replicas().await;
    let (first, _) = incident_with_run(&*a, "o-a", "9000000000000001").await;
    let (second, _) = incident_with_run(&*a, "o-b", "9000000000000002").await;
    let parent = queue(&*a, first, MessageKind::Parent, "first: parent").await;
    queue(&*a, first, MessageKind::Reply, "first: reply 1").await;
    queue(&*sender, first, MessageKind::Reply, "first: reply 2").await;
    queue(&*a, second, MessageKind::Parent, "second: parent").await;

    let due = sender.due_messages(now(), 10).await.unwrap();
    assert_eq!(
        texts(&due),
        ["first: parent", "second: parent"],
        "{b}: the oldest of each"
    );
    assert_eq!(
        of(&due, first).thread,
        None,
        "{b}: no thread before the parent is posted"
    );

    sender
        .message_sent(parent, "C1", "1700000000.000100", now())
        .await
        .unwrap();
    let due = sender.due_messages(now(), 10).await.unwrap();
    assert_eq!(texts(&due), ["first: reply 1", "second: parent"], "{b}");
    assert_eq!(
        of(&due, first).thread,
        Some(("C1".to_owned(), "1700000000.000100".to_owned())),
        "{b}: the parent's channel and ts are the incident's thread"
    );
    sender
        .message_sent(of(&due, first).id, "C1", "1700000000.000200", now())
        .await
        .unwrap();
    let due = sender.due_messages(now(), 10).await.unwrap();
    assert_eq!(texts(&due), ["first: reply 2", "second: parent"], "{b}");
}

async fn a_failed_message_waits_for_its_retry_and_a_given_up_one_lets_the_next_go(b: Backend) {
    let store = b.open().await;
    let (incident, _) = incident_with_run(&*store, "o-c", "9000000000000003").await;
    let parent = queue(&*store, incident, MessageKind::Parent, "parent").await;
    queue(&*store, incident, MessageKind::Reply, "reply").await;

    let retry_at = now() + Duration::from_secs(60);
    store
        .message_failed(parent, "slack down", Some(retry_at))
        .await
        .unwrap();
    assert!(
        store.due_messages(now(), 10).await.unwrap().is_empty(),
        "{b}: nothing of the incident before the retry"
    );
    let due = store
        .due_messages(retry_at + Duration::from_secs(1), 10)
        .await
        .unwrap();
    assert_eq!(texts(&due), ["parent"], "{b}: the retry comes first");
    assert_eq!(due[0].attempts, 1, "{b}");

    store
        .message_failed(parent, "channel_not_found", None)
        .await
        .unwrap();
    let due = store.due_messages(now(), 10).await.unwrap();
    assert_eq!(
        texts(&due),
        ["reply"],
        "{b}: a given-up message lets the next go"
    );
}
