//! What `replay` reads back: the alerts recorded since a time, each with whether it opened
//! its incident and the runs it started, and every budget use with its run.

use std::time::Duration;

use alert_responder::alert::Status;
use alert_responder::limits::{Admission, Budget};

use super::{firing, journal_and_record, now, resolved, Backend};

on_both_backends!(alerts_since_bring_their_runs_and_budget_uses_their_run);

async fn alerts_since_bring_their_runs_and_budget_uses_their_run(b: Backend) {
    let store = b.open().await;
    let before = now() - time::Duration::SECOND;
    let opened = journal_and_record(
        &*store,
        firing(
            "HighMemoryUsage",
            "h-a",
            "f0000000000000h1",
            "2026-11-27T05:00:00Z",
        ),
    )
    .await;
    let run = opened.run_ids[0];
    let budget = Budget {
        cooldown: Duration::from_secs(60),
        max: 3,
        per: Duration::from_secs(3600),
    };
    let spent = store
        .consume_budget("high-memory", "h-a", "restart", &budget, run, now())
        .await
        .unwrap();
    assert_eq!(spent, Admission::Allowed, "{b}");
    journal_and_record(
        &*store,
        resolved(
            "HighMemoryUsage",
            "h-a",
            "f0000000000000h1",
            "2026-11-27T05:00:00Z",
        ),
    )
    .await;

    let alerts = store.alerts_since(before).await.unwrap();
    assert_eq!(alerts.len(), 2, "{b}: {alerts:#?}");
    let (first, second) = (&alerts[0], &alerts[1]);
    assert!(first.opened, "{b}: the firing alert opened its incident");
    assert_eq!(first.run_ids, [run], "{b}");
    assert_eq!(first.incident_id, opened.incident_id.unwrap(), "{b}");
    assert_eq!(first.alert.labels["container"], "h-a", "{b}");
    assert!(first.received_at >= before, "{b}");
    assert_eq!(second.alert.status, Status::Resolved, "{b}");
    assert!(
        !second.opened && second.run_ids.is_empty(),
        "{b}: {second:#?}"
    );

    let later = now() + time::Duration::SECOND * 2;
    assert!(
        store.alerts_since(later).await.unwrap().is_empty(),
        "{b}: nothing was recorded after `later`"
    );

    let uses = store
        .budget_uses_since(before.unix_timestamp())
        .await
        .unwrap();
    assert_eq!(uses.len(), 1, "{b}: {uses:?}");
    assert_eq!(
        (uses[0].responder.as_str(), uses[0].target.as_str()),
        ("high-memory", "h-a"),
        "{b}"
    );
    assert_eq!(
        (uses[0].step.as_str(), uses[0].run_id),
        ("restart", Some(run)),
        "{b}"
    );
    assert!(store
        .budget_uses_since(later.unix_timestamp())
        .await
        .unwrap()
        .is_empty());
}
