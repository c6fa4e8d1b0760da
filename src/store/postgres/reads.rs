//! The read side of the PostgreSQL store: incidents with their alerts, runs, steps, decisions
//! and messages, as the API and the message renderer see them, the same as SQLite's.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use super::StoreError;
use crate::alert::{Alert, Status};
use crate::responders::Mode;
use crate::store::views::{incident_row, named, named_opt};
use crate::store::*;

const INCIDENT_COLUMNS: &str =
    "id, fingerprint, alertname, severity, target, status, summary, opened_at, resolved_at, \
     (SELECT state FROM runs WHERE runs.incident_id = incidents.id ORDER BY runs.id DESC LIMIT 1) AS run_state, \
     (SELECT outcome FROM runs WHERE runs.incident_id = incidents.id ORDER BY runs.id DESC LIMIT 1) AS run_outcome";

pub(super) async fn list_incidents(
    pool: &PgPool,
    open_only: bool,
    limit: u32,
) -> Result<Vec<IncidentRow>, StoreError> {
    let filter = if open_only {
        "WHERE status = 'open'"
    } else {
        ""
    };
    let sql =
        format!("SELECT {INCIDENT_COLUMNS} FROM incidents {filter} ORDER BY id DESC LIMIT $1");
    let rows = sqlx::query(&sql)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(incident_row).collect()
}

fn json_column(row: &PgRow, name: &str) -> Result<Option<serde_json::Value>, StoreError> {
    let text: Option<String> = row.try_get(name)?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

async fn runs_of(
    conn: &mut PgConnection,
    incident: i64,
    latest_only: bool,
) -> Result<Vec<RunRow>, StoreError> {
    let sql = if latest_only {
        "SELECT * FROM runs WHERE incident_id = $1 ORDER BY id DESC LIMIT 1"
    } else {
        "SELECT * FROM runs WHERE incident_id = $1 ORDER BY id"
    };
    let rows = sqlx::query(sql)
        .bind(incident)
        .fetch_all(&mut *conn)
        .await?;
    let mut runs = Vec::with_capacity(rows.len());
    for row in rows {
        let id: i64 = row.try_get("id")?;
        let steps = sqlx::query("SELECT * FROM steps WHERE run_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|s| {
                Ok(StepRow {
                    step_id: s.try_get("step_id")?,
                    action: s.try_get("action")?,
                    destructive: s.try_get::<i64, _>("destructive")? != 0,
                    state: named("state", s.try_get("state")?, StepState::parse)?,
                    summary: s.try_get("summary")?,
                    outputs: json_column(s, "outputs")?,
                    error: s.try_get("error")?,
                    started_at: s.try_get("started_at")?,
                    finished_at: s.try_get("finished_at")?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        runs.push(RunRow {
            id,
            responder: row.try_get("responder")?,
            target: row.try_get("target")?,
            mode: named("mode", row.try_get("mode")?, Mode::parse)?,
            state: named("state", row.try_get("state")?, RunState::parse)?,
            outcome: named_opt("outcome", row.try_get("outcome")?, RunOutcome::parse)?,
            summary: row.try_get("summary")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
            steps,
        });
    }
    Ok(runs)
}

async fn decisions_of(
    followers: Followers,
    conn: &mut PgConnection,
    incident: i64,
) -> Result<Vec<DecisionRow>, StoreError> {
    let skip = match followers {
        Followers::Kept => "",
        // Folds and joins are one per storm alert: the parent message reads none of them.
        Followers::Skipped => " AND kind NOT IN ('folded', 'joined')",
    };
    sqlx::query(&format!(
        "SELECT kind, detail, run_id, at FROM decisions WHERE incident_id = $1{skip} ORDER BY id"
    ))
    .bind(incident)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(DecisionRow {
            kind: named("kind", r.try_get("kind")?, DecisionKind::parse)?,
            detail: r.try_get("detail")?,
            run_id: r.try_get("run_id")?,
            at: r.try_get("at")?,
        })
    })
    .collect()
}

/// The incident row and the labels it opened with.
async fn incident_by_id(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<(IncidentRow, serde_json::Value)>, StoreError> {
    let sql = format!("SELECT {INCIDENT_COLUMNS}, labels FROM incidents WHERE id = $1");
    let Some(row) = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let labels = json_column(&row, "labels")?.unwrap_or_default();
    Ok(Some((incident_row(&row)?, labels)))
}

/// A read-only transaction seeing one snapshot, so an incident's parts (written meanwhile
/// by other replicas) read as of one moment, as SQLite's WAL readers do.
async fn snapshot(pool: &PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

pub(super) async fn incident_detail(
    pool: &PgPool,
    id: i64,
) -> Result<Option<IncidentDetail>, StoreError> {
    let mut conn = snapshot(pool).await?;
    let Some((incident, labels)) = incident_by_id(&mut conn, id).await? else {
        return Ok(None);
    };
    let alerts = sqlx::query("SELECT id, status, starts_at, ends_at, received_at, alert FROM alerts WHERE incident_id = $1 ORDER BY id")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            let alert: Alert = serde_json::from_str(&r.try_get::<String, _>("alert")?)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(AlertRow {
                id: r.try_get("id")?,
                status: named("status", r.try_get("status")?, Status::parse)?,
                starts_at: r.try_get("starts_at")?,
                ends_at: r.try_get("ends_at")?,
                received_at: r.try_get("received_at")?,
                labels: serde_json::to_value(&alert.labels).unwrap_or_default(),
                annotations: serde_json::to_value(&alert.annotations).unwrap_or_default(),
            })
        })
        .collect::<Result<_, StoreError>>()?;
    let runs = runs_of(&mut conn, id, false).await?;
    let decisions = decisions_of(Followers::Kept, &mut conn, id).await?;
    let messages = sqlx::query("SELECT kind, state, text, attempts, last_error, ts, created_at, sent_at FROM outbox WHERE incident_id = $1 AND destination = 'slack' ORDER BY id")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            Ok(MessageRow {
                kind: named("kind", r.try_get("kind")?, MessageKind::parse)?,
                state: named("state", r.try_get("state")?, DeliveryState::parse)?,
                text: r.try_get("text")?,
                attempts: r.try_get("attempts")?,
                last_error: r.try_get("last_error")?,
                ts: r.try_get("ts")?,
                created_at: r.try_get("created_at")?,
                sent_at: r.try_get("sent_at")?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    let approvals = sqlx::query("SELECT * FROM approvals WHERE incident_id = $1 ORDER BY id")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(approval_row)
        .collect::<Result<_, StoreError>>()?;
    Ok(Some(IncidentDetail {
        incident,
        labels,
        alerts,
        runs,
        decisions,
        messages,
        approvals,
    }))
}

pub(super) async fn incident_view(
    pool: &PgPool,
    id: i64,
) -> Result<Option<IncidentView>, StoreError> {
    let mut conn = snapshot(pool).await?;
    let Some((incident, _labels)) = incident_by_id(&mut conn, id).await? else {
        return Ok(None);
    };
    let run = runs_of(&mut conn, id, true).await?.pop();
    let decisions = decisions_of(Followers::Skipped, &mut conn, id).await?;
    let firing: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM alerts WHERE incident_id = $1 AND status = 'firing'",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    let posted: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM outbox WHERE incident_id = $1 AND kind = 'parent' AND destination = 'slack')",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some(IncidentView {
        incident,
        run,
        decisions,
        firing,
        posted,
    }))
}

pub(super) async fn previous_outputs(
    pool: &PgPool,
    responder: &str,
    target: &str,
    run_id: i64,
) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
    let rows = sqlx::query(
        "SELECT step_id, outputs FROM steps WHERE outputs IS NOT NULL AND run_id = (
             SELECT id FROM runs WHERE responder = $1 AND target = $2 AND id < $3 AND state = 'finished'
             ORDER BY id DESC LIMIT 1)
         ORDER BY id",
    )
    .bind(responder)
    .bind(target)
    .bind(run_id)
    .fetch_all(pool)
    .await?;
    let mut outputs = serde_json::Map::new();
    for row in &rows {
        if let Some(value) = json_column(row, "outputs")? {
            outputs.insert(row.try_get("step_id")?, value);
        }
    }
    Ok(outputs)
}

pub(super) fn approval_row(r: &PgRow) -> Result<ApprovalRow, StoreError> {
    Ok(ApprovalRow {
        id: r.try_get("id")?,
        run_id: r.try_get("run_id")?,
        step_id: r.try_get("step_id")?,
        plan: r.try_get("plan")?,
        state: named("state", r.try_get("state")?, ApprovalState::parse)?,
        requested_at: r.try_get("requested_at")?,
        expires_at_unix: r.try_get("expires_at_unix")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
        choice: r.try_get("choice")?,
    })
}

pub(super) async fn approval(pool: &PgPool, id: i64) -> Result<Option<ApprovalRow>, StoreError> {
    sqlx::query("SELECT * FROM approvals WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(approval_row)
        .transpose()
}

/// One statement of indexed or small-table counts; the oldest pending entry comes from the
/// `journal_pending (processed, id)` index, its age is computed here.
pub(super) async fn gauges(
    pool: &PgPool,
    now: time::OffsetDateTime,
) -> Result<StoreGauges, StoreError> {
    let row = sqlx::query(
        "SELECT
           (SELECT COUNT(*) FROM journal WHERE processed = 0) AS journal_pending,
           (SELECT received_at FROM journal WHERE processed = 0 ORDER BY id LIMIT 1) AS oldest,
           (SELECT COUNT(*) FROM outbox WHERE state = 'pending') AS outbox_pending,
           (SELECT COUNT(*) FROM approvals WHERE state = 'pending' AND expires_at_unix > $1)
             AS approvals_pending,
           (SELECT COUNT(*) FROM incidents WHERE status = 'open') AS incidents_open",
    )
    .bind(now.unix_timestamp())
    .fetch_one(pool)
    .await?;
    let oldest: Option<String> = row.try_get("oldest")?;
    let oldest = oldest
        .map(|t| {
            time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                .map_err(|e| StoreError::Corrupt(format!("journal received_at {t:?}: {e}")))
        })
        .transpose()?;
    let age = oldest.map_or(time::Duration::ZERO, |t| now - t);
    Ok(StoreGauges {
        journal_pending: row.try_get("journal_pending")?,
        journal_oldest_pending_age: age.try_into().unwrap_or_default(),
        outbox_pending: row.try_get("outbox_pending")?,
        approvals_pending: row.try_get("approvals_pending")?,
        incidents_open: row.try_get("incidents_open")?,
    })
}
