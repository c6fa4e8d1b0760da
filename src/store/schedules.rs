//! How far each schedule's slots were looked at, so a restart finds the slots it missed.

use async_trait::async_trait;

use super::StoreError;

/// Store operations of the scheduler; part of every [`super::Store`].
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Each scheduled responder's mark (unix seconds): its latest slot journaled, or when
    /// its schedule was first seen.
    async fn schedule_marks(&self) -> Result<Vec<(String, i64)>, StoreError>;

    /// Moves the mark of `responder` forward to `mark_unix` (never back: another replica
    /// may have gone further).
    async fn mark_schedule(&self, responder: &str, mark_unix: i64) -> Result<(), StoreError>;
}
