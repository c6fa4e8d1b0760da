//! The multi-statement queries of the SQLite store, kept apart so `sqlite.rs` reads as a map.

use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use super::{to_json, StoreError};
use crate::alert::Alert;
use crate::responders::Mode;
use crate::store::*;

type Tx<'a> = Transaction<'a, Sqlite>;

/// Who holds the runs a recording creates, and until when (unix seconds).
#[derive(Debug, Clone, Copy)]
pub(super) struct Holder<'a> {
    pub(super) owner: &'a str,
    pub(super) until: i64,
}

pub(super) async fn record_alert(
    tx: &mut Tx<'_>,
    entry: &JournalEntry,
    plan: &AlertPlan,
    now: &str,
    holder: Holder<'_>,
) -> Result<Recorded, StoreError> {
    let alert = &entry.alert;
    let open: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM incidents WHERE fingerprint = ? AND status = 'open' ORDER BY id DESC LIMIT 1",
    )
    .bind(&alert.fingerprint)
    .fetch_optional(&mut **tx)
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
                insert_decision(&mut **tx, &d, now).await?;
                return Ok(recorded);
            };
            insert_alert(tx, incident, entry, now).await?;
            sqlx::query("UPDATE incidents SET status = 'resolved', resolved_at = ? WHERE id = ?")
                .bind(now)
                .bind(incident)
                .execute(&mut **tx)
                .await?;
            recorded.resolved = true;
            // Whichever replica holds them hears of it at its next lease renewal.
            recorded.active_runs = sqlx::query_scalar(
                "UPDATE runs SET cancel_requested = 1
                 WHERE incident_id = ? AND state IN ('pending', 'running') RETURNING id",
            )
            .bind(incident)
            .fetch_all(&mut **tx)
            .await?;
        }
        AlertPlan::Update => {
            // A note may come after the resolve: it still belongs to that incident's thread.
            let latest: Option<i64> =
                match open {
                    Some(id) => Some(id),
                    None => sqlx::query_scalar(
                        "SELECT id FROM incidents WHERE fingerprint = ? ORDER BY id DESC LIMIT 1",
                    )
                    .bind(&alert.fingerprint)
                    .fetch_optional(&mut **tx)
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
                        insert_decision(&mut **tx, &d, now).await?;
                        continue;
                    }
                }
                let done = sqlx::query(
                    "INSERT INTO runs (incident_id, alert_id, responder, target, mode, state, created_at, owner, lease_until_unix)
                     VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                )
                .bind(incident)
                .bind(alert_id)
                .bind(&run.responder)
                .bind(&run.target)
                .bind(run.mode.as_str())
                .bind(now)
                .bind(holder.owner)
                .bind(holder.until)
                .execute(&mut **tx)
                .await?;
                recorded.run_ids.push(done.last_insert_rowid());
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
                insert_decision(&mut **tx, &d, now).await?;
            }
        }
    }
    Ok(recorded)
}

/// See [`Store::ask_preemption`].
pub(super) async fn ask_preemption(
    conn: &mut sqlx::SqliteConnection,
    death: &TargetDeath<'_>,
) -> Result<Vec<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "UPDATE runs SET preempt_by = ?1, preempt_died_unix = ?3
         WHERE target_lock = ?2 AND incident_id <> ?1 AND state = 'running'
           AND NOT EXISTS (SELECT 1 FROM steps s
                           WHERE s.run_id = runs.id AND s.destructive = 1 AND s.state = 'started')
         RETURNING id",
    )
    .bind(death.incident)
    .bind(death.target)
    .bind(death.died_unix)
    .fetch_all(conn)
    .await?)
}

/// Folds a firing alert into the open incident of the same alert name and target, if there
/// is one: in a storm of distinct alerts for one container, each is recorded (alert row and
/// decision) but only the first runs and writes to Slack. Alerts not acted on (no route, a
/// refused or unresolved target) fold the same way, by their name and target (none when
/// nothing rendered one). An alert that would act never folds into an incident without a
/// run: noise must not swallow real work.
async fn fold(
    tx: &mut Tx<'_>,
    entry: &JournalEntry,
    target: Option<&str>,
    acting: bool,
    now: &str,
) -> Result<Option<i64>, StoreError> {
    let alert = &entry.alert;
    let same_target = if target.is_some() {
        "target = ?"
    } else {
        // Bound all the same, so both shapes take the same binds.
        "target IS NULL AND ? IS NULL"
    };
    let with_run = if acting {
        " AND EXISTS (SELECT 1 FROM runs r WHERE r.incident_id = i.id)"
    } else {
        ""
    };
    let open: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT id FROM incidents i WHERE {same_target} AND alertname = ? AND status = 'open'{with_run}
         ORDER BY id DESC LIMIT 1"
    ))
    .bind(target)
    .bind(alert.name())
    .fetch_optional(&mut **tx)
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
    insert_decision(&mut **tx, &d, now).await?;
    Ok(Some(incident))
}

/// A run of `responder` for the incident that has not started yet.
async fn pending_run(
    tx: &mut Tx<'_>,
    incident: i64,
    responder: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM runs WHERE incident_id = ? AND responder = ? AND state = 'pending' LIMIT 1",
    )
    .bind(incident)
    .bind(responder)
    .fetch_optional(&mut **tx)
    .await?)
}

async fn insert_incident(
    tx: &mut Tx<'_>,
    alert: &Alert,
    target: Option<&str>,
    now: &str,
) -> Result<i64, StoreError> {
    let done = sqlx::query(
        "INSERT INTO incidents (fingerprint, alertname, severity, target, status, labels, opened_at)
         VALUES (?, ?, ?, ?, 'open', ?, ?)",
    )
    .bind(&alert.fingerprint)
    .bind(alert.name())
    .bind(alert.labels.get("severity"))
    .bind(target)
    .bind(to_json(&alert.labels)?)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.last_insert_rowid())
}

async fn insert_alert(
    tx: &mut Tx<'_>,
    incident: i64,
    entry: &JournalEntry,
    now: &str,
) -> Result<i64, StoreError> {
    let alert = &entry.alert;
    let done = sqlx::query(
        "INSERT INTO alerts (incident_id, journal_id, status, starts_at, ends_at, alert, received_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(incident)
    .bind(entry.id)
    .bind(alert.status.as_str())
    .bind(super::ts(alert.starts_at))
    .bind(alert.ends_at.map(super::ts))
    .bind(to_json(alert)?)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.last_insert_rowid())
}

pub(super) async fn insert_decision<'e, E>(
    exec: E,
    d: &NewDecision,
    now: &str,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    sqlx::query(
        "INSERT INTO decisions (incident_id, run_id, kind, detail, at) VALUES (?, ?, ?, ?, ?)",
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

/// See [`Store::recover_runs`]. On SQLite one process owns the file, so every run another
/// owner holds was left by an earlier process.
pub(super) async fn recover_runs(
    tx: &mut Tx<'_>,
    scope: RecoverScope,
    holder: Holder<'_>,
    now: &str,
) -> Result<Recovery, StoreError> {
    let mut recovery = Recovery::default();
    let whose = match scope {
        RecoverScope::Abandoned => "(owner IS NULL OR owner != ?)",
        RecoverScope::Mine => "owner = ?",
    };
    let running = sqlx::query(&format!(
        "SELECT id, incident_id, responder, target, owner FROM runs WHERE state = 'running' AND {whose}"
    ))
    .bind(holder.owner)
    .fetch_all(&mut **tx)
    .await?;
    let cause = match scope {
        RecoverScope::Abandoned => "a restart",
        RecoverScope::Mine => "a shutdown",
    };
    for row in running {
        let run_id: i64 = row.try_get("id")?;
        let last_step: Option<String> = sqlx::query_scalar(
            "SELECT step_id FROM steps WHERE run_id = ? AND state = 'started' ORDER BY id DESC LIMIT 1",
        )
        .bind(run_id)
        .fetch_optional(&mut **tx)
        .await?;
        sqlx::query("UPDATE steps SET state = 'unknown', finished_at = ?, error = ? WHERE run_id = ? AND state = 'started'")
            .bind(now)
            .bind(format!("interrupted by {cause}: may or may not have happened"))
            .bind(run_id)
            .execute(&mut **tx)
            .await?;
        let summary = match &last_step {
            Some(step) => format!("interrupted by {cause} of the responder during step {step}, which may or may not have happened; not re-run"),
            None => format!("interrupted by {cause} of the responder between steps; not re-run"),
        };
        sqlx::query("UPDATE runs SET state = 'interrupted', outcome = 'interrupted', summary = ?, finished_at = ?, target_lock = NULL WHERE id = ?")
            .bind(&summary)
            .bind(now)
            .bind(run_id)
            .execute(&mut **tx)
            .await?;
        // Nobody can approve a step of a run that no longer runs.
        sqlx::query("UPDATE approvals SET state = 'cancelled', decided_at = ? WHERE run_id = ? AND state = 'pending'")
            .bind(now)
            .bind(run_id)
            .execute(&mut **tx)
            .await?;
        let incident_id: i64 = row.try_get("incident_id")?;
        let d = NewDecision {
            incident_id: Some(incident_id),
            run_id: Some(run_id),
            kind: DecisionKind::Interrupted,
            detail: summary,
        };
        insert_decision(&mut **tx, &d, now).await?;
        recovery.interrupted.push(InterruptedRun {
            run_id,
            incident_id,
            responder: row.try_get("responder")?,
            target: row.try_get("target")?,
            last_step,
            holder: row.try_get("owner")?,
            cause: format!("{cause} of the responder"),
        });
    }
    if scope == RecoverScope::Mine {
        // Released for whoever starts next; SQLite's next process takes them at its start.
        sqlx::query("UPDATE runs SET lease_until_unix = 0 WHERE state = 'pending' AND owner = ?")
            .bind(holder.owner)
            .execute(&mut **tx)
            .await?;
        return Ok(recovery);
    }
    let mut pending = sqlx::query(
        "UPDATE runs SET owner = ?, lease_until_unix = ?
         WHERE state = 'pending' AND (owner IS NULL OR owner != ?)
         RETURNING id, incident_id, responder, target, mode, alert_id",
    )
    .bind(holder.owner)
    .bind(holder.until)
    .bind(holder.owner)
    .fetch_all(&mut **tx)
    .await?;
    pending.sort_by_key(|row| row.try_get::<i64, _>("id").unwrap_or_default());
    for row in pending {
        let alert: String = sqlx::query_scalar("SELECT alert FROM alerts WHERE id = ?")
            .bind(row.try_get::<i64, _>("alert_id")?)
            .fetch_one(&mut **tx)
            .await?;
        let mode: String = row.try_get("mode")?;
        recovery.pending.push(PendingRun {
            run_id: row.try_get("id")?,
            incident_id: row.try_get("incident_id")?,
            responder: row.try_get("responder")?,
            target: row.try_get("target")?,
            mode: Mode::parse(&mode).unwrap_or(Mode::DryRun),
            alert: serde_json::from_str(&alert).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        });
    }
    Ok(recovery)
}

pub(super) async fn due_messages(
    pool: &SqlitePool,
    now: i64,
    limit: u32,
) -> Result<Vec<OutboxMessage>, StoreError> {
    // Only the oldest pending message of each incident is deliverable: a reply waits for its
    // parent and an edit for the replies before it, so the thread reads in order. New
    // incidents' parents go first: in a storm, people hear of a new incident before reply
    // number five of an old one.
    let rows = sqlx::query(
        "SELECT o.id, o.incident_id, o.kind, o.text, o.attempts, i.slack_channel, i.slack_ts,
                o.blocks, o.edit_of, e.channel AS edit_channel, e.ts AS edit_ts
         FROM outbox o JOIN incidents i ON i.id = o.incident_id
         LEFT JOIN outbox e ON e.id = o.edit_of
         WHERE o.id IN (SELECT MIN(id) FROM outbox WHERE state = 'pending' AND destination = 'slack' GROUP BY incident_id)
           AND o.next_attempt_unix <= ?
         ORDER BY o.kind != 'parent', o.id LIMIT ?",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("kind")?;
            let channel: Option<String> = row.try_get("slack_channel")?;
            let ts: Option<String> = row.try_get("slack_ts")?;
            Ok(OutboxMessage {
                id: row.try_get("id")?,
                incident_id: row.try_get("incident_id")?,
                kind: match kind.as_str() {
                    "parent" => MessageKind::Parent,
                    "update" => MessageKind::Update,
                    _ => MessageKind::Reply,
                },
                text: row.try_get("text")?,
                attempts: row.try_get("attempts")?,
                thread: channel.zip(ts),
                blocks: row.try_get("blocks")?,
                edit: row
                    .try_get::<Option<i64>, _>("edit_of")?
                    .map(|message_id| -> Result<_, StoreError> {
                        let channel: Option<String> = row.try_get("edit_channel")?;
                        let ts: Option<String> = row.try_get("edit_ts")?;
                        Ok(EditTarget {
                            message_id,
                            posted: channel.zip(ts),
                        })
                    })
                    .transpose()?,
            })
        })
        .collect()
}
