//! Reaping runs on PostgreSQL: runs whose holder's lease lapsed (a replica that died or was
//! cut off) are reported interrupted or, never started, taken over; and at shutdown a
//! replica reports its own. Rows are taken `FOR UPDATE SKIP LOCKED`, so two replicas reaping
//! at once never both report one run.

use sqlx::{PgConnection, PgPool, Row};
use time::OffsetDateTime;

use super::{record::insert_decision, ts, Holder, StoreError};
use crate::responders::Mode;
use crate::store::*;

/// See [`Store::recover_runs`].
pub(super) async fn recover_runs(
    pool: &PgPool,
    scope: RecoverScope,
    holder: Holder<'_>,
    now: OffsetDateTime,
) -> Result<Recovery, StoreError> {
    let now_unix = now.unix_timestamp();
    let now = ts(now);
    let mut tx = pool.begin().await?;
    let mut recovery = Recovery::default();
    let running = match scope {
        RecoverScope::Abandoned => sqlx::query(
            "SELECT id, incident_id, responder, target, owner FROM runs
             WHERE state = 'running' AND lease_until_unix < $1 ORDER BY id FOR UPDATE SKIP LOCKED",
        )
        .bind(now_unix),
        RecoverScope::Mine => sqlx::query(
            "SELECT id, incident_id, responder, target, owner FROM runs
             WHERE state = 'running' AND owner = $1 ORDER BY id FOR UPDATE SKIP LOCKED",
        )
        .bind(holder.owner),
    }
    .fetch_all(&mut *tx)
    .await?;
    for row in running {
        let owner: Option<String> = row.try_get("owner")?;
        let cause = Cause::of(scope, owner.as_deref());
        let run_id: i64 = row.try_get("id")?;
        let incident_id: i64 = row.try_get("incident_id")?;
        let last_step = interrupt(&mut tx, run_id, incident_id, &cause, &now).await?;
        recovery.interrupted.push(InterruptedRun {
            run_id,
            incident_id,
            responder: row.try_get("responder")?,
            target: row.try_get("target")?,
            last_step,
            holder: owner,
        });
    }
    if scope == RecoverScope::Mine {
        // Released: another replica's next reap takes them over at once.
        sqlx::query("UPDATE runs SET lease_until_unix = 0 WHERE state = 'pending' AND owner = $1")
            .bind(holder.owner)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(recovery);
    }
    let mut pending = sqlx::query(
        "UPDATE runs SET owner = $1, lease_until_unix = $2
         WHERE id IN (SELECT id FROM runs WHERE state = 'pending' AND lease_until_unix < $3
                      FOR UPDATE SKIP LOCKED)
         RETURNING id, incident_id, responder, target, mode, alert_id",
    )
    .bind(holder.owner)
    .bind(holder.until)
    .bind(now_unix)
    .fetch_all(&mut *tx)
    .await?;
    pending.sort_by_key(|row| row.try_get::<i64, _>("id").unwrap_or_default());
    for row in pending {
        let alert: String = sqlx::query_scalar("SELECT alert FROM alerts WHERE id = $1")
            .bind(row.try_get::<i64, _>("alert_id")?)
            .fetch_one(&mut *tx)
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
    tx.commit().await?;
    Ok(recovery)
}

/// What interrupted a run, in the words of a step's error and of the run's summary.
struct Cause {
    /// "interrupted by {short}: may or may not have happened" (the started step).
    short: String,
    /// "interrupted by {long} during step …" (the run).
    long: String,
}

impl Cause {
    fn of(scope: RecoverScope, owner: Option<&str>) -> Self {
        let plain = |cause: &str| Cause {
            short: cause.to_owned(),
            long: format!("{cause} of the responder"),
        };
        match (scope, owner) {
            (RecoverScope::Mine, _) => plain("a shutdown"),
            (RecoverScope::Abandoned, None) => plain("a restart"),
            (RecoverScope::Abandoned, Some(owner)) => {
                let cause = format!("the loss of the replica holding it (owner {owner})");
                Cause {
                    short: cause.clone(),
                    long: cause,
                }
            }
        }
    }
}

/// Marks one running run interrupted (its started steps `unknown`, its approvals cancelled,
/// its target and lease released) and records why; returns the step it was in, if any.
async fn interrupt(
    tx: &mut PgConnection,
    run_id: i64,
    incident_id: i64,
    cause: &Cause,
    now: &str,
) -> Result<Option<String>, StoreError> {
    let last_step: Option<String> = sqlx::query_scalar(
        "SELECT step_id FROM steps WHERE run_id = $1 AND state = 'started' ORDER BY id DESC LIMIT 1",
    )
    .bind(run_id)
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE steps SET state = 'unknown', finished_at = $1, error = $2
         WHERE run_id = $3 AND state = 'started'",
    )
    .bind(now)
    .bind(format!(
        "interrupted by {}: may or may not have happened",
        cause.short
    ))
    .bind(run_id)
    .execute(&mut *tx)
    .await?;
    let summary = match &last_step {
        Some(step) => format!(
            "interrupted by {} during step {step}, which may or may not have happened; not re-run",
            cause.long
        ),
        None => format!("interrupted by {} between steps; not re-run", cause.long),
    };
    // The lease ends too: a holder still alive but cut off is fenced from acting.
    sqlx::query(
        "UPDATE runs SET state = 'interrupted', outcome = 'interrupted', summary = $1,
                finished_at = $2, target_lock = NULL, lease_until_unix = 0
         WHERE id = $3",
    )
    .bind(&summary)
    .bind(now)
    .bind(run_id)
    .execute(&mut *tx)
    .await?;
    // Nobody can approve a step of a run that no longer runs.
    sqlx::query(
        "UPDATE approvals SET state = 'cancelled', decided_at = $1
         WHERE run_id = $2 AND state = 'pending'",
    )
    .bind(now)
    .bind(run_id)
    .execute(&mut *tx)
    .await?;
    let d = NewDecision {
        incident_id: Some(incident_id),
        run_id: Some(run_id),
        kind: DecisionKind::Interrupted,
        detail: summary,
    };
    insert_decision(&mut *tx, &d, now).await?;
    Ok(last_step)
}
