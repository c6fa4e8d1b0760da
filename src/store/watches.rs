//! Watches: after a run's destructive step succeeded, whether the fix held.
//!
//! A watch is written when such a run finishes and ends exactly once, by one guarded
//! `UPDATE ... RETURNING` per ending (a recurrence, or its window running out), so whichever
//! replica's statement changes the row is the one that reports it.

use async_trait::async_trait;
use serde::Serialize;

use super::StoreError;

/// A watch to start: what acted, on what, and until when (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewWatch {
    /// The incident whose run acted.
    pub incident_id: i64,
    /// The run (one watch per run).
    pub run_id: i64,
    /// Its responder.
    pub responder: String,
    /// The alert name watched for.
    pub alertname: String,
    /// The target watched.
    pub target: String,
    /// The destructive step that succeeded (its id), for messages: "after the restart".
    pub step: String,
    /// When that step ended.
    pub acted_unix: i64,
    /// When the watch ends quietly.
    pub ends_unix: i64,
}

/// Where a watch stands: it ends once, either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchState {
    /// Its window is open.
    Watching,
    /// Its window ended quietly.
    Held,
    /// The alert fired again inside it, as a new incident.
    Recurred,
}

crate::responders::outcome::stored_names!(WatchState {
    Watching => "watching",
    Held => "held",
    Recurred => "recurred",
});

/// A watch as stored, with how it ended when it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Watch {
    /// Row id.
    pub id: i64,
    /// What was watched.
    #[serde(flatten)]
    pub watch: NewWatch,
    /// Where it stands.
    pub state: WatchState,
    /// The new incident that was the recurrence.
    pub recurred_incident: Option<i64>,
    /// When it recurred.
    pub recurred_unix: Option<i64>,
}

/// The row as both backends read it.
pub(crate) type WatchRow = (
    i64,
    i64,
    i64,
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    Option<i64>,
    Option<i64>,
);

/// The columns of [`WatchRow`], in order.
pub(crate) const WATCH_COLUMNS: &str = "id, incident_id, run_id, responder, alertname, target, \
     step, acted_unix, ends_unix, state, recurred_incident, recurred_unix";

impl TryFrom<WatchRow> for Watch {
    type Error = StoreError;

    fn try_from(row: WatchRow) -> Result<Self, StoreError> {
        let (
            id,
            incident_id,
            run_id,
            responder,
            alertname,
            target,
            step,
            acted,
            ends,
            state,
            ri,
            ru,
        ) = row;
        let state = super::views::named("state", state, WatchState::parse)?;
        Ok(Watch {
            id,
            watch: NewWatch {
                incident_id,
                run_id,
                responder,
                alertname,
                target,
                step,
                acted_unix: acted,
                ends_unix: ends,
            },
            state,
            recurred_incident: ri,
            recurred_unix: ru,
        })
    }
}

/// `rows` as watches, oldest first (`RETURNING` promises no order).
pub(crate) fn oldest_first(rows: Vec<WatchRow>) -> Result<Vec<Watch>, StoreError> {
    let mut watches = (rows.into_iter())
        .map(Watch::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    watches.sort_by_key(|w| w.id);
    Ok(watches)
}

/// Store operations of watches; part of every [`super::Store`].
#[async_trait]
pub trait WatchStore: Send + Sync {
    /// Starts a watch (a second one for the same run is ignored).
    async fn start_watch(&self, watch: &NewWatch) -> Result<(), StoreError>;

    /// Ends as `recurred` every watch of `alertname` on `target` still watching at `now_unix`
    /// whose incident is not `incident` (the new firing's own), and returns them: the caller
    /// is the one to report them.
    async fn watch_recurred(
        &self,
        alertname: &str,
        target: &str,
        incident: i64,
        now_unix: i64,
    ) -> Result<Vec<Watch>, StoreError>;

    /// Ends as `held` every watch whose window ended by `now_unix`, and returns them.
    async fn watches_held(&self, now_unix: i64) -> Result<Vec<Watch>, StoreError>;

    /// The watches an incident started or was the recurrence of, oldest first.
    async fn incident_watches(&self, incident: i64) -> Result<Vec<Watch>, StoreError>;

    /// When the fixes of `responder` on `target` did not hold (unix seconds, oldest first),
    /// from `since_unix` on and after its latest trust (`/responder trust`).
    async fn recurrences(
        &self,
        responder: &str,
        target: &str,
        since_unix: i64,
    ) -> Result<Vec<i64>, StoreError>;

    /// `/responder trust`: recurrences until `now_unix` no longer count.
    async fn trust_fix(
        &self,
        responder: &str,
        target: &str,
        by: &str,
        now_unix: i64,
    ) -> Result<(), StoreError>;
}

/// Implements [`WatchStore`] for a backend; `$p` numbers its placeholders (`?` or `$n`).
macro_rules! watch_store_impl {
    ($store:ty, $pool:ident, [$p1:literal, $p2:literal, $p3:literal, $p4:literal, $p5:literal, $p6:literal, $p7:literal, $p8:literal]) => {
        #[async_trait::async_trait]
        impl $crate::store::WatchStore for $store {
            async fn start_watch(
                &self,
                w: &$crate::store::NewWatch,
            ) -> Result<(), $crate::store::StoreError> {
                let sql = format!(
                    "INSERT INTO watches (incident_id, run_id, responder, alertname, target, step, \
                     acted_unix, ends_unix) VALUES ({}, {}, {}, {}, {}, {}, {}, {}) \
                     ON CONFLICT (run_id) DO NOTHING",
                    $p1, $p2, $p3, $p4, $p5, $p6, $p7, $p8
                );
                sqlx::query(&sql)
                    .bind(w.incident_id)
                    .bind(w.run_id)
                    .bind(&w.responder)
                    .bind(&w.alertname)
                    .bind(&w.target)
                    .bind(&w.step)
                    .bind(w.acted_unix)
                    .bind(w.ends_unix)
                    .execute(&self.$pool)
                    .await?;
                Ok(())
            }

            async fn watch_recurred(
                &self,
                alertname: &str,
                target: &str,
                incident: i64,
                now_unix: i64,
            ) -> Result<Vec<$crate::store::Watch>, $crate::store::StoreError> {
                let sql = format!(
                    "UPDATE watches SET state = 'recurred', recurred_incident = {}, \
                     recurred_unix = {} WHERE state = 'watching' AND alertname = {} \
                     AND target = {} AND ends_unix > {} AND incident_id <> {} RETURNING {}",
                    $p1,
                    $p2,
                    $p3,
                    $p4,
                    $p5,
                    $p6,
                    $crate::store::watches::WATCH_COLUMNS
                );
                let rows: Vec<$crate::store::watches::WatchRow> = sqlx::query_as(&sql)
                    .bind(incident)
                    .bind(now_unix)
                    .bind(alertname)
                    .bind(target)
                    .bind(now_unix)
                    .bind(incident)
                    .fetch_all(&self.$pool)
                    .await?;
                $crate::store::watches::oldest_first(rows)
            }

            async fn watches_held(
                &self,
                now_unix: i64,
            ) -> Result<Vec<$crate::store::Watch>, $crate::store::StoreError> {
                let sql = format!(
                    "UPDATE watches SET state = 'held' WHERE state = 'watching' \
                     AND ends_unix <= {} RETURNING {}",
                    $p1,
                    $crate::store::watches::WATCH_COLUMNS
                );
                let rows: Vec<$crate::store::watches::WatchRow> = sqlx::query_as(&sql)
                    .bind(now_unix)
                    .fetch_all(&self.$pool)
                    .await?;
                $crate::store::watches::oldest_first(rows)
            }

            async fn incident_watches(
                &self,
                incident: i64,
            ) -> Result<Vec<$crate::store::Watch>, $crate::store::StoreError> {
                let sql = format!(
                    "SELECT {} FROM watches WHERE incident_id = {} OR recurred_incident = {} \
                     ORDER BY id",
                    $crate::store::watches::WATCH_COLUMNS,
                    $p1,
                    $p2
                );
                let rows: Vec<$crate::store::watches::WatchRow> = sqlx::query_as(&sql)
                    .bind(incident)
                    .bind(incident)
                    .fetch_all(&self.$pool)
                    .await?;
                $crate::store::watches::oldest_first(rows)
            }

            async fn recurrences(
                &self,
                responder: &str,
                target: &str,
                since_unix: i64,
            ) -> Result<Vec<i64>, $crate::store::StoreError> {
                let sql = format!(
                    "SELECT w.recurred_unix FROM watches w WHERE w.state = 'recurred' \
                     AND w.responder = {} AND w.target = {} AND w.recurred_unix >= {} \
                     AND w.recurred_unix > COALESCE((SELECT t.trusted_unix FROM watch_trust t \
                     WHERE t.responder = {} AND t.target = {}), -1) ORDER BY w.recurred_unix",
                    $p1, $p2, $p3, $p4, $p5
                );
                Ok(sqlx::query_scalar(&sql)
                    .bind(responder)
                    .bind(target)
                    .bind(since_unix)
                    .bind(responder)
                    .bind(target)
                    .fetch_all(&self.$pool)
                    .await?)
            }

            async fn trust_fix(
                &self,
                responder: &str,
                target: &str,
                by: &str,
                now_unix: i64,
            ) -> Result<(), $crate::store::StoreError> {
                let sql = format!(
                    "INSERT INTO watch_trust (responder, target, trusted_by, trusted_unix) \
                     VALUES ({}, {}, {}, {}) ON CONFLICT (responder, target) DO UPDATE \
                     SET trusted_by = excluded.trusted_by, trusted_unix = excluded.trusted_unix",
                    $p1, $p2, $p3, $p4
                );
                sqlx::query(&sql)
                    .bind(responder)
                    .bind(target)
                    .bind(by)
                    .bind(now_unix)
                    .execute(&self.$pool)
                    .await?;
                Ok(())
            }
        }
    };
}
pub(crate) use watch_store_impl;
