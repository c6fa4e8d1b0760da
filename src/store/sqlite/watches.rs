//! [`crate::store::WatchStore`] for SQLite: the shared statements on the writer (they write).

use super::SqliteStore;

crate::store::watches::watch_store_impl!(
    SqliteStore,
    writer,
    ["?", "?", "?", "?", "?", "?", "?", "?"]
);
