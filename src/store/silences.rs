//! Alertmanager silences made while a run handles its alert, and their lifting.
//!
//! A silence is written once Alertmanager made it, and lifted exactly once, by one guarded
//! `UPDATE ... RETURNING`: whichever replica's statement changes the row expires it in
//! Alertmanager and says so in the thread.

use async_trait::async_trait;

use super::StoreError;
use crate::alert::Alert;

/// A silence Alertmanager made for a run's alert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSilence {
    /// The incident whose run acts.
    pub incident_id: i64,
    /// The run (one silence per run).
    pub run_id: i64,
    /// Alertmanager's id of the silence.
    pub silence_id: String,
    /// The Alertmanager that made it (an HA pair gossips it to the other).
    pub made_on: String,
    /// The alert instance it mutes, as received: followed while muted, and sent again as
    /// resolved when Alertmanager no longer has it.
    pub alert: Alert,
    /// When it was made (unix seconds).
    pub made_unix: i64,
    /// When Alertmanager ends it by itself (unix seconds).
    pub ends_unix: i64,
}

/// An active silence as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    /// Row id.
    pub id: i64,
    /// What was made.
    pub silence: NewSilence,
}

/// The row as both backends read it.
pub(crate) type SilenceRow = (i64, i64, i64, String, String, String, i64, i64);

/// The columns of [`SilenceRow`], in order.
pub(crate) const SILENCE_COLUMNS: &str =
    "id, incident_id, run_id, silence_id, made_on, alert, made_unix, ends_unix";

/// `row` as a silence; its alert is JSON this service wrote.
pub(crate) fn from_row(row: SilenceRow) -> Result<Silence, StoreError> {
    let (id, incident_id, run_id, silence_id, made_on, alert, made_unix, ends_unix) = row;
    let alert = serde_json::from_str(&alert)
        .map_err(|e| StoreError::Corrupt(format!("silence {id}: alert: {e}")))?;
    Ok(Silence {
        id,
        silence: NewSilence {
            incident_id,
            run_id,
            silence_id,
            made_on,
            alert,
            made_unix,
            ends_unix,
        },
    })
}

/// `rows` as silences, oldest first.
pub(crate) fn oldest_first(rows: Vec<SilenceRow>) -> Result<Vec<Silence>, StoreError> {
    let mut silences = rows
        .into_iter()
        .map(from_row)
        .collect::<Result<Vec<_>, _>>()?;
    silences.sort_by_key(|s| s.id);
    Ok(silences)
}

/// Store operations of silences; part of every [`super::Store`].
#[async_trait]
pub trait SilenceStore: Send + Sync {
    /// Records a silence Alertmanager made (a second one for the same run is ignored).
    async fn record_silence(&self, silence: &NewSilence) -> Result<(), StoreError>;

    /// Every silence not yet lifted, oldest first.
    async fn active_silences(&self) -> Result<Vec<Silence>, StoreError>;

    /// Marks the silence lifted for `reason`; true for the one caller whose update changed
    /// it (that caller expires it in Alertmanager and reports it).
    async fn lift_silence(&self, id: i64, reason: &str, now_unix: i64) -> Result<bool, StoreError>;
}

/// Implements [`SilenceStore`] for a backend; `$p` numbers its placeholders (`?` or `$n`).
macro_rules! silence_store_impl {
    ($store:ty, $pool:ident, [$p1:literal, $p2:literal, $p3:literal, $p4:literal, $p5:literal, $p6:literal, $p7:literal]) => {
        #[async_trait::async_trait]
        impl $crate::store::SilenceStore for $store {
            async fn record_silence(
                &self,
                s: &$crate::store::NewSilence,
            ) -> Result<(), $crate::store::StoreError> {
                let alert = serde_json::to_string(&s.alert)
                    .map_err(|e| $crate::store::StoreError::Corrupt(e.to_string()))?;
                let sql = format!(
                    "INSERT INTO silences (incident_id, run_id, silence_id, made_on, alert, \
                     made_unix, ends_unix) VALUES ({}, {}, {}, {}, {}, {}, {}) \
                     ON CONFLICT (run_id) DO NOTHING",
                    $p1, $p2, $p3, $p4, $p5, $p6, $p7
                );
                sqlx::query(&sql)
                    .bind(s.incident_id)
                    .bind(s.run_id)
                    .bind(&s.silence_id)
                    .bind(&s.made_on)
                    .bind(alert)
                    .bind(s.made_unix)
                    .bind(s.ends_unix)
                    .execute(&self.$pool)
                    .await?;
                Ok(())
            }

            async fn active_silences(
                &self,
            ) -> Result<Vec<$crate::store::Silence>, $crate::store::StoreError> {
                let sql = format!(
                    "SELECT {} FROM silences WHERE state = 'active'",
                    $crate::store::silences::SILENCE_COLUMNS
                );
                let rows: Vec<$crate::store::silences::SilenceRow> =
                    sqlx::query_as(&sql).fetch_all(&self.$pool).await?;
                $crate::store::silences::oldest_first(rows)
            }

            async fn lift_silence(
                &self,
                id: i64,
                reason: &str,
                now_unix: i64,
            ) -> Result<bool, $crate::store::StoreError> {
                let sql = format!(
                    "UPDATE silences SET state = 'lifted', lifted_reason = {}, lifted_unix = {} \
                     WHERE id = {} AND state = 'active'",
                    $p1, $p2, $p3
                );
                let done = sqlx::query(&sql)
                    .bind(reason)
                    .bind(now_unix)
                    .bind(id)
                    .execute(&self.$pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
pub(crate) use silence_store_impl;
