//! The multi-statement queries of the SQLite store, kept apart so `sqlite.rs` reads as a map.

use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use super::StoreError;
use crate::responders::Mode;
use crate::store::*;

type Tx<'a> = Transaction<'a, Sqlite>;

/// Who holds the runs a recording creates, and until when (unix seconds).
#[derive(Debug, Clone, Copy)]
pub(super) struct Holder<'a> {
    pub(super) owner: &'a str,
    pub(super) until: i64,
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
                o.blocks, o.file, o.edit_of, e.channel AS edit_channel, e.ts AS edit_ts, o.channel AS post_to
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
                post_to: row.try_get("post_to")?,
                file: row.try_get("file")?,
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
