//! The PostgreSQL store against a real server, two replicas on one database. Runs only when
//! `RESPONDER_TEST_POSTGRES_URL` names a server whose user may create databases (each test
//! gets a fresh one); skipped otherwise, so `cargo test` needs no PostgreSQL.

use std::time::Duration;

use sqlx::Connection;
use time::OffsetDateTime;

use super::PostgresStore;
use crate::alert::{Alert, Source, Status};
use crate::limits::Budget;
use crate::responders::Mode;
use crate::store::*;

/// A fresh database on the test server, or `None` when no server is configured.
async fn database(name: &str) -> Option<String> {
    let url = std::env::var("RESPONDER_TEST_POSTGRES_URL").ok()?;
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    let db = format!("responder_test_{name}_{}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let (base, query) = url
        .split_once('?')
        .map_or((url.as_str(), ""), |(b, q)| (b, q));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    Some(format!(
        "{base}/{db}{}",
        if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        }
    ))
}

fn alert(container: &str, fingerprint: &str, status: Status) -> Alert {
    let labels = [
        ("alertname", "HighMemoryUsage"),
        ("container", container),
        ("severity", "warning"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Alert {
        source: Source::Alertmanager,
        fingerprint: fingerprint.into(),
        status,
        labels,
        annotations: Default::default(),
        starts_at: time::macros::datetime!(2026-11-27 05:00 UTC),
        ends_at: (status == Status::Resolved)
            .then_some(time::macros::datetime!(2026-11-27 05:10 UTC)),
        generator_url: None,
    }
}

fn firing(entry: &JournalEntry) -> AlertPlan {
    let target = entry.alert.labels["container"].clone();
    AlertPlan::Firing {
        runs: vec![RunPlan {
            responder: "high-memory".into(),
            target: target.clone(),
            mode: Mode::Live,
        }],
        declines: vec![],
        target: Some(target),
    }
}

async fn replicas(name: &str) -> Option<(PostgresStore, PostgresStore)> {
    let url = database(name).await?;
    let options = StoreOptions {
        lease: Duration::from_secs(15),
        ..StoreOptions::default()
    };
    // Both at once: the migrator's lock makes the second wait for the first.
    let (a, b) = tokio::join!(
        PostgresStore::connect(&url, &options),
        PostgresStore::connect(&url, &options)
    );
    Some((a.unwrap(), b.unwrap()))
}

#[tokio::test]
async fn two_replicas_record_claim_spend_and_reap_once() {
    let Some((a, b)) = replicas("replicas").await else {
        return;
    };
    let now = OffsetDateTime::now_utc();
    let alerts = [
        alert("web", "f1", Status::Firing),
        alert("web", "f1", Status::Firing),
        alert("db", "f2", Status::Firing),
    ];
    assert_eq!(
        a.append_journal(&alerts).await.unwrap(),
        [true, false, true]
    );
    assert_eq!(b.append_journal(&alerts[..1]).await.unwrap(), [false]);
    let entries = a.pending_journal(10).await.unwrap();
    assert_eq!(entries.len(), 2);
    let plans: Vec<_> = entries.iter().map(firing).collect();
    let batch: Vec<_> = entries.iter().zip(&plans).collect();
    let recorded = a.record_alerts(&batch, now).await.unwrap();
    assert!(recorded.iter().all(|r| r.opened && r.run_ids.len() == 1));
    let again = b.record_alerts(&batch, now).await.unwrap();
    assert!(again
        .iter()
        .all(|r| r.already_recorded && r.incident_id.is_none()));
    let (web, db) = (recorded[0].run_ids[0], recorded[1].run_ids[0]);

    assert_eq!(
        b.claim_run(web, 5, now).await.unwrap(),
        Claim::Gone,
        "A's run"
    );
    assert_eq!(a.claim_run(web, 1, now).await.unwrap(), Claim::Started);
    assert_eq!(a.claim_run(db, 1, now).await.unwrap(), Claim::Full);
    assert_eq!(a.claim_run(web, 5, now).await.unwrap(), Claim::Gone);

    let budget = Budget::default();
    let spend = ActionSpend {
        responder: "high-memory",
        target: "web",
        step: "restart",
        budget: &budget,
        run_id: web,
        actions_per_minute: 10,
    };
    assert_eq!(a.spend_action(&spend, now).await.unwrap(), Spend::Allowed);
    assert!(matches!(
        a.spend_action(&spend, now).await.unwrap(),
        Spend::Budget(_)
    ));
    assert!(matches!(
        b.spend_action(&spend, now).await.unwrap(),
        Spend::Fenced(_)
    ));
    let step = NewStep {
        run_id: web,
        step_id: "restart".into(),
        action: "docker_restart".into(),
        destructive: true,
    };
    a.step_started(&step, now).await.unwrap();
    assert!(a.renew_leases(now).await.unwrap().is_empty());

    // A goes silent; past its lease, both B and A's successor reap at once: once each run.
    let later = now + time::Duration::seconds(60);
    let c = PostgresStore::connect(&database_url(&a).await, &StoreOptions::default())
        .await
        .unwrap();
    let (rb, rc) = tokio::join!(
        b.recover_runs(RecoverScope::Abandoned, later),
        c.recover_runs(RecoverScope::Abandoned, later)
    );
    let (rb, rc) = (rb.unwrap(), rc.unwrap());
    let interrupted: Vec<_> = rb.interrupted.iter().chain(&rc.interrupted).collect();
    assert_eq!(interrupted.len(), 1, "{interrupted:?}");
    assert_eq!(interrupted[0].run_id, web);
    assert_eq!(interrupted[0].holder.as_deref(), Some(a.owner()));
    assert_eq!(interrupted[0].last_step.as_deref(), Some("restart"));
    let pending: Vec<_> = rb.pending.iter().chain(&rc.pending).collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].run_id, db);
    assert!(matches!(
        a.spend_action(&spend, later).await.unwrap(),
        Spend::Fenced(_)
    ));

    let detail = b
        .incident_detail(recorded[0].incident_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.runs[0].state, "interrupted");
    assert!(detail.runs[0]
        .summary
        .as_deref()
        .unwrap_or_default()
        .contains(a.owner()));
    assert_eq!(detail.runs[0].steps[0].state, "unknown");
    assert!(detail.runs[0].steps[0].destructive);
    assert_eq!(detail.alerts.len(), 1);

    // The resolve asks the holder of the remaining run to cancel.
    let taker = if rb.pending.is_empty() { &c } else { &b };
    taker
        .append_journal(&[alert("db", "f2", Status::Resolved)])
        .await
        .unwrap();
    let entries = taker.pending_journal(10).await.unwrap();
    let resolved = taker
        .record_alert(&entries[0], &AlertPlan::Resolve, later)
        .await
        .unwrap();
    assert!(resolved.resolved);
    assert_eq!(resolved.active_runs, [db]);
    assert_eq!(taker.renew_leases(later).await.unwrap(), [db]);
    let gauges = a.gauges(later).await.unwrap();
    assert_eq!((gauges.journal_pending, gauges.incidents_open), (0, 1));
    assert_eq!(a.list_incidents(true, 10).await.unwrap().len(), 1);
    for s in [a, b, c] {
        s.close().await;
    }
}

async fn database_url(store: &PostgresStore) -> String {
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    let url = std::env::var("RESPONDER_TEST_POSTGRES_URL").unwrap_or_default();
    let base = url.split('?').next().unwrap_or_default();
    format!("{}/{name}", base.rsplit_once('/').map_or(base, |(b, _)| b))
}

#[tokio::test]
async fn roles_pagerduty_approvals_and_chatops_hold_across_replicas() {
    let Some((a, b)) = replicas("roles").await else {
        return;
    };
    let now = OffsetDateTime::now_utc();
    assert!(a.lead("outbox", now).await.unwrap());
    assert!(!b.lead("outbox", now).await.unwrap());
    assert!(a.lead("outbox", now).await.unwrap(), "renewed");
    let later = now + time::Duration::seconds(60);
    assert!(
        b.lead("outbox", later).await.unwrap(),
        "taken over once lapsed"
    );
    b.resign("outbox").await.unwrap();
    assert!(a.lead("outbox", later).await.unwrap());

    a.append_journal(&[alert("web", "f1", Status::Firing)])
        .await
        .unwrap();
    let entries = a.pending_journal(1).await.unwrap();
    let recorded = a
        .record_alert(&entries[0], &firing(&entries[0]), now)
        .await
        .unwrap();
    let incident = recorded.incident_id.unwrap();
    let message = |kind| PagerDutyMessage {
        id: 0,
        incident_id: incident,
        kind,
        body: serde_json::json!({ "k": 1 }),
        attempts: 0,
    };
    assert!(a
        .enqueue_pagerduty(&message(PagerDutyKind::Resolve), now)
        .await
        .unwrap()
        .is_none());
    let trigger = message(PagerDutyKind::Trigger);
    let (x, y) = tokio::join!(
        a.enqueue_pagerduty(&trigger, now),
        b.enqueue_pagerduty(&trigger, now)
    );
    assert_eq!(x.unwrap().is_some() as u8 + y.unwrap().is_some() as u8, 1);
    assert!(a
        .enqueue_pagerduty(&message(PagerDutyKind::Resolve), now)
        .await
        .unwrap()
        .is_some());
    assert!(b
        .enqueue_pagerduty(&message(PagerDutyKind::Resolve), now)
        .await
        .unwrap()
        .is_none());
    assert_eq!(a.due_pagerduty(now, 10).await.unwrap().len(), 1);

    let approval = a
        .request_approval(
            &NewApproval {
                incident_id: incident,
                run_id: recorded.run_ids[0],
                step_id: "restart".into(),
                plan: "restart web".into(),
                expires_at: later,
            },
            now,
        )
        .await
        .unwrap();
    let (x, y) = tokio::join!(
        a.decide_approval_by_id(approval, true, "ann", now),
        b.decide_approval(incident, false, "bob", now)
    );
    assert_eq!(x.unwrap().is_some() as u8 + y.unwrap().is_some() as u8, 1);
    assert_ne!(
        a.approval(approval).await.unwrap().unwrap().state,
        "pending"
    );

    b.set_mode_override(Some("zeta"), "dry-run", "ann", now)
        .await
        .unwrap();
    b.set_mode_override(None, "live", "ann", now).await.unwrap();
    b.set_mode_override(Some("Alpha"), "live", "ann", now)
        .await
        .unwrap();
    let scopes: Vec<_> = a
        .mode_overrides()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.scope)
        .collect();
    assert_eq!(scopes, [None, Some("Alpha".into()), Some("zeta".into())]);
    let m = NewMessage {
        incident_id: incident,
        kind: MessageKind::Parent,
        text: "hello".into(),
        deliver: true,
    };
    let parent = a.enqueue_message(&m, now).await.unwrap();
    a.message_sent(parent, "C1", "1.2", now).await.unwrap();
    let view = b.incident_view(incident).await.unwrap().unwrap();
    assert_eq!(view.incident.id, incident);
    assert_eq!(
        a.incident_by_fingerprint("f1").await.unwrap(),
        Some(incident)
    );

    // Read-only: reads work, writes fail.
    let ro = PostgresStore::open_read_only(&database_url(&a).await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ro.list_incidents(false, 5).await.unwrap().len(), 1);
    assert!(ro
        .append_journal(&[alert("x", "f9", Status::Firing)])
        .await
        .is_err());
}
