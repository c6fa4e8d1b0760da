//! Hearing what other replicas commit: `LISTEN alert_responder` on a connection of its own.
//! The triggers of `migrations/postgres/0002_wakeups.sql` announce new journal entries,
//! outbox messages, approval decisions, mode overrides and cancellations at commit.

use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use sqlx::postgres::PgListener;
use sqlx::PgPool;

use crate::store::{StoreError, Wakeup};

/// The channel the triggers notify on.
const CHANNEL: &str = "alert_responder";

/// A stream of wake-ups that never ends: when the listener's connection drops, sqlx opens a
/// new one at the next receive (what was announced meanwhile is missed, and caught by polls).
pub(super) async fn listen(pool: &PgPool) -> Result<BoxStream<'static, Wakeup>, StoreError> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    let stream = futures::stream::unfold(listener, |mut listener| async move {
        loop {
            match listener.recv().await {
                Ok(notification) => {
                    if let Some(wakeup) = Wakeup::parse(notification.payload()) {
                        return Some((wakeup, listener));
                    }
                }
                Err(e) => {
                    tracing::warn!(error.message = %e, "Lost the wake-up listener; polling until it reconnects.");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok(stream.boxed())
}
