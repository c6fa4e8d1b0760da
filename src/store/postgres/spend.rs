//! Spending on PostgreSQL: budgets, the cluster-wide action rate, fencing by lease, and the
//! leased singleton roles. Every check-and-record runs under one advisory lock, so two
//! replicas never both spend the last unit.

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use super::{lock, xact_lock, Holder, StoreError};
use crate::limits::{admit, Admission, Budget};
use crate::store::{ActionSpend, Spend, RATE_LIMITED};

/// Whose budget: one destructive step of one responder on one target.
#[derive(Debug, Clone, Copy)]
pub(super) struct Key<'a> {
    pub(super) responder: &'a str,
    pub(super) target: &'a str,
    pub(super) step: &'a str,
}

/// Unix times of the uses after `since`, oldest first.
pub(super) async fn uses_since(
    conn: &mut PgConnection,
    key: &Key<'_>,
    since: i64,
) -> Result<Vec<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT at_unix FROM budget_uses
         WHERE responder = $1 AND target = $2 AND step_id = $3 AND at_unix > $4
         ORDER BY at_unix",
    )
    .bind(key.responder)
    .bind(key.target)
    .bind(key.step)
    .bind(since)
    .fetch_all(conn)
    .await?)
}

/// See [`crate::store::Store::consume_budget`]: the budget alone, no fencing.
pub(super) async fn consume(
    pool: &PgPool,
    key: &Key<'_>,
    budget: &Budget,
    run_id: i64,
    now: OffsetDateTime,
) -> Result<Admission, StoreError> {
    let mut tx = pool.begin().await?;
    xact_lock(&mut tx, lock::SPEND).await?;
    let admission = spend_within(&mut tx, key, budget, run_id, now).await?;
    tx.commit().await?;
    Ok(admission)
}

/// The check and the record of [`consume`], inside the caller's locked transaction.
async fn spend_within(
    conn: &mut PgConnection,
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
        sqlx::query(
            "INSERT INTO budget_uses (responder, target, step_id, at_unix, run_id)
             VALUES ($1, $2, $3, $4, $5)",
        )
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

/// See [`crate::store::Store::spend_action`]: fencing, then the action rate, then the budget.
pub(super) async fn spend(
    pool: &PgPool,
    spend: &ActionSpend<'_>,
    owner: &str,
    now: OffsetDateTime,
) -> Result<Spend, StoreError> {
    let now_unix = now.unix_timestamp();
    let mut tx = pool.begin().await?;
    xact_lock(&mut tx, lock::SPEND).await?;
    // FOR SHARE waits for a replica reaping this run to commit, and then reads what it wrote:
    // a run reported interrupted no longer has a live lease.
    let held: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM runs WHERE id = $1 AND owner = $2 AND lease_until_unix > $3 FOR SHARE",
    )
    .bind(spend.run_id)
    .bind(owner)
    .bind(now_unix)
    .fetch_optional(&mut *tx)
    .await?;
    if held.is_none() {
        return Ok(Spend::Fenced(format!(
            "this replica's lease on run {} has expired; another replica may be reporting it interrupted; not acting",
            spend.run_id
        )));
    }
    let recent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM budget_uses WHERE at_unix > $1")
        .bind(now_unix - 60)
        .fetch_one(&mut *tx)
        .await?;
    if recent >= i64::from(spend.actions_per_minute) {
        return Ok(Spend::RateLimited(RATE_LIMITED.to_owned()));
    }
    let key = Key {
        responder: spend.responder,
        target: spend.target,
        step: spend.step,
    };
    let admission = spend_within(&mut tx, &key, spend.budget, spend.run_id, now).await?;
    tx.commit().await?;
    Ok(match admission {
        Admission::Allowed => Spend::Allowed,
        Admission::Refused { reason } => Spend::Budget(reason),
    })
}

/// See [`crate::store::Store::lead`]: the row is taken when free, kept when ours, and taken
/// over when its holder's lease ended; one statement, so two replicas never both hold it.
pub(super) async fn lead(
    pool: &PgPool,
    role: &str,
    holder: Holder<'_>,
    now_unix: i64,
) -> Result<bool, StoreError> {
    let held: Option<String> = sqlx::query_scalar(
        "INSERT INTO leaders (role, owner, until_unix) VALUES ($1, $2, $3)
         ON CONFLICT (role) DO UPDATE SET owner = EXCLUDED.owner, until_unix = EXCLUDED.until_unix
         WHERE leaders.owner = EXCLUDED.owner OR leaders.until_unix < $4
         RETURNING owner",
    )
    .bind(role)
    .bind(holder.owner)
    .bind(holder.until)
    .bind(now_unix)
    .fetch_optional(pool)
    .await?;
    Ok(held.is_some())
}

/// See [`crate::store::Store::resign`].
pub(super) async fn resign(pool: &PgPool, role: &str, owner: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM leaders WHERE role = $1 AND owner = $2")
        .bind(role)
        .bind(owner)
        .execute(pool)
        .await?;
    Ok(())
}
