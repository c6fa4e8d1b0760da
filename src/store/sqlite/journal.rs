//! Appending to the intake journal: a group commit's alerts in as few statements as possible.
//!
//! Each entry's unique key leads with its alert's start ([`stored_key`]). The alert's own
//! [`Alert::dedup_key`] leads with its source and fingerprint, a hash, so each new entry
//! landed on its own random page of the unique index and every commit wrote a whole index
//! page per alert; as the journal grew, commits slowed (intake fell from 26,000 to 16,000
//! alerts/s within five seconds of a flood). Keyed by start, a storm's entries fill the
//! index's last pages, as they fill the table's.
//!
//! The driver hands every statement to the connection's own thread and waits for the answer,
//! so one `INSERT` per alert costs two thread switches per alert; under load that, not SQLite,
//! was the intake's bound. A batch is therefore written with multi-row `INSERT`s. Their sizes
//! are powers of two (a batch of 300 is 256 + 32 + 8 + 4 rows), so only a handful of distinct
//! statements exist and all of them stay in the connection's prepared-statement cache instead
//! of pushing out the dispatcher's.

use std::collections::HashSet;
use std::sync::LazyLock;

use sqlx::{Row, SqliteConnection, SqlitePool};

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

/// The journal's unique key of `alert`: its start (nanoseconds, zero-padded, so keys sort by
/// time), then its [`Alert::dedup_key`], which already contains that start: two deliveries
/// of one alert instance get one key, and different instances get different keys.
pub(super) fn stored_key(alert: &Alert) -> String {
    format!(
        "{:020}:{}",
        alert.starts_at.unix_timestamp_nanos(),
        alert.dedup_key()
    )
}

/// Entries rewritten per transaction by [`lead_keys_with_start`].
const REWRITE_CHUNK: i64 = 1_000;

/// Gives the entries of a journal written before keys led with the start their keys of
/// today, so that a redelivery after the upgrade is still a duplicate. Those keys begin with
/// the source's name, a lowercase letter; keys of today with a digit (or `-` before 1970),
/// which sorts before it, so the index finds the old ones and, once done, none at once.
/// Returns how many were rewritten.
pub(super) async fn lead_keys_with_start(writer: &SqlitePool) -> Result<u64, StoreError> {
    let mut rewritten = 0;
    // Past every old key already seen: one that could not be rewritten (its key of today
    // is taken) stays old and is not read again.
    let mut after = String::new();
    loop {
        let rows = sqlx::query(
            "SELECT id, dedup_key, alert FROM journal WHERE dedup_key >= 'a' AND dedup_key > ?
             ORDER BY dedup_key LIMIT ?",
        )
        .bind(&after)
        .bind(REWRITE_CHUNK)
        .fetch_all(writer)
        .await?;
        let Some(last) = rows.last() else {
            return Ok(rewritten);
        };
        after = last.try_get("dedup_key")?;
        let mut tx = writer.begin().await?;
        for row in &rows {
            let alert: Alert = serde_json::from_str(row.try_get("alert")?)
                .map_err(|e| StoreError::Corrupt(format!("journal alert: {e}")))?;
            rewritten += sqlx::query("UPDATE OR IGNORE journal SET dedup_key = ? WHERE id = ?")
                .bind(stored_key(&alert))
                .bind(row.try_get::<i64, _>("id")?)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
    }
}

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
        .map(|alert| Ok((stored_key(alert), to_json(alert)?)))
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
    use time::OffsetDateTime;

    use super::*;
    use crate::alert::firing_for_tests;
    use crate::store::{SqliteStore, Store};

    /// A firing alert of `fingerprint` that started `seconds` after the epoch.
    fn started(fingerprint: &str, seconds: i64) -> Alert {
        Alert {
            fingerprint: fingerprint.into(),
            starts_at: OffsetDateTime::from_unix_timestamp(seconds).unwrap(),
            ..firing_for_tests(&[("alertname", "HighMemoryUsage")])
        }
    }

    async fn keys(store: &SqliteStore) -> Vec<String> {
        sqlx::query_scalar("SELECT dedup_key FROM journal ORDER BY id")
            .fetch_all(&store.reader)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn keys_sort_by_start_and_a_journal_from_before_is_rewritten_so_redeliveries_stay_duplicates(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/j.db", dir.path().display());
        let store = SqliteStore::connect(&url).await.unwrap();
        // Fingerprints in the opposite order of their starts: the key follows the start.
        let (late, early) = (
            started("aaaa", 2_000_000_000),
            started("ffff", 1_000_000_000),
        );
        let fresh = store
            .append_journal(&[late.clone(), early.clone()])
            .await
            .unwrap();
        assert_eq!(fresh, [true, true]);
        let today = keys(&store).await;
        assert!(
            today[1] < today[0],
            "the earlier start sorts first: {today:?}"
        );
        assert!(today[0].ends_with(&late.dedup_key()), "{today:?}");

        // As an earlier version wrote them: the alert's own dedup key.
        for alert in [&late, &early] {
            sqlx::query("UPDATE journal SET dedup_key = ? WHERE dedup_key = ?")
                .bind(alert.dedup_key())
                .bind(stored_key(alert))
                .execute(&store.writer)
                .await
                .unwrap();
        }
        store.close().await;
        let store = SqliteStore::connect(&url).await.unwrap();
        assert_eq!(keys(&store).await, today, "rewritten at start");
        let again = store
            .append_journal(&[early.clone(), late.clone(), started("ffff", 3_000_000_000)])
            .await
            .unwrap();
        assert_eq!(again, [false, false, true], "redeliveries stay duplicates");
        assert_eq!(lead_keys_with_start(&store.writer).await.unwrap(), 0);
    }

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
