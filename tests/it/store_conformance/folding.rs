//! Storms of alerts that are not acted on: unrouted and refused alerts fold by alert name and
//! target like acted-on ones, an alert that acts never folds into an incident without a run,
//! and a parent edit supersedes the edits still waiting, so a storm costs Slack one edit.

use alert_responder::alert::Alert;
use alert_responder::store::{
    AlertPlan, DecisionKind, MessageKind, NewMessage, Recorded, RunPlan, Store,
};

use super::{firing, journal_and_record_with, now, Backend};

on_both_backends!(
    unrouted_and_refused_alerts_fold_by_name_and_target,
    an_alert_that_acts_never_folds_into_an_incident_without_a_run,
    a_parent_edit_supersedes_the_edits_still_waiting,
);

/// What dispatch plans for an alert no route matches: nothing to run, the target its labels name.
pub fn unrouted(target: Option<&str>) -> AlertPlan {
    AlertPlan::Firing {
        runs: vec![],
        declines: vec![(DecisionKind::NoRoute, "no route matches".into())],
        target: target.map(str::to_owned),
    }
}

/// What dispatch plans for a target outside the responder's allow-list.
fn refused(target: &str) -> AlertPlan {
    AlertPlan::Firing {
        runs: vec![],
        declines: vec![(
            DecisionKind::TargetRefused,
            format!("{target} is outside high-memory's allow-list"),
        )],
        target: Some(target.to_owned()),
    }
}

/// Journals `alert` and records it with `plan`, as dispatch does.
async fn record(store: &dyn Store, alert: Alert, plan: &AlertPlan) -> Recorded {
    journal_and_record_with(store, alert, |_| plan.clone()).await
}

/// `n` distinct alerts (fingerprints) named `name` on `container`, each recorded with `plan`.
async fn storm(
    store: &dyn Store,
    name: &str,
    container: &str,
    n: u32,
    plan: &AlertPlan,
) -> Vec<Recorded> {
    let mut recorded = Vec::new();
    for i in 0..n {
        // Distinct per alert, and per name, so storms of several names never share one.
        let base = name
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        let fingerprint = format!("{base:08x}{i:08x}");
        let alert = firing(name, container, &fingerprint, "2026-11-27T05:00:00Z");
        recorded.push(record(store, alert, plan).await);
    }
    recorded
}

async fn unrouted_and_refused_alerts_fold_by_name_and_target(b: Backend) {
    let store = b.open().await;
    for (name, plan) in [
        ("Unrouted", unrouted(Some("f-a"))),
        ("Refused", refused("f-a")),
        // Nothing named a target: the alert name alone keys the fold.
        ("Nameless", unrouted(None)),
    ] {
        let recorded = storm(&*store, name, "f-a", 5, &plan).await;
        assert!(
            recorded[0].opened && !recorded[0].folded,
            "{b} {name}: {recorded:?}"
        );
        let incident = recorded[0].incident_id;
        for later in &recorded[1..] {
            assert_eq!(later.incident_id, incident, "{b} {name}: one incident");
            assert!(later.folded && !later.opened, "{b} {name}: {later:?}");
        }
        let view = store
            .incident_view(incident.unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(view.firing, 5, "{b} {name}: every alert is counted");
        assert!(!view.posted, "{b} {name}: nothing queued for Slack yet");
    }
    let open = store.list_incidents(true, 10).await.unwrap();
    assert_eq!(open.len(), 3, "{b}: one incident per name: {open:?}");
}

async fn an_alert_that_acts_never_folds_into_an_incident_without_a_run(b: Backend) {
    let store = b.open().await;
    let noise = storm(&*store, "HighMemoryUsage", "f-b", 1, &unrouted(Some("f-b"))).await;
    let acting = firing(
        "HighMemoryUsage",
        "f-b",
        "f0000000000000b1",
        "2026-11-27T05:00:00Z",
    );
    let plan = plan_for_alert(&acting);
    let real = record(&*store, acting, &plan).await;
    assert!(
        real.opened,
        "{b}: real work opens its own incident: {real:?}"
    );
    assert_ne!(real.incident_id, noise[0].incident_id, "{b}");
    assert_eq!(real.run_ids.len(), 1, "{b}: and runs");
    // Noise after it folds into an open incident of its name and target, never opens a third.
    let noise_again = firing(
        "HighMemoryUsage",
        "f-b",
        "f0000000000000b2",
        "2026-11-27T05:00:00Z",
    );
    let later = record(&*store, noise_again, &unrouted(Some("f-b"))).await;
    assert!(later.folded, "{b}: {later:?}");
    assert!(
        [real.incident_id, noise[0].incident_id].contains(&later.incident_id),
        "{b}"
    );
}

/// A `high-memory` run on the alert's container, as a route to it plans.
fn plan_for_alert(alert: &Alert) -> AlertPlan {
    let target = alert.labels["container"].clone();
    AlertPlan::Firing {
        runs: vec![RunPlan {
            responder: "high-memory".into(),
            target: target.clone(),
            mode: alert_responder::responders::Mode::Live,
            preempts: false,
        }],
        declines: vec![],
        target: Some(target),
    }
}

async fn a_parent_edit_supersedes_the_edits_still_waiting(b: Backend) {
    let (queuer, sender) = b.replicas().await;
    let incident = storm(&*queuer, "Edited", "f-c", 1, &unrouted(Some("f-c"))).await[0]
        .incident_id
        .unwrap();
    let queue = |kind: MessageKind, text: &str| {
        let message = NewMessage {
            incident_id: incident,
            kind,
            text: text.into(),
            deliver: true,
            channel: None,
        };
        let queuer = queuer.clone();
        async move { queuer.enqueue_message(&message, now()).await.unwrap() }
    };
    let parent = queue(MessageKind::Parent, "parent").await;
    let view = queuer.incident_view(incident).await.unwrap().unwrap();
    assert!(view.posted, "{b}: a parent is queued");
    sender
        .message_sent(parent, "C1", "1700000000.000100", now())
        .await
        .unwrap();
    queue(MessageKind::Update, "edit 1").await;
    queue(MessageKind::Reply, "reply").await;
    queue(MessageKind::Update, "edit 2").await;
    let head = sender.due_messages(now(), 10).await.unwrap();
    assert_eq!(head.len(), 1, "{b}");
    assert_eq!(
        head[0].text, "reply",
        "{b}: edit 1 was superseded by edit 2"
    );
    sender
        .message_sent(head[0].id, "C1", "1700000000.000200", now())
        .await
        .unwrap();
    let head = sender.due_messages(now(), 10).await.unwrap();
    assert_eq!(head[0].text, "edit 2", "{b}");
    // Claimed for sending, it is not superseded: it finishes, then the newer edit follows.
    assert!(
        sender.claim_message(head[0].id, now()).await.unwrap(),
        "{b}"
    );
    queue(MessageKind::Update, "edit 3").await;
    sender
        .message_sent(head[0].id, "C1", "1700000000.000100", now())
        .await
        .unwrap();
    let head = sender.due_messages(now(), 10).await.unwrap();
    assert_eq!(head.len(), 1, "{b}");
    assert_eq!(head[0].text, "edit 3", "{b}");
}
