//! The intake journal in a file of its own, beside the main database, with its own writer.
//!
//! SQLite lets one connection write a file at a time. With the journal in the main database,
//! a webhook's group commit took turns with the dispatcher's bookkeeping (recording incidents,
//! runs, steps, the outbox) at that one writer, so every ack waited for the bookkeeping turn in
//! progress, and intake and bookkeeping could never use both cores at once. Here the journal
//! file's writer does nothing but group commits (and, between them, marking entries
//! processed), so an ack waits only for its own fsync.
//!
//! Two files cannot commit together, so "this entry is recorded" is written where the
//! recording is: the dispatcher's transaction in the main database upserts the entry's id into
//! the main database's `journal` table with `processed = 1` (see [`super::journal::mark_recorded`]).
//! Only after that commit is the entry marked processed here, and that mark is a shortcut: an
//! entry pending here but recorded there (the process died between the two commits, or the
//! mark failed) is found when the dispatcher next reads it, marked, and skipped. So a crash
//! between the two files neither loses an alert (it is recorded once it is read) nor doubles
//! one (the main database says it was recorded).
//!
//! A database from before the split has its journal in the main file; on the first start the
//! whole of it is copied here once (ids, dedup keys and processed flags kept), so its pending
//! entries are dispatched and late duplicates of old alerts are still recognised.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row, SqliteConnection, SqlitePool};

use super::{journal, StoreError};
use crate::alert::Alert;
use crate::store::{JournalEntry, Priority};

/// How many times one read skips entries it finds already recorded before giving up for this
/// round (each time marks them, so the next read sees past them).
const SKIP_ROUNDS: usize = 4;

/// The journal file's pools: one writer for group commits and marks, readers for the dispatcher.
#[derive(Debug, Clone)]
pub(super) struct IntakeFile {
    writer: SqlitePool,
    pub(super) reader: SqlitePool,
}

/// The journal file of the main database at `main`: `alert-responder.db` keeps its journal in
/// `alert-responder-intake.db`, in the same directory (back up both).
pub fn path_beside(main: &Path) -> PathBuf {
    let stem = main
        .file_stem()
        .map_or_else(|| "alert-responder".into(), |s| s.to_string_lossy());
    let name = match main.extension() {
        Some(ext) => format!("{stem}-intake.{}", ext.to_string_lossy()),
        None => format!("{stem}-intake"),
    };
    main.with_file_name(name)
}

impl IntakeFile {
    /// Opens (creating if needed) the journal file for the main database opened with `main`,
    /// applies its schema, and adopts the main database's journal if this file is new.
    pub(super) async fn open(
        main: &SqliteConnectOptions,
        main_writer: &SqlitePool,
    ) -> Result<Self, StoreError> {
        let in_memory = main.get_filename().as_os_str() == ":memory:";
        let options = if in_memory {
            main.clone()
        } else {
            main.clone().filename(path_beside(main.get_filename()))
        };
        let options = options.synchronous(SqliteSynchronous::Full);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .after_release(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite-intake")
            .run(&writer)
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options.clone().read_only(true))
            .await?;
        let file = Self { writer, reader };
        if !in_memory {
            file.adopt_main_journal(main_writer, options.get_filename())
                .await?;
        }
        Ok(file)
    }

    /// Opens an existing journal file read-only, if there is one.
    pub(super) async fn open_read_only(
        main: &SqliteConnectOptions,
    ) -> Result<Option<Self>, StoreError> {
        let path = path_beside(main.get_filename());
        if !path.exists() {
            return Ok(None);
        }
        let reader = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                main.clone()
                    .filename(path)
                    .create_if_missing(false)
                    .read_only(true)
                    .busy_timeout(Duration::from_secs(10)),
            )
            .await?;
        Ok(Some(Self {
            writer: reader.clone(),
            reader,
        }))
    }

    /// Copies the main database's journal here, once: when this file has no entry yet and the
    /// main one has some (a database from before the split). One statement, so a crash leaves
    /// either all of it or none, and the next start tries again.
    async fn adopt_main_journal(&self, main: &SqlitePool, path: &Path) -> Result<(), StoreError> {
        let here: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM journal")
            .fetch_one(&self.reader)
            .await?;
        let there: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM journal")
            .fetch_one(main)
            .await?;
        if here > 0 || there == 0 {
            return Ok(());
        }
        tracing::info!(
            entries = there,
            file = %path.display(),
            "Moving the intake journal into its own file (once)."
        );
        let mut conn = main.acquire().await?;
        sqlx::query("ATTACH DATABASE ? AS intake")
            .bind(path.to_string_lossy().as_ref())
            .execute(&mut *conn)
            .await?;
        let copied = copy_into_attached(&mut conn).await;
        sqlx::query("DETACH DATABASE intake")
            .execute(&mut *conn)
            .await?;
        copied
    }

    /// Reads the journal through `pool`, for a read-only store whose database has no journal
    /// file (its journal is still in the main database). Writes through it fail.
    pub(super) fn reading(pool: &SqlitePool) -> Self {
        Self {
            writer: pool.clone(),
            reader: pool.clone(),
        }
    }

    /// Appends `alerts` in one fsynced transaction; for each, whether it was new.
    pub(super) async fn append(
        &self,
        alerts: &[Alert],
        priorities: &[Priority],
        now: &str,
    ) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.writer.begin().await?;
        let fresh = journal::append(&mut tx, alerts, priorities, now).await?;
        tx.commit().await?;
        Ok(fresh)
    }

    /// Up to `limit` pending entries, most urgent first, skipping (and marking) those the main
    /// database `main` has already recorded.
    pub(super) async fn pending(
        &self,
        main: &SqlitePool,
        limit: u32,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        for _ in 0..SKIP_ROUNDS {
            let entries = self.read_pending(limit).await?;
            let recorded = journal::recorded_among(main, entries.iter().map(|e| e.id)).await?;
            if recorded.is_empty() {
                return Ok(entries);
            }
            tracing::info!(
                entries = recorded.len(),
                "Journal entries already recorded, marking them processed."
            );
            self.mark_processed(&recorded.iter().copied().collect::<Vec<_>>())
                .await?;
            if recorded.len() < entries.len() {
                return Ok(entries
                    .into_iter()
                    .filter(|e| !recorded.contains(&e.id))
                    .collect());
            }
        }
        Ok(Vec::new())
    }

    async fn read_pending(&self, limit: u32) -> Result<Vec<JournalEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, alert FROM journal WHERE processed = 0 ORDER BY priority DESC, id LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| JournalEntry::decode(row.try_get("id")?, row.try_get("alert")?))
            .collect()
    }

    /// Marks `ids` processed, after the main database recorded them. Not fsynced: the next
    /// group commit's fsync covers it, and if it is lost the main database still says so.
    pub(super) async fn mark_processed(&self, ids: &[i64]) -> Result<(), StoreError> {
        let mut conn = self.writer.acquire().await?;
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await?;
        let marked = journal::mark_processed(&mut conn, ids.iter().copied()).await;
        sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await?;
        marked
    }

    /// How many entries are pending, and when the oldest of them arrived.
    pub(super) async fn backlog(&self) -> Result<(i64, Option<String>), StoreError> {
        let row = sqlx::query(
            "SELECT
               (SELECT COUNT(*) FROM journal WHERE processed = 0) AS pending,
               (SELECT received_at FROM journal WHERE processed = 0 ORDER BY id LIMIT 1) AS oldest",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok((row.try_get("pending")?, row.try_get("oldest")?))
    }

    pub(super) async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// The copy itself, on a main-database connection with the journal file attached as `intake`.
async fn copy_into_attached(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let mut tx = conn.begin().await?;
    sqlx::query(
        "INSERT INTO intake.journal (id, dedup_key, source, alert, received_at, priority, processed)
         SELECT id, dedup_key, source, alert, received_at, priority, processed FROM main.journal
         ORDER BY id",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_file_sits_beside_the_database() {
        let cases = [
            (
                "/var/lib/alert-responder/alert-responder.db",
                "/var/lib/alert-responder/alert-responder-intake.db",
            ),
            ("data/state.sqlite3", "data/state-intake.sqlite3"),
            ("responder", "responder-intake"),
        ];
        for (main, expected) in cases {
            assert_eq!(path_beside(Path::new(main)), Path::new(expected), "{main}");
        }
    }
}
