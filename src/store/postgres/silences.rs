//! [`crate::store::SilenceStore`] for PostgreSQL: the shared statements on its pool.

use super::PostgresStore;

crate::store::silences::silence_store_impl!(
    PostgresStore,
    pool,
    ["$1", "$2", "$3", "$4", "$5", "$6", "$7"]
);
