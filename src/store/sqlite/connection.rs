//! Opening the database, and taking the writer connection: the pools, the writer's
//! durability hook, and a connection with its turn (see [`super::turns`]).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Sqlite;

use super::turns::{Queue, Turn};
use super::{SqliteStore, StoreError};
use crate::store::StoreOptions;

/// The writer connection with a bookkeeping turn (see [`super::turns`]); released in this order,
/// connection first.
pub(super) struct Gated {
    conn: PoolConnection<Sqlite>,
    _turn: Turn,
}

impl std::ops::Deref for Gated {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl std::ops::DerefMut for Gated {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path` or `sqlite::memory:`)
    /// and applies the schema, with default options.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, &StoreOptions::default()).await
    }

    /// [`SqliteStore::connect`] with options (the run lease; pool settings are SQLite's own).
    pub async fn connect_with(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let lease = options.lease;
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // A journal read or a group commit's RETURNING comes back in one hand-off from the
            // connection's thread instead of many (the default buffers 50 rows).
            .row_buffer_size(1024)
            // A group commit's multi-row INSERT keeps a statement journal bigger than SQLite's
            // 64 KiB spill threshold; in memory it costs no temporary file per commit.
            .pragma("temp_store", "memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            // A connection left inside a failed transaction is dropped (see `healthy`); any
            // other starts its next use fully durable, whatever this use relaxed.
            .after_release(|conn, _| {
                Box::pin(async move {
                    if !healthy(conn) {
                        return Ok(false);
                    }
                    sqlx::query("PRAGMA synchronous = FULL")
                        .execute(&mut *conn)
                        .await
                        .map(|_| true)
                })
            })
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let rewritten = super::journal::lead_keys_with_start(&writer).await?;
        if rewritten > 0 {
            tracing::info!(
                entries = rewritten,
                "Journal keys now lead with the alert's start (once, after an upgrade)."
            );
        }
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self {
            writer,
            reader,
            turns: Arc::default(),
            target_turns: Arc::default(),
            owner: crate::store::new_owner().into(),
            lease,
        })
    }

    /// Closes both pools, waiting for their connections (and SQLite's WAL cleanup) to finish.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    /// Opens an existing database strictly read-only, without applying the schema, for
    /// commands that must change nothing (`simulate`, `incidents`). `Ok(None)` when the file
    /// does not exist: it is not created. Every write through this store fails.
    pub async fn open_read_only(url: &str) -> Result<Option<Self>, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?;
        if !options.get_filename().exists() {
            return Ok(None);
        }
        let options = options
            .create_if_missing(false)
            .read_only(true)
            .busy_timeout(Duration::from_secs(10));
        let reader = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        Ok(Some(Self {
            writer: reader.clone(),
            reader,
            turns: Arc::default(),
            target_turns: Arc::default(),
            owner: crate::store::new_owner().into(),
            lease: StoreOptions::default().lease,
        }))
    }
}

/// Whether a writer connection may go back to the pool. When the disk fills up (or an I/O
/// error strikes) SQLite may roll a transaction back by itself; the driver's ROLLBACK then
/// fails and it believes the transaction still open, so the next "transaction" becomes a
/// savepoint inside one that never commits: acknowledged alerts would vanish with the
/// connection. Such a connection is closed instead, and the pool opens a fresh one.
fn healthy(conn: &mut sqlx::SqliteConnection) -> bool {
    use sqlx::Connection;
    let healthy = !conn.is_in_transaction();
    if !healthy {
        tracing::warn!("Discarding a database connection left inside a failed transaction.");
    }
    healthy
}

impl SqliteStore {
    /// The writer connection committing with synchronous=NORMAL, for bookkeeping only (see
    /// the module's note on durability); back to FULL when released.
    pub(super) async fn relaxed(&self) -> Result<Gated, StoreError> {
        let mut conn = self.durable().await?;
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await?;
        Ok(conn)
    }

    /// The writer connection committing with synchronous=FULL, after its bookkeeping turn.
    pub(super) async fn durable(&self) -> Result<Gated, StoreError> {
        let turn = self.turns.take(Queue::Bookkeeping).await;
        let conn = self.writer.acquire().await?;
        Ok(Gated { conn, _turn: turn })
    }
}
