//! The intake journal on PostgreSQL: a group commit's alerts in one statement per chunk.
//!
//! Each chunk is one `INSERT … SELECT FROM UNNEST(arrays)`: one round trip and one prepared
//! statement whatever the batch size (no statement per row count, no bind-parameter limit).

use std::collections::HashSet;

use sqlx::{PgConnection, PgPool, Row};

use super::{to_json, StoreError};
use crate::alert::Alert;
use crate::store::{JournalEntry, Priority};

/// The most rows one statement inserts: bounds a statement's size, not its count.
const CHUNK: usize = 1024;

/// Appends `alerts` in one transaction; for each, whether it was new (false for one already
/// in the journal, and for a repeat of an earlier alert of the same batch).
pub(super) async fn append(
    pool: &PgPool,
    alerts: &[Alert],
    priorities: &[Priority],
    now: &str,
) -> Result<Vec<bool>, StoreError> {
    if priorities.len() != alerts.len() {
        return Err(StoreError::Corrupt(format!(
            "{} alerts with {} priorities",
            alerts.len(),
            priorities.len()
        )));
    }
    let mut rows = Rows::default();
    for (alert, priority) in alerts.iter().zip(priorities) {
        rows.keys.push(alert.dedup_key());
        rows.sources.push(alert.source.as_str().to_owned());
        rows.documents.push(to_json(alert)?);
        rows.priorities.push(i16::from(priority.0));
    }
    let keys = &rows.keys;
    let mut inserted = HashSet::with_capacity(keys.len());
    if keys.len() <= CHUNK {
        // One statement is atomic on its own: no BEGIN and COMMIT round trips on the ack path.
        let mut conn = pool.acquire().await?;
        insert_chunk(&mut conn, &rows, 0..keys.len(), now, &mut inserted).await?;
        return Ok(keys.iter().map(|key| inserted.remove(key)).collect());
    }
    let mut tx = pool.begin().await?;
    for start in (0..keys.len()).step_by(CHUNK) {
        let end = (start + CHUNK).min(keys.len());
        insert_chunk(&mut tx, &rows, start..end, now, &mut inserted).await?;
    }
    tx.commit().await?;
    // Removing as we go marks only the first of a key repeated within the batch as new.
    Ok(keys.iter().map(|key| inserted.remove(key)).collect())
}

/// A batch's columns, as the arrays one statement unnests.
#[derive(Default)]
struct Rows {
    keys: Vec<String>,
    sources: Vec<String>,
    documents: Vec<String>,
    priorities: Vec<i16>,
}

async fn insert_chunk(
    conn: &mut PgConnection,
    rows: &Rows,
    range: std::ops::Range<usize>,
    now: &str,
    inserted: &mut HashSet<String>,
) -> Result<(), StoreError> {
    // WITH ORDINALITY … ORDER BY keeps the batch's order in the ids (the arrival order).
    let returned = sqlx::query(
        "INSERT INTO journal (dedup_key, source, alert, received_at, priority)
         SELECT k, s, a, $4, p FROM UNNEST($1::text[], $2::text[], $3::text[], $5::smallint[])
             WITH ORDINALITY AS t (k, s, a, p, n)
         ORDER BY n
         ON CONFLICT (dedup_key) DO NOTHING RETURNING dedup_key",
    )
    .bind(&rows.keys[range.clone()])
    .bind(&rows.sources[range.clone()])
    .bind(&rows.documents[range.clone()])
    .bind(now)
    .bind(&rows.priorities[range])
    .fetch_all(&mut *conn)
    .await?;
    for row in returned {
        inserted.insert(row.try_get::<String, _>(0)?);
    }
    Ok(())
}

/// The unprocessed entries to take next: highest priority first, arrival order within one.
pub(super) async fn pending(pool: &PgPool, limit: u32) -> Result<Vec<JournalEntry>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, alert FROM journal WHERE processed = 0 ORDER BY priority DESC, id LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let alert: String = row.try_get("alert")?;
            Ok(JournalEntry {
                id: row.try_get("id")?,
                alert: serde_json::from_str(&alert)
                    .map_err(|e| StoreError::Corrupt(format!("journal alert: {e}")))?,
            })
        })
        .collect()
}

/// Marks the journal entries `ids` processed, in one statement.
pub(super) async fn mark_processed(conn: &mut PgConnection, ids: &[i64]) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE journal SET processed = 1 WHERE id = ANY($1)")
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}
