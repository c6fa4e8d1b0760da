//! Chat-ops records: mode overrides set through one replica are what every replica reads,
//! and the audit keeps every attempt, newest first.

use alert_responder::store::NewAudit;

use super::{now, Backend};

on_both_backends!(
    a_mode_set_through_one_replica_is_read_by_the_other,
    the_audit_keeps_every_attempt_newest_first,
);

async fn a_mode_set_through_one_replica_is_read_by_the_other(b: Backend) {
    let (a, other) = b.replicas().await;
    assert!(other.mode_overrides().await.unwrap().is_empty(), "{b}");
    a.set_mode_override(None, "dry-run", "alice", now())
        .await
        .unwrap();
    a.set_mode_override(Some("high-memory"), "live", "bob", now())
        .await
        .unwrap();
    other
        .set_mode_override(None, "live", "carol", now())
        .await
        .unwrap();

    let mut rows = a.mode_overrides().await.unwrap();
    rows.sort_by(|x, y| x.scope.cmp(&y.scope));
    let seen: Vec<_> = rows
        .iter()
        .map(|r| (r.scope.as_deref(), r.mode.as_str(), r.set_by.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (None, "live", "carol"),
            (Some("high-memory"), "live", "bob")
        ],
        "{b}: one override per scope, the latest one"
    );
}

async fn the_audit_keeps_every_attempt_newest_first(b: Backend) {
    let (a, other) = b.replicas().await;
    for (store, command, outcome) in [(&a, "run", "allowed"), (&other, "mode", "refused")] {
        let entry = NewAudit {
            user_id: "U123".into(),
            user_name: "alice".into(),
            command: command.into(),
            args: "high-memory web-1".into(),
            outcome: alert_responder::store::AuditOutcome::parse(outcome).unwrap(),
            detail: format!("{command} {outcome}"),
        };
        store.record_audit(&entry, now()).await.unwrap();
    }
    let audit = a.audit(10).await.unwrap();
    let seen: Vec<_> = audit
        .iter()
        .map(|r| (r.command.as_str(), r.outcome.as_str()))
        .collect();
    assert_eq!(
        seen,
        [("mode", "refused"), ("run", "allowed")],
        "{b}: newest first"
    );
    assert_eq!(audit[0].user_id, "U123", "{b}");
    assert_eq!(a.audit(1).await.unwrap().len(), 1, "{b}: the limit holds");
}
