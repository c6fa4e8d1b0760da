//! [`crate::store::SilenceStore`] for SQLite: the shared statements on the writer (they write).

use super::SqliteStore;

crate::store::silences::silence_store_impl!(
    SqliteStore,
    writer,
    ["?", "?", "?", "?", "?", "?", "?"]
);
