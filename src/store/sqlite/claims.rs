//! Claims and leases on SQLite. One process owns the file, so these are simple: the single
//! writer makes each check-and-set atomic, and a lease never lapses to another holder (an
//! earlier process's runs are recovered at start).

use sqlx::{Connection, Row, SqliteConnection};
use time::OffsetDateTime;

use super::budgets;
use super::queries::Holder;
use crate::limits::Admission;
use crate::store::{ActionSpend, Claim, LeaseNews, Spend, StoreError};

/// See [`crate::store::Store::claim_run`].
pub(super) async fn claim(
    conn: &mut SqliteConnection,
    run_id: i64,
    max_running: u32,
    holder: Holder<'_>,
    now: &str,
) -> Result<Claim, StoreError> {
    let mut tx = conn.begin().await?;
    let run = sqlx::query("SELECT state, target FROM runs WHERE id = ?")
        .bind(run_id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(run) = run else {
        return Ok(Claim::Gone);
    };
    if run.try_get::<String, _>("state")? != "pending" {
        return Ok(Claim::Gone);
    }
    let target: String = run.try_get("target")?;
    let busy: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM runs WHERE target_lock = ?)")
        .bind(&target)
        .fetch_one(&mut *tx)
        .await?;
    if busy {
        return Ok(Claim::TargetBusy);
    }
    let running: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM runs WHERE target_lock IS NOT NULL")
            .fetch_one(&mut *tx)
            .await?;
    if running >= i64::from(max_running) {
        return Ok(Claim::Full);
    }
    sqlx::query(
        "UPDATE runs SET state = 'running', started_at = ?, owner = ?, lease_until_unix = ?,
                target_lock = target
         WHERE id = ? AND state = 'pending'",
    )
    .bind(now)
    .bind(holder.owner)
    .bind(holder.until)
    .bind(run_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Claim::Started)
}

/// See [`crate::store::Store::renew_leases`].
pub(super) async fn renew(
    conn: &mut SqliteConnection,
    holder: Holder<'_>,
) -> Result<LeaseNews, StoreError> {
    let rows = sqlx::query_as(
        "UPDATE runs SET lease_until_unix = ?
         WHERE owner = ? AND state IN ('pending', 'running') RETURNING id, cancel_requested, preempt_by, preempt_died_unix",
    )
    .bind(holder.until)
    .bind(holder.owner)
    .fetch_all(conn)
    .await?;
    Ok(LeaseNews::from_rows(rows))
}

/// See [`crate::store::Store::spend_action`]. No other process can take a run over here, so
/// fencing only checks that the run is this process's.
pub(super) async fn spend(
    conn: &mut SqliteConnection,
    spend: &ActionSpend<'_>,
    owner: &str,
    now: OffsetDateTime,
) -> Result<Spend, StoreError> {
    let mut tx = conn.begin().await?;
    let holder: Option<Option<String>> = sqlx::query_scalar("SELECT owner FROM runs WHERE id = ?")
        .bind(spend.run_id)
        .fetch_optional(&mut *tx)
        .await?;
    if holder.flatten().as_deref() != Some(owner) {
        return Ok(Spend::Fenced(format!(
            "run {} is not held by this process; not acting",
            spend.run_id
        )));
    }
    if let Some(refusal) = rate_refusal(&mut tx, spend.actions_per_minute, now).await? {
        return Ok(refusal);
    }
    let key = budgets::Key {
        responder: spend.responder,
        target: spend.target,
        step: spend.step,
    };
    let admission = budgets::spend_within(&mut tx, &key, spend.budget, spend.run_id, now).await?;
    tx.commit().await?;
    Ok(match admission {
        Admission::Allowed => Spend::Allowed,
        Admission::Refused { reason } => Spend::Budget(reason),
    })
}

/// The action-rate refusal, when the uses of the last minute reach the limit.
async fn rate_refusal(
    conn: &mut SqliteConnection,
    per_minute: u32,
    now: OffsetDateTime,
) -> Result<Option<Spend>, StoreError> {
    let recent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM budget_uses WHERE at_unix > ?")
        .bind(now.unix_timestamp() - 60)
        .fetch_one(conn)
        .await?;
    Ok((recent >= i64::from(per_minute))
        .then(|| Spend::RateLimited(crate::store::RATE_LIMITED.to_owned())))
}
