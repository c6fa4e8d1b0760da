//! [`ScheduleStore`] for SQLite.

use async_trait::async_trait;

use super::SqliteStore;
use crate::store::{ScheduleStore, StoreError};

#[async_trait]
impl ScheduleStore for SqliteStore {
    async fn schedule_marks(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT responder, mark_unix FROM schedule_marks")
                .fetch_all(&self.reader)
                .await?,
        )
    }

    async fn mark_schedule(&self, responder: &str, mark_unix: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO schedule_marks (responder, mark_unix) VALUES (?, ?)
             ON CONFLICT (responder) DO UPDATE SET mark_unix = MAX(mark_unix, excluded.mark_unix)",
        )
        .bind(responder)
        .bind(mark_unix)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
