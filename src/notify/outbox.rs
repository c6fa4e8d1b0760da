//! Delivers queued messages to Slack, oldest first within each incident, until each is sent.
//!
//! A 429 waits for Slack's Retry-After; 5xx and network errors back off exponentially; a
//! permanent refusal (`channel_not_found`, `invalid_auth`) is recorded and logged, not retried
//! forever. A message is marked sent only after Slack accepted it, so none is lost; it is sent
//! again only if the service dies between Slack's answer and that write.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::slack::{ChatApi, SlackError};
use crate::metrics::{DeliveryFailure, Metrics};
use crate::store::{MessageKind, OutboxMessage, Store};

/// Messages (each of a different incident) in flight to Slack at once.
const SEND_CONCURRENCY: usize = 8;

/// Longest wait between two attempts at one message.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Sends due messages until `shutdown`; woken by `wake` when messages are queued.
pub async fn deliver(
    store: Arc<dyn Store>,
    chat: Arc<dyn ChatApi>,
    channel: String,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    loop {
        let due = match store.due_messages(OffsetDateTime::now_utc(), 32).await {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error.message = %e, "Could not read the outbox.");
                Vec::new()
            }
        };
        // At most one message per incident is due at a time, so sending the batch concurrently
        // keeps each thread in order while one slow thread no longer delays every other.
        futures::stream::iter(&due)
            .for_each_concurrent(SEND_CONCURRENCY, |message| {
                let (store, chat, channel, metrics) = (&store, &chat, &channel, &metrics);
                async move {
                    if let Err(failure) =
                        send_one(store.as_ref(), chat.as_ref(), channel, message).await
                    {
                        metrics.slack_delivery_failed(failure);
                    }
                }
            })
            .await;
        if due.is_empty() {
            tokio::select! {
                _ = wake.notified() => {}
                // Retries become due with time, not with a wake-up.
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}

/// Sends one message and records the result; says how the attempt failed, if it did.
async fn send_one(
    store: &dyn Store,
    chat: &dyn ChatApi,
    channel: &str,
    m: &OutboxMessage,
) -> Result<(), DeliveryFailure> {
    let now = OffsetDateTime::now_utc();
    let result = match (m.kind, &m.thread) {
        (MessageKind::Parent, _) => chat.post_message(channel, &m.text, None).await,
        (MessageKind::Reply, Some((ch, ts))) => chat.post_message(ch, &m.text, Some(ts)).await,
        // The parent was refused for good; a reply outside the thread beats no reply.
        (MessageKind::Reply, None) => chat.post_message(channel, &m.text, None).await,
        (MessageKind::Update, Some((ch, ts))) => {
            chat.update_message(ch, ts, &m.text)
                .await
                .map(|()| super::slack::Posted {
                    channel: ch.clone(),
                    ts: ts.clone(),
                })
        }
        (MessageKind::Update, None) => {
            Err(SlackError::Rejected("no parent message to edit".to_owned()))
        }
    };
    let failure = result.as_ref().err().map(|err| match err {
        SlackError::RateLimited { .. } => DeliveryFailure::RateLimited,
        SlackError::Unavailable(_) => DeliveryFailure::Unavailable,
        SlackError::Rejected(_) => DeliveryFailure::Rejected,
    });
    let recorded = match result {
        Ok(posted) => {
            store
                .message_sent(m.id, &posted.channel, &posted.ts, now)
                .await
        }
        Err(err) => {
            let retry_at = retry_delay(&err, m.attempts).map(|d| now + d);
            match retry_at {
                Some(_) => {
                    tracing::warn!(message = m.id, incident = m.incident_id, error.message = %err, "Slack delivery failed; will retry.")
                }
                None => {
                    tracing::error!(message = m.id, incident = m.incident_id, error.message = %err, "Slack refused a message; giving up on it.")
                }
            }
            store.message_failed(m.id, &err.to_string(), retry_at).await
        }
    };
    if let Err(e) = recorded {
        tracing::error!(message = m.id, error.message = %e, "Could not record a delivery result.");
    }
    failure.map_or(Ok(()), Err)
}

/// When to try again: Slack's Retry-After, else exponential backoff; `None` gives up.
fn retry_delay(err: &SlackError, attempts: i64) -> Option<Duration> {
    let backoff =
        Duration::from_millis(500u64.saturating_mul(1 << attempts.clamp(0, 10))).min(MAX_BACKOFF);
    match err {
        SlackError::RateLimited { retry_after } => Some(retry_after.unwrap_or(backoff)),
        SlackError::Unavailable(_) => Some(backoff),
        SlackError::Rejected(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_follow_slack_then_back_off_and_give_up_on_refusals() {
        let limited = SlackError::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(retry_delay(&limited, 0), Some(Duration::from_secs(7)));
        let down = SlackError::Unavailable("HTTP 503".into());
        assert_eq!(retry_delay(&down, 0), Some(Duration::from_millis(500)));
        assert_eq!(retry_delay(&down, 3), Some(Duration::from_secs(4)));
        assert_eq!(retry_delay(&down, 40), Some(MAX_BACKOFF));
        assert_eq!(
            retry_delay(&SlackError::Rejected("channel_not_found".into()), 0),
            None
        );
    }
}
