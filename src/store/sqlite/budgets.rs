//! Budget statements of the SQLite store: the history of destructive uses per step.

use sqlx::{Connection, SqliteConnection};
use time::OffsetDateTime;

use super::StoreError;
use crate::limits::{admit, Admission, Budget};

/// Whose budget: one destructive step of one responder on one target.
#[derive(Debug, Clone, Copy)]
pub(super) struct Key<'a> {
    pub(super) responder: &'a str,
    pub(super) target: &'a str,
    pub(super) step: &'a str,
}

/// Unix times of the uses after `since`, oldest first.
pub(super) async fn uses_since(
    conn: &mut SqliteConnection,
    key: &Key<'_>,
    since: i64,
) -> Result<Vec<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT at_unix FROM budget_uses WHERE responder = ? AND target = ? AND step_id = ? AND at_unix > ?
         ORDER BY at_unix",
    )
    .bind(key.responder)
    .bind(key.target)
    .bind(key.step)
    .bind(since)
    .fetch_all(conn)
    .await?)
}

/// Checks the budget against its history and records the use when admitted, in one transaction.
pub(super) async fn consume(
    conn: &mut SqliteConnection,
    key: &Key<'_>,
    budget: &Budget,
    run_id: i64,
    now: OffsetDateTime,
) -> Result<Admission, StoreError> {
    // The single writer connection makes this read-check-write atomic for this process;
    // the transaction keeps it atomic for other processes sharing the file.
    let mut tx = conn.begin().await?;
    let admission = spend_within(&mut tx, key, budget, run_id, now).await?;
    tx.commit().await?;
    Ok(admission)
}

/// The check and the record of [`consume`], inside the caller's transaction.
pub(super) async fn spend_within(
    conn: &mut SqliteConnection,
    key: &Key<'_>,
    budget: &Budget,
    run_id: i64,
    now: OffsetDateTime,
) -> Result<Admission, StoreError> {
    let now_unix = now.unix_timestamp();
    let horizon = budget.per.max(budget.cooldown).as_secs();
    let since = now_unix - i64::try_from(horizon).unwrap_or(i64::MAX / 2);
    let uses = uses_since(conn, key, since).await?;
    let admission = admit(budget, &uses, now_unix);
    if admission == Admission::Allowed {
        sqlx::query("INSERT INTO budget_uses (responder, target, step_id, at_unix, run_id) VALUES (?, ?, ?, ?, ?)")
            .bind(key.responder)
            .bind(key.target)
            .bind(key.step)
            .bind(now_unix)
            .bind(run_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(admission)
}
