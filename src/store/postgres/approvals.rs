//! Approvals on PostgreSQL: request, decide, close. A decision only moves a still-pending
//! approval: the `UPDATE` rechecks `state = 'pending'` on the row it locks, so when two
//! replicas decide at once the second finds it decided and wins nothing.

use sqlx::PgPool;
use time::OffsetDateTime;

use super::{reads, ts, StoreError};
use crate::store::{ApprovalRow, NewApproval};

pub(super) async fn request(pool: &PgPool, a: &NewApproval, now: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO approvals (incident_id, run_id, step_id, plan, state, requested_at, expires_at_unix, choice)
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7) RETURNING id",
    )
    .bind(a.incident_id)
    .bind(a.run_id)
    .bind(&a.step_id)
    .bind(&a.plan)
    .bind(now)
    .bind(a.expires_at.unix_timestamp())
    .bind(&a.choice)
    .fetch_one(pool)
    .await?)
}

/// Decides the incident's oldest pending, unexpired approval; never approves an option of a
/// choice (which one is for a person to say), though a denial denies the choice.
pub(super) async fn decide(
    pool: &PgPool,
    incident_id: i64,
    approve: bool,
    by: &str,
    now: OffsetDateTime,
) -> Result<Option<ApprovalRow>, StoreError> {
    let id: Option<i64> = sqlx::query_scalar(
        "UPDATE approvals SET state = $1, decided_by = $2, decided_at = $3
         WHERE id = (SELECT id FROM approvals WHERE incident_id = $4 AND state = 'pending'
                     AND expires_at_unix > $5 AND (choice IS NULL OR $1 = 'denied')
                     ORDER BY id LIMIT 1)
           AND state = 'pending'
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

/// Decides approval `id` if it is still pending and unexpired and, for an option of a choice,
/// no other option of it is approved.
pub(super) async fn decide_by_id(
    pool: &PgPool,
    id: i64,
    approve: bool,
    by: &str,
    now: OffsetDateTime,
) -> Result<Option<ApprovalRow>, StoreError> {
    // Under READ COMMITTED two options approved at once both see no approved sibling; the
    // partial unique index `approvals_one_choice` makes the second wait and then fail.
    let decided: Option<i64> = match sqlx::query_scalar(
        "UPDATE approvals SET state = $1, decided_by = $2, decided_at = $3
         WHERE id = $4 AND state = 'pending' AND expires_at_unix > $5
           AND ($1 = 'denied' OR choice IS NULL OR NOT EXISTS (
                SELECT 1 FROM approvals o WHERE o.run_id = approvals.run_id
                AND o.choice = approvals.choice AND o.state = 'approved'))
         RETURNING id",
    )
    .bind(if approve { "approved" } else { "denied" })
    .bind(by)
    .bind(ts(now))
    .bind(id)
    .bind(now.unix_timestamp())
    .fetch_optional(pool)
    .await
    {
        Ok(decided) => decided,
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => None,
        Err(e) => return Err(e.into()),
    };
    match decided {
        Some(id) => reads::approval(pool, id).await,
        None => Ok(None),
    }
}

/// Closes a still-pending approval as `expired` or `cancelled`.
pub(super) async fn close(
    pool: &PgPool,
    id: i64,
    state: &str,
    now: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE approvals SET state = $1, decided_at = $2 WHERE id = $3 AND state = 'pending'",
    )
    .bind(state)
    .bind(now)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}
