//! The Grafana outbox: one creation and one completion per run, whatever reports them twice;
//! a completion waits for its run's creation and learns the annotation's id from it. And the
//! files shared in a thread (charts), which keep their place among its replies.

use alert_responder::store::{AnnotationKind, NewAnnotation, Store};
use serde_json::json;

use super::{incident_with_run, now, Backend};

on_both_backends!(one_annotation_per_run_completed_with_the_id_its_creation_got);

async fn queued(store: &dyn Store, incident: i64, run: i64, kind: AnnotationKind) -> bool {
    let annotation = NewAnnotation {
        incident_id: incident,
        run_id: run,
        kind,
        body: json!({ "text": kind.as_str(), "time": 1_000 }),
    };
    store
        .enqueue_annotation(&annotation, now())
        .await
        .unwrap()
        .is_some()
}

async fn one_annotation_per_run_completed_with_the_id_its_creation_got(b: Backend) {
    let store = b.open().await;
    let store = &*store;
    let (incident, run) = incident_with_run(store, "g-a", "9000000000000001").await;
    assert!(
        queued(store, incident, run, AnnotationKind::Create).await,
        "{b}"
    );
    assert!(
        !queued(store, incident, run, AnnotationKind::Create).await,
        "{b}: one creation per run"
    );
    assert!(
        queued(store, incident, run, AnnotationKind::Complete).await,
        "{b}"
    );
    assert!(
        !queued(store, incident, run, AnnotationKind::Complete).await,
        "{b}: one completion per run"
    );
    assert!(
        store.due_pagerduty(now(), 10).await.unwrap().is_empty(),
        "{b}: PagerDuty's outbox is its own"
    );

    let due = store.due_annotations(now(), 10).await.unwrap();
    assert_eq!(due.len(), 1, "{b}: the oldest of the incident: {due:?}");
    let creation = &due[0];
    assert_eq!(
        (creation.kind, creation.run_id),
        (AnnotationKind::Create, run),
        "{b}"
    );
    assert_eq!(creation.body["text"], "create", "{b}");
    assert_eq!(
        (creation.annotation_id, creation.thread.clone()),
        (None, None),
        "{b}"
    );
    assert!(
        store.claim_message(creation.id, now()).await.unwrap(),
        "{b}"
    );
    store
        .annotation_sent(creation.id, Some(42), now())
        .await
        .unwrap();

    let due = store.due_annotations(now(), 10).await.unwrap();
    assert_eq!(due.len(), 1, "{b}: {due:?}");
    let completion = &due[0];
    assert_eq!(completion.kind, AnnotationKind::Complete, "{b}");
    assert_eq!(completion.annotation_id, Some(42), "{b}: the creation's id");
    assert_eq!(
        completion.start.as_ref().map(|s| s["time"].clone()),
        Some(json!(1_000)),
        "{b}: the creation's fields"
    );
    store
        .annotation_sent(completion.id, None, now())
        .await
        .unwrap();
    assert!(
        store.due_annotations(now(), 10).await.unwrap().is_empty(),
        "{b}"
    );
}

on_both_backends!(a_file_waits_for_its_turn_in_the_thread_and_comes_back_whole);

/// A chart is a reply like the others: queued after a reply, due after it, its bytes intact.
async fn a_file_waits_for_its_turn_in_the_thread_and_comes_back_whole(b: Backend) {
    use alert_responder::store::{MessageKind, NewMessage};
    let store = b.open().await;
    let store = &*store;
    let (incident, _) = incident_with_run(store, "g-f", "9000000000000002").await;
    let message = |text: &str| NewMessage {
        incident_id: incident,
        kind: MessageKind::Reply,
        text: text.into(),
        deliver: true,
        channel: None,
    };
    let reply = store
        .enqueue_message(&message("done"), now())
        .await
        .unwrap();
    let png: Vec<u8> = (0..=255).cycle().take(5_000).collect();
    let chart = store
        .enqueue_file(&message("Bounce: mem > 90"), &png, now())
        .await
        .unwrap();
    assert_eq!(
        store.latest_chart(incident).await.unwrap(),
        Some(("Bounce: mem > 90".to_owned(), png.clone())),
        "{b}: the page's chart"
    );
    let due = store.due_messages(now(), 10).await.unwrap();
    assert_eq!((due.len(), due[0].id), (1, reply), "{b}: the reply first");
    assert_eq!(due[0].file, None, "{b}");
    store.message_sent(reply, "C1", "1.1", now()).await.unwrap();
    let due = store.due_messages(now(), 10).await.unwrap();
    assert_eq!(due[0].id, chart, "{b}");
    assert_eq!(due[0].kind, MessageKind::Reply, "{b}");
    assert_eq!(due[0].text, "Bounce: mem > 90", "{b}");
    assert_eq!(
        due[0].file.as_deref(),
        Some(png.as_slice()),
        "{b}: the bytes intact"
    );
}
