//! Recording journal entries on PostgreSQL: incidents, alerts, runs and decisions.
//!
//! Recording is serialized across replicas with an advisory lock, so per-fingerprint order,
//! folding and joining read what the previous recording wrote, exactly as with SQLite's one
//! writer; an entry another replica recorded meanwhile is left alone.

use std::collections::HashSet;

use sqlx::{PgConnection, PgPool, Postgres};

use super::{journal, lock, to_json, ts, Holder, StoreError, RELAXED};
use crate::alert::Alert;
use crate::store::*;

/// See [`Store::record_alerts`].
pub(super) async fn record_alerts(
    pool: &PgPool,
    batch: &[(&JournalEntry, &AlertPlan)],
    now: &str,
    holder: Holder<'_>,
) -> Result<Vec<Recorded>, StoreError> {
    let mut tx = pool.begin().await?;
    // One replica records at a time; the others do not queue behind it to plan and then throw
    // away the same entries: the one recording drains the whole journal, theirs included.
    let (recording, _): (bool, String) =
        sqlx::query_as(&format!("SELECT pg_try_advisory_xact_lock($1), {RELAXED}"))
            .bind(lock::RECORDER)
            .fetch_one(&mut *tx)
            .await?;
    if !recording {
        tx.rollback().await?;
        return Err(StoreError::Contended);
    }
    // Under the lock, what another replica recorded before is committed and visible.
    let ids: Vec<i64> = batch.iter().map(|(entry, _)| entry.id).collect();
    let done: HashSet<i64> =
        sqlx::query_scalar("SELECT id FROM journal WHERE id = ANY($1) AND processed <> 0")
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    let mut recorded = Vec::with_capacity(batch.len());
    let mut fresh = Vec::with_capacity(batch.len());
    for (entry, plan) in batch {
        if done.contains(&entry.id) {
            recorded.push(Recorded {
                already_recorded: true,
                ..Recorded::default()
            });
            continue;
        }
        recorded.push(record_alert(&mut tx, entry, plan, now, holder).await?);
        fresh.push(entry.id);
    }
    journal::mark_processed(&mut tx, &fresh).await?;
    tx.commit().await?;
    Ok(recorded)
}

async fn record_alert(
    tx: &mut PgConnection,
    entry: &JournalEntry,
    plan: &AlertPlan,
    now: &str,
    holder: Holder<'_>,
) -> Result<Recorded, StoreError> {
    let alert = &entry.alert;
    let open: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM incidents WHERE fingerprint = $1 AND status = 'open' ORDER BY id DESC LIMIT 1",
    )
    .bind(&alert.fingerprint)
    .fetch_optional(&mut *tx)
    .await?;
    let mut recorded = Recorded {
        incident_id: open,
        ..Recorded::default()
    };
    match plan {
        AlertPlan::Resolve => {
            let Some(incident) = open else {
                let d = NewDecision {
                    incident_id: None,
                    run_id: None,
                    kind: DecisionKind::ResolvedWithoutIncident,
                    detail: format!("{} resolved; no open incident for it", alert.name()),
                };
                insert_decision(&mut *tx, &d, now).await?;
                return Ok(recorded);
            };
            insert_alert(tx, incident, entry, now).await?;
            sqlx::query("UPDATE incidents SET status = 'resolved', resolved_at = $1 WHERE id = $2")
                .bind(now)
                .bind(incident)
                .execute(&mut *tx)
                .await?;
            recorded.resolved = true;
            // Whichever replica holds them hears of it at its next lease renewal.
            let mut active: Vec<i64> = sqlx::query_scalar(
                "UPDATE runs SET cancel_requested = 1
                 WHERE incident_id = $1 AND state IN ('pending', 'running') RETURNING id",
            )
            .bind(incident)
            .fetch_all(&mut *tx)
            .await?;
            active.sort_unstable();
            recorded.active_runs = active;
        }
        AlertPlan::Update => {
            // A note may come after the resolve: it still belongs to that incident's thread.
            let latest: Option<i64> =
                match open {
                    Some(id) => Some(id),
                    None => sqlx::query_scalar(
                        "SELECT id FROM incidents WHERE fingerprint = $1 ORDER BY id DESC LIMIT 1",
                    )
                    .bind(&alert.fingerprint)
                    .fetch_optional(&mut *tx)
                    .await?,
                };
            recorded.incident_id = latest;
            if let Some(incident) = latest {
                insert_alert(tx, incident, entry, now).await?;
            }
        }
        AlertPlan::Firing {
            runs,
            declines,
            target,
        } => {
            if open.is_none() {
                let acting = !runs.is_empty();
                if let Some(incident) = fold(tx, entry, target.as_deref(), acting, now).await? {
                    recorded.incident_id = Some(incident);
                    recorded.folded = true;
                    return Ok(recorded);
                }
            }
            let incident = match open {
                Some(id) => id,
                None => {
                    recorded.opened = true;
                    insert_incident(tx, alert, target.as_deref(), now).await?
                }
            };
            recorded.incident_id = Some(incident);
            let alert_id = insert_alert(tx, incident, entry, now).await?;
            for (index, run) in runs.iter().enumerate() {
                // In a storm the same alert re-fires while a run of it still waits for its
                // target: that run has not looked at anything yet, so it answers this alert
                // too. Without this, N alerts would queue N runs for one target.
                if !recorded.opened {
                    if let Some(waiting) = pending_run(tx, incident, &run.responder).await? {
                        recorded.coalesced.push((index, waiting));
                        let d = NewDecision {
                            incident_id: Some(incident),
                            run_id: Some(waiting),
                            kind: DecisionKind::Joined,
                            detail: format!(
                                "{} joined run {waiting} of {}, which has not started yet",
                                alert.name(),
                                run.responder
                            ),
                        };
                        insert_decision(&mut *tx, &d, now).await?;
                        continue;
                    }
                }
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO runs (incident_id, alert_id, responder, target, mode, state, created_at, owner, lease_until_unix)
                     VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8) RETURNING id",
                )
                .bind(incident)
                .bind(alert_id)
                .bind(&run.responder)
                .bind(&run.target)
                .bind(run.mode.as_str())
                .bind(now)
                .bind(holder.owner)
                .bind(holder.until)
                .fetch_one(&mut *tx)
                .await?;
                recorded.run_ids.push(id);
                if run.preempts {
                    let death = TargetDeath {
                        target: &run.target,
                        incident,
                        died_unix: alert.starts_at.unix_timestamp(),
                    };
                    let asked = ask_preemption(tx, &death).await?;
                    recorded.preempting.extend(asked);
                }
            }
            for (kind, detail) in declines {
                let d = NewDecision {
                    incident_id: Some(incident),
                    run_id: None,
                    kind: *kind,
                    detail: detail.clone(),
                };
                insert_decision(&mut *tx, &d, now).await?;
            }
        }
    }
    Ok(recorded)
}

/// See [`crate::store::Store::ask_preemption`].
pub(super) async fn ask_preemption(
    tx: &mut PgConnection,
    death: &TargetDeath<'_>,
) -> Result<Vec<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "UPDATE runs SET preempt_by = $1, preempt_died_unix = $3
         WHERE target_lock = $2 AND incident_id <> $1 AND state = 'running'
           AND NOT EXISTS (SELECT 1 FROM steps s
                           WHERE s.run_id = runs.id AND s.destructive = 1 AND s.state = 'started')
         RETURNING id",
    )
    .bind(death.incident)
    .bind(death.target)
    .bind(death.died_unix)
    .fetch_all(&mut *tx)
    .await?)
}

/// Folds a firing alert into the open incident of the same alert name and target, if there
/// is one: in a storm of distinct alerts for one container, each is recorded (alert row and
/// decision) but only the first runs and writes to Slack. Alerts not acted on (no route, a
/// refused or unresolved target) fold the same way, by their name and target (none when
/// nothing rendered one). An alert that would act never folds into an incident without a
/// run: noise must not swallow real work.
async fn fold(
    tx: &mut PgConnection,
    entry: &JournalEntry,
    target: Option<&str>,
    acting: bool,
    now: &str,
) -> Result<Option<i64>, StoreError> {
    let alert = &entry.alert;
    let same_target = if target.is_some() {
        "target = $1"
    } else {
        // Bound all the same, so both shapes take the same binds.
        "target IS NULL AND $1 IS NULL"
    };
    let with_run = if acting {
        " AND EXISTS (SELECT 1 FROM runs r WHERE r.incident_id = i.id)"
    } else {
        ""
    };
    let open: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT id FROM incidents i WHERE {same_target} AND alertname = $2 AND status = 'open'{with_run}
         ORDER BY id DESC LIMIT 1"
    ))
    .bind(target)
    .bind(alert.name())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(incident) = open else {
        return Ok(None);
    };
    insert_alert(tx, incident, entry, now).await?;
    let d = NewDecision {
        incident_id: Some(incident),
        run_id: None,
        kind: DecisionKind::Folded,
        detail: format!(
            "{} for {} (fingerprint {}) folded into this open incident: no new run",
            alert.name(),
            target.unwrap_or("no target"),
            alert.fingerprint
        ),
    };
    insert_decision(&mut *tx, &d, now).await?;
    Ok(Some(incident))
}

/// A run of `responder` for the incident that has not started yet.
async fn pending_run(
    tx: &mut PgConnection,
    incident: i64,
    responder: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM runs WHERE incident_id = $1 AND responder = $2 AND state = 'pending'
         ORDER BY id LIMIT 1",
    )
    .bind(incident)
    .bind(responder)
    .fetch_optional(&mut *tx)
    .await?)
}

async fn insert_incident(
    tx: &mut PgConnection,
    alert: &Alert,
    target: Option<&str>,
    now: &str,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO incidents (fingerprint, alertname, severity, target, status, labels, opened_at)
         VALUES ($1, $2, $3, $4, 'open', $5, $6) RETURNING id",
    )
    .bind(&alert.fingerprint)
    .bind(alert.name())
    .bind(alert.labels.get("severity"))
    .bind(target)
    .bind(to_json(&alert.labels)?)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?)
}

async fn insert_alert(
    tx: &mut PgConnection,
    incident: i64,
    entry: &JournalEntry,
    now: &str,
) -> Result<i64, StoreError> {
    let alert = &entry.alert;
    Ok(sqlx::query_scalar(
        "INSERT INTO alerts (incident_id, journal_id, status, starts_at, ends_at, alert, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(incident)
    .bind(entry.id)
    .bind(alert.status.as_str())
    .bind(ts(alert.starts_at))
    .bind(alert.ends_at.map(ts))
    .bind(to_json(alert)?)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?)
}

/// Records a decision on any executor (the pool, or a transaction's connection).
pub(super) async fn insert_decision<'e, E>(
    exec: E,
    d: &NewDecision,
    now: &str,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    sqlx::query(
        "INSERT INTO decisions (incident_id, run_id, kind, detail, at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(d.incident_id)
    .bind(d.run_id)
    .bind(d.kind.as_str())
    .bind(&d.detail)
    .bind(now)
    .execute(exec)
    .await?;
    Ok(())
}
