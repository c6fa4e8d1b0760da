//! Approval statements of the SQLite store: request, decide (atomically), close.

use sqlx::SqlitePool;
use time::OffsetDateTime;

use super::{reads, ts, StoreError};
use crate::store::{ApprovalRow, NewApproval};

pub(super) async fn request(
    pool: &SqlitePool,
    a: &NewApproval,
    now: &str,
    expires_at_unix: i64,
) -> Result<i64, StoreError> {
    let done = sqlx::query(
        "INSERT INTO approvals (incident_id, run_id, step_id, plan, state, requested_at, expires_at_unix, choice)
         VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
    )
    .bind(a.incident_id)
    .bind(a.run_id)
    .bind(&a.step_id)
    .bind(&a.plan)
    .bind(now)
    .bind(expires_at_unix)
    .bind(&a.choice)
    .execute(pool)
    .await?;
    Ok(done.last_insert_rowid())
}

pub(super) async fn decide(
    pool: &SqlitePool,
    incident_id: i64,
    approve: bool,
    by: &str,
    now: OffsetDateTime,
) -> Result<Option<ApprovalRow>, StoreError> {
    // One statement: two deciders (or two replicas) cannot both win the same approval. An
    // approval by incident never picks an option of a choice: which one is for a person to
    // say (a button, or the API's `step`); a denial denies the choice.
    let id: Option<i64> = sqlx::query_scalar(
        "UPDATE approvals SET state = ?1, decided_by = ?2, decided_at = ?3
         WHERE id = (SELECT id FROM approvals WHERE incident_id = ?4 AND state = 'pending'
                     AND expires_at_unix > ?5 AND (choice IS NULL OR ?1 = 'denied')
                     ORDER BY id LIMIT 1)
         RETURNING id",
    )
    .bind(if approve { "approved" } else { "denied" })
    .bind(by)
    .bind(ts(now))
    .bind(incident_id)
    .bind(now.unix_timestamp())
    .fetch_optional(pool)
    .await?;
    match id {
        Some(id) => reads::approval(pool, id).await,
        None => Ok(None),
    }
}

pub(super) async fn close(
    pool: &SqlitePool,
    id: i64,
    state: &str,
    now: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE approvals SET state = ?, decided_at = ? WHERE id = ? AND state = 'pending'",
    )
    .bind(state)
    .bind(now)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}
