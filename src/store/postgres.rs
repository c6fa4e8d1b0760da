//! The PostgreSQL store, for several replicas on one database.

use std::sync::Arc;

use super::{Store, StoreError, StoreOptions};

/// PostgreSQL-backed [`super::Store`].
#[derive(Debug, Clone)]
pub struct PostgresStore {}

impl PostgresStore {
    /// Connects and applies the schema.
    pub async fn connect(
        _url: &str,
        _options: &StoreOptions,
    ) -> Result<Arc<dyn Store>, StoreError> {
        Err(StoreError::Url(
            "PostgreSQL is not supported by this build yet".into(),
        ))
    }

    /// Connects without applying the schema.
    pub async fn open_read_only(_url: &str) -> Result<Option<Arc<dyn Store>>, StoreError> {
        Err(StoreError::Url(
            "PostgreSQL is not supported by this build yet".into(),
        ))
    }
}
