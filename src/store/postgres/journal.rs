//! The intake journal on PostgreSQL: a group commit's alerts in one statement per chunk.
//!
//! Each chunk is one `INSERT … SELECT FROM UNNEST(arrays)`: one round trip and one prepared
//! statement whatever the batch size (no statement per row count, no bind-parameter limit).

use std::collections::HashSet;

use sqlx::{PgConnection, PgPool, Row};

use super::{to_json, StoreError};
use crate::alert::Alert;
use crate::store::{JournalEntry, Rank};

/// The most rows one statement inserts: bounds a statement's size, not its count.
const CHUNK: usize = 1024;

/// Appends `alerts` in one transaction; for each, whether it was new (false for one already
/// in the journal, and for a repeat of an earlier alert of the same batch).
pub(super) async fn append(
    pool: &PgPool,
    alerts: &[Alert],
    ranks: &[Rank],
    now: &str,
) -> Result<Vec<bool>, StoreError> {
    if ranks.len() != alerts.len() {
        return Err(StoreError::Corrupt(format!(
            "{} alerts with {} ranks",
            alerts.len(),
            ranks.len()
        )));
    }
    let mut rows = Rows::default();
    for (alert, rank) in alerts.iter().zip(ranks) {
        rows.keys.push(alert.dedup_key());
        rows.sources.push(alert.source.as_str().to_owned());
        rows.documents.push(to_json(alert)?);
        rows.priorities.push(i16::from(rank.priority.0));
        rows.targets.push(rank.target.clone());
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
    targets: Vec<String>,
}

async fn insert_chunk(
    conn: &mut PgConnection,
    rows: &Rows,
    range: std::ops::Range<usize>,
    now: &str,
    inserted: &mut HashSet<String>,
) -> Result<(), StoreError> {
    // WITH ORDINALITY … ORDER BY keeps the batch's order in the ids (the arrival order).
    // A turn comes after its target's pending entries and no earlier than the turn recording
    // has reached in its priority; the target's entries of this batch follow one another.
    // Computed in the database, so every replica agrees.
    let returned = sqlx::query(
        "INSERT INTO journal (dedup_key, source, alert, received_at, priority, target, turn)
         SELECT k, s, a, $4, p, g,
                GREATEST(
                    (SELECT MAX(j.turn) + 1 FROM journal j
                     WHERE j.processed = 0 AND j.priority = t.p AND j.target = t.g),
                    (SELECT r.turn FROM journal_reached r WHERE r.priority = t.p),
                    0
                ) + ROW_NUMBER() OVER (PARTITION BY p, g ORDER BY n) - 1
         FROM UNNEST($1::text[], $2::text[], $3::text[], $5::smallint[], $6::text[])
             WITH ORDINALITY AS t (k, s, a, p, g, n)
         ORDER BY n
         ON CONFLICT (dedup_key) DO NOTHING RETURNING dedup_key",
    )
    .bind(&rows.keys[range.clone()])
    .bind(&rows.sources[range.clone()])
    .bind(&rows.documents[range.clone()])
    .bind(now)
    .bind(&rows.priorities[range.clone()])
    .bind(&rows.targets[range])
    .fetch_all(&mut *conn)
    .await?;
    for row in returned {
        inserted.insert(row.try_get::<String, _>(0)?);
    }
    Ok(())
}

/// The unprocessed entries to take next: highest priority first; within one, by turn (targets
/// take turns), then in arrival order.
pub(super) async fn pending(pool: &PgPool, limit: u32) -> Result<Vec<JournalEntry>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, alert FROM journal WHERE processed = 0
         ORDER BY priority DESC, turn, id LIMIT $1",
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

/// Marks the journal entries `ids` processed and raises the turn reached in their priorities,
/// in one statement.
pub(super) async fn mark_processed(conn: &mut PgConnection, ids: &[i64]) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "WITH done AS (
             UPDATE journal SET processed = 1 WHERE id = ANY($1) RETURNING priority, turn
         )
         INSERT INTO journal_reached (priority, turn)
         SELECT priority, MAX(turn) FROM done GROUP BY priority ORDER BY priority
         ON CONFLICT (priority) DO UPDATE
             SET turn = GREATEST(journal_reached.turn, EXCLUDED.turn)",
    )
    .bind(ids)
    .execute(conn)
    .await?;
    Ok(())
}
