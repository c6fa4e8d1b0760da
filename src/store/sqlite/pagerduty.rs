//! The PagerDuty rows of the outbox: queued apart from Slack's (`destination = 'pagerduty'`),
//! in order per incident, so neither destination's outage holds the other back.

use sqlx::{Row, SqlitePool};

use super::{to_json, StoreError};
use crate::store::{PagerDutyKind, PagerDutyMessage};

/// Inserts the delivery unless the rules skip it: one trigger per incident, and a resolve
/// only once and only after a trigger (a resolve of nothing would be noise in PagerDuty).
pub(super) async fn enqueue(
    pool: &SqlitePool,
    m: &PagerDutyMessage,
    now: &str,
) -> Result<Option<i64>, StoreError> {
    let has = |kind: PagerDutyKind| {
        format!(
            "EXISTS (SELECT 1 FROM outbox WHERE incident_id = ?1 AND destination = 'pagerduty' AND kind = '{}')",
            kind.as_str()
        )
    };
    let rule = match m.kind {
        PagerDutyKind::Note => "1".to_owned(),
        PagerDutyKind::Trigger => format!("NOT {}", has(PagerDutyKind::Trigger)),
        PagerDutyKind::Resolve => format!(
            "{} AND NOT {}",
            has(PagerDutyKind::Trigger),
            has(PagerDutyKind::Resolve)
        ),
    };
    let sql = format!(
        "INSERT INTO outbox (incident_id, destination, kind, text, state, created_at)
         SELECT ?1, 'pagerduty', ?2, ?3, 'pending', ?4 WHERE {rule}"
    );
    let done = sqlx::query(&sql)
        .bind(m.incident_id)
        .bind(m.kind.as_str())
        .bind(to_json(&m.body)?)
        .bind(now)
        .execute(pool)
        .await?;
    Ok((done.rows_affected() == 1).then(|| done.last_insert_rowid()))
}

/// The oldest pending PagerDuty delivery of each incident, when due: a resolve never
/// overtakes its trigger.
pub(super) async fn due(
    pool: &SqlitePool,
    now: i64,
    limit: u32,
) -> Result<Vec<PagerDutyMessage>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, incident_id, kind, text, attempts FROM outbox
         WHERE id IN (SELECT MIN(id) FROM outbox WHERE state = 'pending' AND destination = 'pagerduty' GROUP BY incident_id)
           AND next_attempt_unix <= ?
         ORDER BY id LIMIT ?",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("kind")?;
            let body: String = row.try_get("text")?;
            Ok(PagerDutyMessage {
                id: row.try_get("id")?,
                incident_id: row.try_get("incident_id")?,
                kind: PagerDutyKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("PagerDuty outbox kind {kind}")))?,
                body: serde_json::from_str(&body)
                    .map_err(|e| StoreError::Corrupt(format!("PagerDuty outbox body: {e}")))?,
                attempts: row.try_get("attempts")?,
            })
        })
        .collect()
}

/// Marks a delivery accepted by PagerDuty.
pub(super) async fn sent(pool: &SqlitePool, id: i64, now: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbox SET state = 'sent', sent_at = ?, attempts = attempts + 1 WHERE id = ?",
    )
    .bind(now)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}
