//! Appending to the intake journal: a group commit's alerts in as few statements as possible.
//!
//! The driver hands every statement to the connection's own thread and waits for the answer,
//! so one `INSERT` per alert costs two thread switches per alert; under load that, not SQLite,
//! was the intake's bound. A batch is therefore written with multi-row `INSERT`s. Their sizes
//! are powers of two (a batch of 300 is 256 + 32 + 8 + 4 rows), so only a handful of distinct
//! statements exist and all of them stay in the connection's prepared-statement cache instead
//! of pushing out the dispatcher's.

use std::collections::HashSet;
use std::sync::LazyLock;

use sqlx::{Row, SqliteConnection};

use super::{to_json, StoreError};
use crate::alert::Alert;
use crate::store::Rank;

/// The most rows one statement inserts (7 values each, far below SQLite's 32,766 variables).
pub(super) const MAX_ROWS: usize = 256;

/// `INSERTS[k]` inserts 2^k rows and returns the dedup keys of those that were new.
static INSERTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    (0..=MAX_ROWS.trailing_zeros())
        .map(|k| {
            let rows = vec!["(?, ?, ?, ?, ?, ?, ?)"; 1 << k].join(", ");
            format!(
                "INSERT INTO journal (dedup_key, source, alert, received_at, priority, target, turn)
                 VALUES {rows}
                 ON CONFLICT (dedup_key) DO NOTHING RETURNING dedup_key"
            )
        })
        .collect()
});

/// Splits `n` into powers of two, largest first, none above [`MAX_ROWS`].
pub(super) fn chunk_sizes(mut n: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    while n > 0 {
        let size = if n >= MAX_ROWS {
            MAX_ROWS
        } else {
            1 << n.ilog2()
        };
        sizes.push(size);
        n -= size;
    }
    sizes
}

/// Inserts `alerts` inside the caller's transaction, each with its rank and turn; for each,
/// whether it was new (false for one already in the journal, and for a repeat of an earlier
/// alert of the same batch).
pub(super) async fn append(
    conn: &mut SqliteConnection,
    alerts: &[Alert],
    ranks: &[Rank],
    turns: &[i64],
    now: &str,
) -> Result<Vec<bool>, StoreError> {
    if ranks.len() != alerts.len() || turns.len() != alerts.len() {
        return Err(StoreError::Corrupt(format!(
            "{} alerts with {} ranks and {} turns",
            alerts.len(),
            ranks.len(),
            turns.len()
        )));
    }
    let rows: Vec<(String, String)> = alerts
        .iter()
        .map(|alert| Ok((alert.dedup_key(), to_json(alert)?)))
        .collect::<Result<_, StoreError>>()?;
    let mut inserted = HashSet::with_capacity(rows.len());
    let mut start = 0;
    for size in chunk_sizes(rows.len()) {
        let range = start..start + size;
        let mut query = sqlx::query(&INSERTS[size.trailing_zeros() as usize]);
        for i in range {
            let (key, json) = &rows[i];
            query = query
                .bind(key.as_str())
                .bind(alerts[i].source.as_str())
                .bind(json.as_str())
                .bind(now)
                .bind(i64::from(ranks[i].priority.0))
                .bind(ranks[i].target.as_str())
                .bind(turns[i]);
        }
        for row in query.fetch_all(&mut *conn).await? {
            inserted.insert(row.try_get::<String, _>(0)?);
        }
        start += size;
    }
    // Removing as we go marks only the first of a key repeated within the batch as new.
    Ok(rows.iter().map(|(key, _)| inserted.remove(key)).collect())
}

/// Marks the journal entries `ids` processed, in one statement.
pub(super) async fn mark_processed(
    conn: &mut SqliteConnection,
    ids: impl Iterator<Item = i64>,
) -> Result<(), StoreError> {
    let ids: Vec<i64> = ids.collect();
    sqlx::query("UPDATE journal SET processed = 1 WHERE id IN (SELECT value FROM json_each(?))")
        .bind(serde_json::Value::from(ids).to_string())
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_into_cached_power_of_two_statements() {
        assert_eq!(chunk_sizes(0), Vec::<usize>::new());
        assert_eq!(chunk_sizes(1), [1]);
        assert_eq!(chunk_sizes(300), [256, 32, 8, 4]);
        assert_eq!(chunk_sizes(600), [256, 256, 64, 16, 8]);
        for n in 0..1_100 {
            let sizes = chunk_sizes(n);
            assert_eq!(sizes.iter().sum::<usize>(), n);
            assert!(sizes.iter().all(|s| s.is_power_of_two() && *s <= MAX_ROWS));
        }
        assert_eq!(INSERTS.len(), 9);
        assert_eq!(INSERTS[8].matches('?').count(), 7 * MAX_ROWS);
    }
}
