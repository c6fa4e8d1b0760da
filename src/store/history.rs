//! What `replay` reads back: the alerts recorded since a time with the runs each started, and
//! the budget uses of that time, so a catalog change can be weighed against real history.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::StoreError;
use crate::alert::Alert;

/// An alert as recorded, with what it started.
#[derive(Debug, Clone)]
pub struct PastAlert {
    /// Alert row id (recording order).
    pub id: i64,
    /// The incident it was recorded on.
    pub incident_id: i64,
    /// The alert as accepted.
    pub alert: Alert,
    /// When it was recorded.
    pub received_at: OffsetDateTime,
    /// Whether it opened its incident (the incident's first alert).
    pub opened: bool,
    /// The runs it started, oldest first.
    pub run_ids: Vec<i64>,
}

/// One recorded use of a destructive step's budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetUse {
    /// Responder name.
    pub responder: String,
    /// Target.
    pub target: String,
    /// Step id.
    pub step: String,
    /// When (unix seconds).
    pub at_unix: i64,
    /// The run that spent it.
    pub run_id: Option<i64>,
}

/// Store reads of `replay`; part of every [`super::Store`].
#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// The alerts recorded at or after `since`, in recording order, with their runs.
    async fn alerts_since(&self, since: OffsetDateTime) -> Result<Vec<PastAlert>, StoreError>;

    /// Every budget use at or after `since_unix`, oldest first.
    async fn budget_uses_since(&self, since_unix: i64) -> Result<Vec<BudgetUse>, StoreError>;
}

/// Parses a stored RFC 3339 time.
pub(super) fn parse_time(text: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| StoreError::Corrupt(format!("time {text:?}: {e}")))
}

/// The text bound that finds every row recorded at or after `since`: received_at is RFC 3339
/// text with or without fractions, so a second earlier is compared and the exact bound is
/// applied to the parsed times ([`keep_since`]).
pub(super) fn text_bound(since: OffsetDateTime) -> String {
    super::format_time(since.replace_nanosecond(0).unwrap_or(since) - time::Duration::SECOND)
}

/// Keeps the alerts at or after `since`, attaching to each the runs `(run id, alert id)` it
/// started.
pub(super) fn assemble(
    mut alerts: Vec<PastAlert>,
    runs: &[(i64, i64)],
    since: OffsetDateTime,
) -> Vec<PastAlert> {
    alerts.retain(|a| a.received_at >= since);
    let mut by_alert: std::collections::HashMap<i64, Vec<i64>> = std::collections::HashMap::new();
    for (run, alert) in runs {
        by_alert.entry(*alert).or_default().push(*run);
    }
    for alert in &mut alerts {
        alert.run_ids = by_alert.remove(&alert.id).unwrap_or_default();
    }
    alerts
}

/// The alerts recorded from a text bound on, each with whether it opened its incident.
/// `$1` binds positionally on both backends.
pub(super) const ALERTS_SINCE: &str = "SELECT a.id, a.incident_id, a.alert, a.received_at,
        a.id = (SELECT MIN(b.id) FROM alerts b WHERE b.incident_id = a.incident_id) AS opened
    FROM alerts a WHERE a.received_at >= $1 ORDER BY a.id";
/// The runs of the alerts [`ALERTS_SINCE`] reads.
pub(super) const RUNS_SINCE: &str = "SELECT id, alert_id FROM runs
    WHERE alert_id IN (SELECT id FROM alerts WHERE received_at >= $1) ORDER BY id";
/// Budget uses from a time on.
pub(super) const USES_SINCE: &str =
    "SELECT responder, target, step_id, at_unix, run_id FROM budget_uses
    WHERE at_unix >= $1 ORDER BY at_unix, id";

/// Implements [`HistoryStore`] for a backend whose read pool is the field `$pool`: the
/// statements and rows are the same on both.
macro_rules! history_impl {
    ($store:ident, $pool:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::HistoryStore for $store {
            async fn alerts_since(
                &self,
                since: time::OffsetDateTime,
            ) -> Result<Vec<$crate::store::PastAlert>, $crate::store::StoreError> {
                use sqlx::Row;
                use $crate::store::history as h;
                use $crate::store::StoreError;
                let bound = h::text_bound(since);
                let mut conn = self.$pool.acquire().await?;
                let rows = sqlx::query(h::ALERTS_SINCE)
                    .bind(&bound)
                    .fetch_all(&mut *conn)
                    .await?;
                let alerts = rows
                    .iter()
                    .map(|r| {
                        let alert = serde_json::from_str(&r.try_get::<String, _>("alert")?)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                        Ok($crate::store::PastAlert {
                            id: r.try_get("id")?,
                            incident_id: r.try_get("incident_id")?,
                            alert,
                            received_at: h::parse_time(&r.try_get::<String, _>("received_at")?)?,
                            opened: r.try_get("opened")?,
                            run_ids: Vec::new(),
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                let runs: Vec<(i64, i64)> = sqlx::query_as(h::RUNS_SINCE)
                    .bind(&bound)
                    .fetch_all(&mut *conn)
                    .await?;
                Ok(h::assemble(alerts, &runs, since))
            }

            async fn budget_uses_since(
                &self,
                since_unix: i64,
            ) -> Result<Vec<$crate::store::BudgetUse>, $crate::store::StoreError> {
                use sqlx::Row;
                let rows = sqlx::query($crate::store::history::USES_SINCE)
                    .bind(since_unix)
                    .fetch_all(&self.$pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::store::BudgetUse {
                            responder: r.try_get("responder")?,
                            target: r.try_get("target")?,
                            step: r.try_get("step_id")?,
                            at_unix: r.try_get("at_unix")?,
                            run_id: r.try_get("run_id")?,
                        })
                    })
                    .collect()
            }
        }
    };
}
pub(super) use history_impl;
