//! [`ScheduleStore`] for PostgreSQL.

use async_trait::async_trait;

use super::PostgresStore;
use crate::store::{ScheduleStore, StoreError};

#[async_trait]
impl ScheduleStore for PostgresStore {
    async fn schedule_marks(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT responder, mark_unix FROM schedule_marks")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn mark_schedule(&self, responder: &str, mark_unix: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO schedule_marks (responder, mark_unix) VALUES ($1, $2)
             ON CONFLICT (responder) DO UPDATE
             SET mark_unix = GREATEST(schedule_marks.mark_unix, excluded.mark_unix)",
        )
        .bind(responder)
        .bind(mark_unix)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
