//! The statements of recording that are one text on both backends (`$N` parameters, which
//! SQLite reads as numbered too, and `RETURNING`): [`recorder_impl!`] writes them into each
//! backend's [`super::Recorder`] beside the ones a backend writes its own way (lists).

/// Asks the running runs of other incidents holding a dead target to stop, unless a
/// destructive step of theirs has started (`$1` the death's incident, `$2` the target, `$3`
/// when it died); returns their ids. See [`crate::store::Store::ask_preemption`].
pub(crate) const ASK_PREEMPTION: &str = "UPDATE runs SET preempt_by = $1, preempt_died_unix = $3
     WHERE target_lock = $2 AND incident_id <> $1 AND state = 'running'
       AND NOT EXISTS (SELECT 1 FROM steps s
                       WHERE s.run_id = runs.id AND s.destructive = 1 AND s.state = 'started')
     RETURNING id";

/// `impl Recorder for $recorder` (a struct of `conn`, `now` and `holder`) with the shared
/// statements and the backend's own `{ … }`.
macro_rules! recorder_impl {
    ($recorder:ident { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::store::record::Recorder for $recorder<'_> {
            $($own)*

            async fn ask_preemption(
                &mut self,
                death: &$crate::store::TargetDeath<'_>,
            ) -> Result<Vec<i64>, StoreError> {
                Ok(sqlx::query_scalar($crate::store::record::statements::ASK_PREEMPTION)
                    .bind(death.incident)
                    .bind(death.target)
                    .bind(death.died_unix)
                    .fetch_all(&mut *self.conn)
                    .await?)
            }

            async fn fold_target(
                &mut self,
                key: &$crate::store::record::FoldKey,
                with_run: bool,
            ) -> Result<Option<i64>, StoreError> {
                let same_target = if key.1.is_some() {
                    "target = $1"
                } else {
                    // Bound all the same, so both shapes take the same binds.
                    "target IS NULL AND $1 IS NULL"
                };
                let with_run = if with_run {
                    " AND EXISTS (SELECT 1 FROM runs r WHERE r.incident_id = i.id)"
                } else {
                    ""
                };
                Ok(sqlx::query_scalar(&format!(
                    "SELECT id FROM incidents i WHERE {same_target} AND alertname = $2 AND status = 'open'{with_run}
                     ORDER BY id DESC LIMIT 1"
                ))
                .bind(key.1.as_deref())
                .bind(&key.0)
                .fetch_optional(&mut *self.conn)
                .await?)
            }

            async fn latest_incident(&mut self, fingerprint: &str) -> Result<Option<i64>, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT id FROM incidents WHERE fingerprint = $1 ORDER BY id DESC LIMIT 1",
                )
                .bind(fingerprint)
                .fetch_optional(&mut *self.conn)
                .await?)
            }

            async fn insert_incident(
                &mut self,
                alert: &$crate::alert::Alert,
                target: Option<&str>,
            ) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO incidents (fingerprint, alertname, severity, target, status, labels, opened_at)
                     VALUES ($1, $2, $3, $4, 'open', $5, $6) RETURNING id",
                )
                .bind(&alert.fingerprint)
                .bind(alert.name())
                .bind(alert.labels.get("severity"))
                .bind(target)
                .bind(to_json(&alert.labels)?)
                .bind(self.now)
                .fetch_one(&mut *self.conn)
                .await?)
            }

            async fn resolve_incident(&mut self, incident: i64) -> Result<Vec<i64>, StoreError> {
                sqlx::query("UPDATE incidents SET status = 'resolved', resolved_at = $1 WHERE id = $2")
                    .bind(self.now)
                    .bind(incident)
                    .execute(&mut *self.conn)
                    .await?;
                let mut active: Vec<i64> = sqlx::query_scalar(
                    "UPDATE runs SET cancel_requested = 1
                     WHERE incident_id = $1 AND state IN ('pending', 'running') RETURNING id",
                )
                .bind(incident)
                .fetch_all(&mut *self.conn)
                .await?;
                active.sort_unstable();
                Ok(active)
            }

            async fn pending_run(
                &mut self,
                incident: i64,
                responder: &str,
            ) -> Result<Option<i64>, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT id FROM runs WHERE incident_id = $1 AND responder = $2 AND state = 'pending'
                     ORDER BY id LIMIT 1",
                )
                .bind(incident)
                .bind(responder)
                .fetch_optional(&mut *self.conn)
                .await?)
            }

            async fn insert_run(
                &mut self,
                incident: i64,
                alert_id: i64,
                run: &$crate::store::RunPlan,
            ) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO runs (incident_id, alert_id, responder, target, mode, state, created_at, owner, lease_until_unix)
                     VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8) RETURNING id",
                )
                .bind(incident)
                .bind(alert_id)
                .bind(&run.responder)
                .bind(&run.target)
                .bind(run.mode.as_str())
                .bind(self.now)
                .bind(self.holder.owner)
                .bind(self.holder.until)
                .fetch_one(&mut *self.conn)
                .await?)
            }
        }
    };
}

pub(crate) use recorder_impl;
