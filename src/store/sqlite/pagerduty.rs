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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SqliteStore, Store};
    use time::OffsetDateTime;

    fn message(incident_id: i64, kind: PagerDutyKind) -> PagerDutyMessage {
        PagerDutyMessage {
            id: 0,
            incident_id,
            kind,
            body: serde_json::json!({ "dedup_key": format!("k{incident_id}") }),
            attempts: 0,
        }
    }

    #[tokio::test]
    async fn one_trigger_per_incident_and_a_resolve_only_after_it_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/s.db", dir.path().display());
        let store = SqliteStore::connect(&url).await.unwrap();
        for id in [1, 2] {
            sqlx::query("INSERT INTO incidents (id, fingerprint, alertname, status, labels, opened_at) VALUES (?, 'f', 'A', 'open', '{}', 'now')")
                .bind(id)
                .execute(&store.writer)
                .await
                .unwrap();
        }
        let now = OffsetDateTime::now_utc();
        let queue = |incident, kind| {
            let store = store.clone();
            async move {
                store
                    .enqueue_pagerduty(&message(incident, kind), now)
                    .await
                    .unwrap()
                    .is_some()
            }
        };
        assert!(
            !queue(1, PagerDutyKind::Resolve).await,
            "nothing to resolve yet"
        );
        assert!(queue(1, PagerDutyKind::Trigger).await);
        assert!(
            !queue(1, PagerDutyKind::Trigger).await,
            "one trigger per incident"
        );
        assert!(queue(1, PagerDutyKind::Resolve).await);
        assert!(!queue(1, PagerDutyKind::Resolve).await, "one resolve");
        assert!(queue(2, PagerDutyKind::Note).await);
        assert!(
            queue(2, PagerDutyKind::Note).await,
            "notes are never skipped"
        );

        // A Slack message of the same incident neither blocks nor is picked up here.
        let slack = crate::store::NewMessage {
            incident_id: 1,
            kind: crate::store::MessageKind::Parent,
            text: "parent".into(),
            deliver: true,
        };
        store.enqueue_message(&slack, now).await.unwrap();
        let due = store.due_pagerduty(now, 10).await.unwrap();
        let kinds: Vec<_> = due.iter().map(|m| (m.incident_id, m.kind)).collect();
        assert_eq!(
            kinds,
            [(1, PagerDutyKind::Trigger), (2, PagerDutyKind::Note)],
            "the oldest pending of each incident"
        );
        assert_eq!(due[0].body["dedup_key"], "k1");
        let slack_due = store.due_messages(now, 10).await.unwrap();
        assert_eq!(slack_due.len(), 1, "{slack_due:?}");
        assert_eq!(slack_due[0].text, "parent");

        // The resolve waits for its trigger to be accepted.
        store.pagerduty_sent(due[0].id, now).await.unwrap();
        let due = store.due_pagerduty(now, 10).await.unwrap();
        assert_eq!(due[0].kind, PagerDutyKind::Resolve);
        store.close().await;
    }
}
