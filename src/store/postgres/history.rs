//! [`crate::store::HistoryStore`] for PostgreSQL: the shared statements on its pool.

use super::PostgresStore;

crate::store::history::history_impl!(PostgresStore, pool);
