//! The intake journal on PostgreSQL: a group commit's alerts in one statement per chunk.
//!
//! Each chunk is one `INSERT … SELECT FROM UNNEST(arrays)`: one round trip and one prepared
//! statement whatever the batch size (no statement per row count, no bind-parameter limit).

use std::collections::HashSet;

use sqlx::{PgConnection, PgPool, Row};

use super::{to_json, StoreError};
use crate::alert::Alert;
use crate::store::JournalEntry;

/// The most rows one statement inserts: bounds a statement's size, not its count.
const CHUNK: usize = 1024;

/// Appends `alerts` in one transaction; for each, whether it was new (false for one already
/// in the journal, and for a repeat of an earlier alert of the same batch).
pub(super) async fn append(
    pool: &PgPool,
    alerts: &[Alert],
    now: &str,
) -> Result<Vec<bool>, StoreError> {
    let mut keys = Vec::with_capacity(alerts.len());
    let mut sources = Vec::with_capacity(alerts.len());
    let mut documents = Vec::with_capacity(alerts.len());
    for alert in alerts {
        keys.push(alert.dedup_key());
        sources.push(alert.source.as_str().to_owned());
        documents.push(to_json(alert)?);
    }
    let mut inserted = HashSet::with_capacity(keys.len());
    if keys.len() <= CHUNK {
        // One statement is atomic on its own: no BEGIN and COMMIT round trips on the ack path.
        let mut conn = pool.acquire().await?;
        insert_chunk(&mut conn, &keys, &sources, &documents, now, &mut inserted).await?;
        return Ok(keys.iter().map(|key| inserted.remove(key)).collect());
    }
    let mut tx = pool.begin().await?;
    for start in (0..keys.len()).step_by(CHUNK) {
        let end = (start + CHUNK).min(keys.len());
        insert_chunk(
            &mut tx,
            &keys[start..end],
            &sources[start..end],
            &documents[start..end],
            now,
            &mut inserted,
        )
        .await?;
    }
    tx.commit().await?;
    // Removing as we go marks only the first of a key repeated within the batch as new.
    Ok(keys.iter().map(|key| inserted.remove(key)).collect())
}

async fn insert_chunk(
    conn: &mut PgConnection,
    keys: &[String],
    sources: &[String],
    documents: &[String],
    now: &str,
    inserted: &mut HashSet<String>,
) -> Result<(), StoreError> {
    // WITH ORDINALITY … ORDER BY keeps the batch's order in the ids (the processing order).
    let rows = sqlx::query(
        "INSERT INTO journal (dedup_key, source, alert, received_at)
         SELECT k, s, a, $4 FROM UNNEST($1::text[], $2::text[], $3::text[])
             WITH ORDINALITY AS t (k, s, a, n)
         ORDER BY n
         ON CONFLICT (dedup_key) DO NOTHING RETURNING dedup_key",
    )
    .bind(keys)
    .bind(sources)
    .bind(documents)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        inserted.insert(row.try_get::<String, _>(0)?);
    }
    Ok(())
}

/// The oldest unprocessed entries.
pub(super) async fn pending(pool: &PgPool, limit: u32) -> Result<Vec<JournalEntry>, StoreError> {
    let rows =
        sqlx::query("SELECT id, alert FROM journal WHERE processed = 0 ORDER BY id LIMIT $1")
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
