//! Runs and steps on PostgreSQL: claiming a run under a lease, renewing leases, and the
//! bookkeeping of a run's life (start, steps, finish).

use sqlx::{PgPool, Row};

use super::{lock, relaxed_xact_lock, to_json, Holder, StoreError, RELAXED};
use crate::store::{Claim, LeaseNews, NewStep, RunOutcome, StepEnd};

/// See [`crate::store::Store::claim_run`]. The advisory lock makes the target check and the
/// running-run count one step across replicas; the unique index on `target_lock` is the
/// backstop should anything write runs without it.
pub(super) async fn claim(
    pool: &PgPool,
    run_id: i64,
    max_running: u32,
    holder: Holder<'_>,
    now: &str,
) -> Result<Claim, StoreError> {
    let mut tx = pool.begin().await?;
    relaxed_xact_lock(&mut tx, lock::RUNS).await?;
    let run = sqlx::query("SELECT state, target, owner FROM runs WHERE id = $1 FOR UPDATE")
        .bind(run_id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(run) = run else {
        return Ok(Claim::Gone);
    };
    // A pending run another replica took over (this one's lease lapsed) is no longer ours.
    let owner: Option<String> = run.try_get("owner")?;
    if run.try_get::<String, _>("state")? != "pending" || owner.as_deref() != Some(holder.owner) {
        return Ok(Claim::Gone);
    }
    let target: String = run.try_get("target")?;
    let (busy, running): (bool, i64) = sqlx::query_as(
        "SELECT COALESCE(bool_or(target_lock = $1), false), COUNT(*)
         FROM runs WHERE target_lock IS NOT NULL",
    )
    .bind(&target)
    .fetch_one(&mut *tx)
    .await?;
    if busy {
        return Ok(Claim::TargetBusy);
    }
    if running >= i64::from(max_running) {
        return Ok(Claim::Full);
    }
    let claimed = sqlx::query(
        "UPDATE runs SET state = 'running', started_at = $1, owner = $2, lease_until_unix = $3,
                target_lock = target
         WHERE id = $4 AND state = 'pending'",
    )
    .bind(now)
    .bind(holder.owner)
    .bind(holder.until)
    .bind(run_id)
    .execute(&mut *tx)
    .await;
    match claimed {
        Ok(_) => {}
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("runs_one_per_target") => {
            return Ok(Claim::TargetBusy)
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(Claim::Started)
}

/// See [`crate::store::Store::renew_leases`].
pub(super) async fn renew(pool: &PgPool, holder: Holder<'_>) -> Result<LeaseNews, StoreError> {
    let rows = sqlx::query_as(
        "UPDATE runs SET lease_until_unix = $1
         WHERE owner = $2 AND state IN ('pending', 'running') RETURNING id, cancel_requested, preempt_by, preempt_died_unix",
    )
    .bind(holder.until)
    .bind(holder.owner)
    .fetch_all(pool)
    .await?;
    Ok(LeaseNews::from_rows(rows))
}

pub(super) async fn close_idle_incident(
    pool: &PgPool,
    incident_id: i64,
    now: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE incidents SET status = 'resolved', resolved_at = $1
         WHERE id = $2 AND status = 'open' AND NOT EXISTS (
             SELECT 1 FROM runs WHERE incident_id = $2 AND state IN ('pending', 'running'))",
    )
    .bind(now)
    .bind(incident_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a run running without its target (a run cancelled before it could start).
pub(super) async fn start(pool: &PgPool, run_id: i64, now: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE runs SET state = 'running', started_at = $1 WHERE id = $2")
        .bind(now)
        .bind(run_id)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn step_started(
    pool: &PgPool,
    step: &NewStep,
    now: &str,
) -> Result<i64, StoreError> {
    // A read-only step's start is bookkeeping, committed without waiting for the WAL flush
    // (see `RELAXED`), as SQLite commits it: the first action no longer waits for an fsync.
    // The setting is local to this statement's own transaction, which is still open when it
    // commits. A destructive step's start stays durable.
    let commit_mode = if step.destructive { "1" } else { RELAXED };
    Ok(sqlx::query_scalar(&format!(
        "INSERT INTO steps (run_id, step_id, action, destructive, state, started_at)
         SELECT $1, $2, $3, $4, 'started', $5 FROM (SELECT {commit_mode}) AS commit_mode
         RETURNING id"
    ))
    .bind(step.run_id)
    .bind(&step.step_id)
    .bind(&step.action)
    .bind(i64::from(step.destructive))
    .bind(now)
    .fetch_one(pool)
    .await?)
}

pub(super) async fn step_finished(
    pool: &PgPool,
    row: i64,
    end: &StepEnd,
    now: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE steps SET state = $1, summary = $2, outputs = $3, error = $4, finished_at = $5
         WHERE id = $6",
    )
    .bind(end.state.as_str())
    .bind(&end.summary)
    .bind(end.outputs.as_ref().map(to_json).transpose()?)
    .bind(&end.error)
    .bind(now)
    .bind(row)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn step_not_run(
    pool: &PgPool,
    step: &NewStep,
    end: &StepEnd,
    now: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO steps (run_id, step_id, action, destructive, state, summary, outputs, error, started_at, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(step.run_id)
    .bind(&step.step_id)
    .bind(&step.action)
    .bind(i64::from(step.destructive))
    .bind(end.state.as_str())
    .bind(&end.summary)
    .bind(end.outputs.as_ref().map(to_json).transpose()?)
    .bind(&end.error)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// Closes a run, freeing its target, and makes its summary the incident's.
pub(super) async fn finish(
    pool: &PgPool,
    run_id: i64,
    outcome: RunOutcome,
    summary: &str,
    now: &str,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    // The incident first, then the run: the order recording a resolve takes them in, so the
    // two never wait on each other (a deadlock PostgreSQL would break by failing one).
    sqlx::query(
        "UPDATE incidents SET summary = $1 WHERE id = (SELECT incident_id FROM runs WHERE id = $2)",
    )
    .bind(summary)
    .bind(run_id)
    .execute(&mut *tx)
    .await?;
    // Only a run still running: one another replica reported interrupted meanwhile (this
    // replica's lease lapsed) keeps that report, and the incident its summary.
    let done = sqlx::query(
        "UPDATE runs SET state = 'finished', outcome = $1, summary = $2, finished_at = $3,
                target_lock = NULL
         WHERE id = $4 AND state = 'running'",
    )
    .bind(outcome.as_str())
    .bind(summary)
    .bind(now)
    .bind(run_id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(());
    }
    tx.commit().await?;
    Ok(())
}
