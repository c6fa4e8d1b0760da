//! Waiting on a condition instead of sleeping: poll it until it holds or a deadline passes.
//!
//! Tests wait for what they need to have happened (a row, a message, a metric) with a
//! generous deadline, so a slow machine makes them slower, never flaky, and a fast one never
//! waits longer than the condition takes.

use std::future::Future;
use std::time::Duration;

/// How often a condition is checked again.
const EVERY: Duration = Duration::from_millis(50);

/// Polls `check` every 50 ms until it holds (true) or `within` has passed (false).
pub async fn until<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(EVERY).await;
    }
}
