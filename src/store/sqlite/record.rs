//! The statements of [`crate::store::record`] on SQLite. Lists to look up travel as one JSON
//! array (`json_each`) and rows to insert as multi-row `INSERT`s of power-of-two sizes, so a
//! handful of statement texts serve every batch and stay in the prepared-statement cache.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::{json, Value};
use sqlx::{Row, SqliteConnection};

use super::journal::{chunk_sizes, MAX_ROWS};
use super::queries::Holder;
use super::{to_json, ts, StoreError};
use crate::store::record::{recorder_impl, AlertRow, FoldCandidates, FoldKey};
use crate::store::NewDecision;

/// Records inside the caller's transaction, stamping rows with `now`.
pub(super) struct SqliteRecorder<'c> {
    pub(super) conn: &'c mut SqliteConnection,
    pub(super) now: &'c str,
    pub(super) holder: Holder<'c>,
}

/// `statements[k]` inserts 2^k rows of `width` values each (`insert` up to `VALUES`), for
/// every size [`chunk_sizes`] makes: a handful of statements, all kept prepared.
fn multi_row_inserts(insert: &str, width: usize) -> Vec<String> {
    let row = format!("({})", vec!["?"; width].join(", "));
    (0..=MAX_ROWS.trailing_zeros())
        .map(|k| format!("{insert} VALUES {}", vec![row.as_str(); 1 << k].join(", ")))
        .collect()
}

static ALERT_INSERTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    multi_row_inserts(
        "INSERT INTO alerts (incident_id, journal_id, status, starts_at, ends_at, alert, received_at)",
        7,
    )
});

static DECISION_INSERTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    multi_row_inserts(
        "INSERT INTO decisions (incident_id, run_id, kind, detail, at)",
        5,
    )
});

fn json_list<T: serde::Serialize>(items: &[T]) -> String {
    Value::from(items.iter().map(|item| json!(item)).collect::<Vec<Value>>()).to_string()
}

recorder_impl!(SqliteRecorder {
    async fn open_incidents(
        &mut self,
        fingerprints: &[&str],
    ) -> Result<HashMap<String, i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT fingerprint, MAX(id) AS id FROM incidents
             WHERE fingerprint IN (SELECT value FROM json_each(?)) AND status = 'open'
             GROUP BY fingerprint",
        )
        .bind(json_list(fingerprints))
        .fetch_all(&mut *self.conn)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("fingerprint")?, row.try_get("id")?)))
            .collect()
    }

    async fn fold_candidates(
        &mut self,
        keys: &[&FoldKey],
    ) -> Result<Vec<FoldCandidates>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.alertname, i.target, MAX(i.id) AS newest,
                    MAX(CASE WHEN EXISTS (SELECT 1 FROM runs r WHERE r.incident_id = i.id)
                        THEN i.id END) AS newest_with_run
             FROM json_each(?) k
             JOIN incidents i ON i.target IS json_extract(k.value, '$[1]')
                 AND i.alertname = json_extract(k.value, '$[0]') AND i.status = 'open'
             GROUP BY i.alertname, i.target",
        )
        .bind(json_list(keys))
        .fetch_all(&mut *self.conn)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(FoldCandidates {
                    key: (row.try_get("alertname")?, row.try_get("target")?),
                    newest: row.try_get("newest")?,
                    newest_with_run: row.try_get("newest_with_run")?,
                })
            })
            .collect()
    }

    async fn insert_alerts(&mut self, rows: &[AlertRow<'_>]) -> Result<i64, StoreError> {
        let mut rest = rows;
        let mut last = 0;
        for size in chunk_sizes(rows.len()) {
            let (chunk, tail) = rest.split_at(size);
            let mut query = sqlx::query(&ALERT_INSERTS[size.trailing_zeros() as usize]);
            for row in chunk {
                let alert = &row.entry.alert;
                query = query
                    .bind(row.incident)
                    .bind(row.entry.id)
                    .bind(alert.status.as_str())
                    .bind(ts(alert.starts_at))
                    .bind(alert.ends_at.map(ts))
                    .bind(to_json(alert)?)
                    .bind(self.now);
            }
            last = query.execute(&mut *self.conn).await?.last_insert_rowid();
            rest = tail;
        }
        Ok(last)
    }

    async fn insert_decisions(&mut self, decisions: &[NewDecision]) -> Result<(), StoreError> {
        let mut rest = decisions;
        for size in chunk_sizes(decisions.len()) {
            let (chunk, tail) = rest.split_at(size);
            let mut query = sqlx::query(&DECISION_INSERTS[size.trailing_zeros() as usize]);
            for d in chunk {
                query = query
                    .bind(d.incident_id)
                    .bind(d.run_id)
                    .bind(d.kind.as_str())
                    .bind(d.detail.as_str())
                    .bind(self.now);
            }
            query.execute(&mut *self.conn).await?;
            rest = tail;
        }
        Ok(())
    }
});
