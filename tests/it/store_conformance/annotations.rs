//! The Grafana outbox: one creation and one completion per run, whatever reports them twice;
//! a completion waits for its run's creation and learns the annotation's id from it.

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
