//! [`crate::store::WatchStore`] for PostgreSQL: the shared statements on its pool.

use super::PostgresStore;

crate::store::watches::watch_store_impl!(
    PostgresStore,
    pool,
    ["$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8"]
);
