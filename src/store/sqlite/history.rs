//! [`crate::store::HistoryStore`] for SQLite: the shared statements on the read pool.

use super::SqliteStore;

crate::store::history::history_impl!(SqliteStore, reader);
