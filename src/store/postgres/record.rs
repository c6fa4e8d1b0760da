//! Recording journal entries on PostgreSQL: incidents, alerts, runs and decisions.
//!
//! Recording is serialized across replicas with an advisory lock, so per-fingerprint order,
//! folding and joining read what the previous recording wrote, exactly as with SQLite's one
//! writer; an entry another replica recorded meanwhile is left alone.

use std::collections::{HashMap, HashSet};

use sqlx::{PgConnection, PgPool, Postgres};

use super::{journal, lock, to_json, ts, Holder, StoreError, RELAXED};
use crate::store::record::{record_batch, recorder_impl, AlertRow, FoldCandidates, FoldKey};
use crate::store::*;

/// See [`Store::record_alerts`].
pub(super) async fn record_alerts(
    pool: &PgPool,
    batch: &[(&JournalEntry, &AlertPlan)],
    now: &str,
    holder: Holder<'_>,
) -> Result<Vec<Recorded>, StoreError> {
    let mut tx = pool.begin().await?;
    // One replica records at a time; the others do not queue behind it to plan and then throw
    // away the same entries: the one recording drains the whole journal, theirs included.
    let (recording, _): (bool, String) =
        sqlx::query_as(&format!("SELECT pg_try_advisory_xact_lock($1), {RELAXED}"))
            .bind(lock::RECORDER)
            .fetch_one(&mut *tx)
            .await?;
    if !recording {
        tx.rollback().await?;
        return Err(StoreError::Contended);
    }
    // Under the lock, what another replica recorded before is committed and visible.
    let ids: Vec<i64> = batch.iter().map(|(entry, _)| entry.id).collect();
    let done: HashSet<i64> =
        sqlx::query_scalar("SELECT id FROM journal WHERE id = ANY($1) AND processed <> 0")
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    let (fresh, ids): (Vec<_>, Vec<i64>) = batch
        .iter()
        .filter(|(entry, _)| !done.contains(&entry.id))
        .map(|pair| (*pair, pair.0.id))
        .unzip();
    let mut recorder = PgRecorder {
        conn: &mut tx,
        now,
        holder,
    };
    let mut fresh_recorded = record_batch(&mut recorder, &fresh).await?.into_iter();
    let recorded = batch
        .iter()
        .map(|(entry, _)| match done.contains(&entry.id) {
            true => Some(Recorded {
                already_recorded: true,
                ..Recorded::default()
            }),
            false => fresh_recorded.next(),
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| StoreError::Corrupt("a recorded batch came back short".into()))?;
    journal::mark_processed(&mut tx, &ids).await?;
    tx.commit().await?;
    Ok(recorded)
}

/// Records inside the caller's transaction, stamping rows with `now`.
struct PgRecorder<'c> {
    conn: &'c mut PgConnection,
    now: &'c str,
    holder: Holder<'c>,
}

recorder_impl!(PgRecorder {
    async fn open_incidents(
        &mut self,
        fingerprints: &[&str],
    ) -> Result<HashMap<String, i64>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT fingerprint, MAX(id) FROM incidents
             WHERE fingerprint = ANY($1) AND status = 'open' GROUP BY fingerprint",
        )
        .bind(fingerprints)
        .fetch_all(&mut *self.conn)
        .await?;
        Ok(rows.into_iter().collect())
    }

    async fn fold_candidates(
        &mut self,
        keys: &[&FoldKey],
    ) -> Result<Vec<FoldCandidates>, StoreError> {
        let names: Vec<&str> = keys.iter().map(|(name, _)| name.as_str()).collect();
        let targets: Vec<Option<&str>> = keys.iter().map(|(_, target)| target.as_deref()).collect();
        let rows: Vec<(String, Option<String>, i64, Option<i64>)> = sqlx::query_as(
            // One equality join per shape of target, so each searches `incidents_fold`; an OR
            // of both scans the whole table (measured: 70 ms at 200,000 incidents, 4 ms so).
            "WITH k AS (SELECT DISTINCT n, t FROM UNNEST($1::text[], $2::text[]) AS k(n, t)),
             m AS (SELECT i.id, i.alertname, i.target FROM k JOIN incidents i
                       ON i.target = k.t AND i.alertname = k.n AND i.status = 'open'
                   UNION ALL
                   SELECT i.id, i.alertname, i.target FROM k JOIN incidents i
                       ON i.target IS NULL AND k.t IS NULL AND i.alertname = k.n AND i.status = 'open')
             SELECT alertname, target, MAX(id),
                    MAX(id) FILTER (WHERE EXISTS (SELECT 1 FROM runs r WHERE r.incident_id = m.id))
             FROM m GROUP BY alertname, target",
        )
        .bind(&names)
        .bind(&targets)
        .fetch_all(&mut *self.conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, target, newest, newest_with_run)| FoldCandidates {
                key: (name, target),
                newest,
                newest_with_run,
            })
            .collect())
    }

    async fn insert_alerts(&mut self, rows: &[AlertRow<'_>]) -> Result<i64, StoreError> {
        let alerts = rows.iter().map(|row| &row.entry.alert);
        let incidents: Vec<i64> = rows.iter().map(|row| row.incident).collect();
        let journal: Vec<i64> = rows.iter().map(|row| row.entry.id).collect();
        let statuses: Vec<&str> = alerts.clone().map(|a| a.status.as_str()).collect();
        let starts: Vec<String> = alerts.clone().map(|a| ts(a.starts_at)).collect();
        let ends: Vec<Option<String>> = alerts.clone().map(|a| a.ends_at.map(ts)).collect();
        let bodies = alerts.map(to_json).collect::<Result<Vec<String>, _>>()?;
        // WITH ORDINALITY and ORDER BY: ids are handed out in the order given.
        let ids: Vec<i64> = sqlx::query_scalar(
            "INSERT INTO alerts (incident_id, journal_id, status, starts_at, ends_at, alert, received_at)
             SELECT i, j, s, b, e, a, $7
             FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])
                 WITH ORDINALITY AS r(i, j, s, b, e, a, n)
             ORDER BY n
             RETURNING id",
        )
        .bind(&incidents)
        .bind(&journal)
        .bind(&statuses)
        .bind(&starts)
        .bind(&ends)
        .bind(&bodies)
        .bind(self.now)
        .fetch_all(&mut *self.conn)
        .await?;
        ids.into_iter()
            .max()
            .ok_or_else(|| StoreError::Corrupt("no alert rows to insert".into()))
    }

    async fn insert_decisions(&mut self, decisions: &[NewDecision]) -> Result<(), StoreError> {
        let incidents: Vec<Option<i64>> = decisions.iter().map(|d| d.incident_id).collect();
        let runs: Vec<Option<i64>> = decisions.iter().map(|d| d.run_id).collect();
        let kinds: Vec<&str> = decisions.iter().map(|d| d.kind.as_str()).collect();
        let details: Vec<&str> = decisions.iter().map(|d| d.detail.as_str()).collect();
        sqlx::query(
            "INSERT INTO decisions (incident_id, run_id, kind, detail, at)
             SELECT i, r, k, d, $5
             FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[])
                 WITH ORDINALITY AS x(i, r, k, d, n)
             ORDER BY n",
        )
        .bind(&incidents)
        .bind(&runs)
        .bind(&kinds)
        .bind(&details)
        .bind(self.now)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

});

/// Records a decision on any executor (the pool, or a transaction's connection).
pub(super) async fn insert_decision<'e, E>(
    exec: E,
    d: &NewDecision,
    now: &str,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    sqlx::query(
        "INSERT INTO decisions (incident_id, run_id, kind, detail, at) VALUES ($1, $2, $3, $4, $5)",
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
