//! Delivers queued messages to Slack and to PagerDuty, oldest first within each incident and
//! destination, until each is sent. Each destination has its own loop, so an outage of one
//! delays only its own messages.
//!
//! With several replicas on one database, one of them (elected in the store, under a lease)
//! sends each destination's messages.
//!
//! A 429 waits for the Retry-After given; 5xx and network errors back off exponentially; a
//! permanent refusal (`channel_not_found`, `invalid_auth`, PagerDuty's 400/401/404) is recorded
//! and logged, not retried forever. A message is marked sent only after the destination
//! accepted it, so none is lost; it is sent again only if the service dies between the answer
//! and that write (PagerDuty events carry a `dedup_key`, which makes that resend harmless).

mod grafana;
mod outage;

pub use grafana::deliver_grafana;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;

use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::pagerduty::{PagerDutyApi, PagerDutyError};
use super::slack::{ChatApi, SlackError};
use crate::metrics::{DeliveryFailure, Metrics};
use crate::store::{MessageKind, OutboxMessage, PagerDutyKind, PagerDutyMessage, Store};
use outage::{Outage, Round};

/// Messages (each of a different incident) in flight to Slack at once.
const SEND_CONCURRENCY: usize = 8;

/// Longest wait between two attempts at one message.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How long the last flush at shutdown may take.
const FLUSH: Duration = Duration::from_secs(5);

/// Sends due messages until `shutdown`, then flushes what is due (bounded by [`FLUSH`]);
/// woken by `wake` when messages are queued.
pub async fn deliver(
    store: Arc<dyn Store>,
    chat: Arc<dyn ChatApi>,
    channel: String,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut outage = Outage::default();
    loop {
        let due = if leads(store.as_ref(), SLACK_SENDER).await {
            or_none(store.due_messages(OffsetDateTime::now_utc(), 32).await)
        } else {
            Vec::new()
        };
        let round = Mutex::new(Round::default());
        // At most one message per incident is due at a time, so sending the batch concurrently
        // keeps each thread in order while one slow thread no longer delays every other.
        futures::stream::iter(&due)
            .for_each_concurrent(SEND_CONCURRENCY, |message| {
                let (store, chat, channel, metrics, round) =
                    (&store, &chat, &channel, &metrics, &round);
                async move {
                    let attempt = send_one(store.as_ref(), chat.as_ref(), channel, message).await;
                    let mut round = round.lock().unwrap_or_else(|e| e.into_inner());
                    match attempt {
                        Attempt::Delivered => round.delivered += 1,
                        Attempt::Skipped => {}
                        Attempt::Failed {
                            kind,
                            error,
                            retrying,
                        } => {
                            metrics.slack_delivery_failed(kind);
                            if retrying {
                                round.failed += 1;
                                round.error = Some(error);
                            }
                        }
                    }
                }
            })
            .await;
        let round = round.into_inner().unwrap_or_else(|e| e.into_inner());
        if let Some(line) = outage.record(Instant::now(), &round) {
            outage::log(store.as_ref(), line).await;
        }
        if due.is_empty() && !idle(&wake, &shutdown).await {
            break;
        }
    }
    // Messages the last runs queued go out now if Slack takes them; the rest (waiting for a
    // retry, or Slack down) stay queued for the next start or another replica.
    if leads(store.as_ref(), SLACK_SENDER).await
        && tokio::time::timeout(FLUSH, flush(store.as_ref(), chat.as_ref(), &channel))
            .await
            .is_err()
    {
        tracing::warn!("Outbox not fully flushed at shutdown; the rest is sent at the next start.");
    }
    let _ = store.resign(SLACK_SENDER).await;
}

/// The roles of the elected senders: with several replicas one sends each destination's
/// messages, so each goes out once and every thread stays in order.
const SLACK_SENDER: &str = "outbox-slack";
const PAGERDUTY_SENDER: &str = "outbox-pagerduty";

/// Whether this replica is (or now becomes) the sender for `role`; false when the store
/// cannot say, so a replica cut off from the database sends nothing.
async fn leads(store: &dyn Store, role: &str) -> bool {
    match store.lead(role, OffsetDateTime::now_utc()).await {
        Ok(leading) => leading,
        Err(e) => {
            tracing::warn!(role, error.message = %e, "Could not confirm this replica as the sender; sending nothing until it can.");
            false
        }
    }
}

/// Sends due messages until none is due; stops at the first failure (Slack is not taking them).
async fn flush(store: &dyn Store, chat: &dyn ChatApi, channel: &str) {
    loop {
        let Ok(due) = store.due_messages(OffsetDateTime::now_utc(), 32).await else {
            return;
        };
        if due.is_empty() {
            return;
        }
        for message in &due {
            if let Attempt::Failed { .. } = send_one(store, chat, channel, message).await {
                return;
            }
        }
    }
}

/// The due messages, or none (logged) when the store failed; the next round tries again.
fn or_none<T>(due: Result<Vec<T>, crate::store::StoreError>) -> Vec<T> {
    due.unwrap_or_else(|e| {
        tracing::error!(error.message = %e, "Could not read the outbox.");
        Vec::new()
    })
}

/// After a round with nothing due: waits for a wake-up or a tick; false on shutdown.
async fn idle(wake: &Notify, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = wake.notified() => true,
        // Retries become due with time, not with a wake-up.
        _ = tokio::time::sleep(Duration::from_millis(500)) => true,
        _ = shutdown.cancelled() => false,
    }
}

/// How one attempt at one message went.
enum Attempt {
    /// Another sender (or an earlier round) has it: nothing was sent.
    Skipped,
    /// Slack took it.
    Delivered,
    /// Slack did not take it.
    Failed {
        /// How, for the metrics.
        kind: DeliveryFailure,
        /// Why, for the log.
        error: String,
        /// Whether it will be tried again (else it was refused for good).
        retrying: bool,
    },
}

/// Sends one message and records the result. A failure to be retried is not logged here:
/// the delivery loop logs outages as a whole (see [`outage`]).
async fn send_one(
    store: &dyn Store,
    chat: &dyn ChatApi,
    channel: &str,
    m: &OutboxMessage,
) -> Attempt {
    let now = OffsetDateTime::now_utc();
    if !claimed(store, m.id, now).await {
        return Attempt::Skipped;
    }
    let blocks = m.blocks.as_deref();
    let result = match (m.kind, &m.thread) {
        // An edit of one earlier message (an approval's buttons), not of the parent.
        (MessageKind::Update, _) if m.edit.is_some() => edit_earlier(chat, m, blocks).await,
        // A responder's own channel (`channel:`) takes its incidents' threads.
        (MessageKind::Parent, _) => {
            let to = m.post_to.as_deref().unwrap_or(channel);
            chat.post_rich(to, &m.text, blocks, None).await
        }
        (MessageKind::Reply, thread) if m.file.is_some() => {
            share_file(chat, m, thread.as_ref()).await
        }
        (MessageKind::Reply, Some((ch, ts))) => chat.post_rich(ch, &m.text, blocks, Some(ts)).await,
        // The parent was refused for good; a reply outside the thread beats no reply.
        (MessageKind::Reply, None) => chat.post_rich(channel, &m.text, blocks, None).await,
        (MessageKind::Update, Some((ch, ts))) => chat
            .update_rich(ch, ts, &m.text, blocks)
            .await
            .map(|()| super::slack::Posted {
                channel: ch.clone(),
                ts: ts.clone(),
            }),
        (MessageKind::Update, None) => {
            Err(SlackError::Rejected("no parent message to edit".to_owned()))
        }
    };
    let failure = result.as_ref().err().map(|err| match err {
        SlackError::RateLimited { retry_after } => (DeliveryFailure::RateLimited, *retry_after),
        SlackError::Unavailable(_) => (DeliveryFailure::Unavailable, None),
        SlackError::Rejected(_) => (DeliveryFailure::Rejected, None),
    });
    let error = result.as_ref().err().map(ToString::to_string);
    let recorded = match result {
        Ok(posted) => {
            let record = || store.message_sent(m.id, &posted.channel, &posted.ts, now);
            record_until_done(record, m.id).await
        }
        Err(err) => {
            let retry_at = failure
                .and_then(|(kind, after)| retry_delay(kind, after, m.attempts))
                .map(|d| now + d);
            match retry_at {
                Some(_) => {
                    tracing::debug!(message = m.id, incident = m.incident_id, error.message = %err, "Slack delivery failed; will retry.")
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
    match (failure, error) {
        (Some((kind, after)), Some(error)) => Attempt::Failed {
            kind,
            error,
            retrying: retry_delay(kind, after, m.attempts).is_some(),
        },
        _ => Attempt::Delivered,
    }
}

/// Sends due PagerDuty deliveries until `shutdown`; woken by `wake` when some are queued.
pub async fn deliver_pagerduty(
    store: Arc<dyn Store>,
    pagerduty: Arc<dyn PagerDutyApi>,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    loop {
        let due = if leads(store.as_ref(), PAGERDUTY_SENDER).await {
            or_none(store.due_pagerduty(OffsetDateTime::now_utc(), 32).await)
        } else {
            Vec::new()
        };
        for message in &due {
            if let Err(failure) = send_pagerduty(store.as_ref(), pagerduty.as_ref(), message).await
            {
                metrics.delivery_failed("pagerduty", failure);
            }
        }
        if due.is_empty() && !idle(&wake, &shutdown).await {
            let _ = store.resign(PAGERDUTY_SENDER).await;
            return;
        }
    }
}

/// How long a sender keeps trying to record a message as sent once the destination accepted
/// it (the message is held for it for one lease, see [`Store::claim_message`]).
const RECORD_SENT_FOR: Duration = Duration::from_secs(60);

/// Whether this sender now holds the message (see [`Store::claim_message`]); false when
/// another sender has it, it went out meanwhile, or the database cannot say (then nothing is
/// sent: an unrecordable send would be sent again).
async fn claimed(store: &dyn Store, id: i64, now: OffsetDateTime) -> bool {
    match store.claim_message(id, now).await {
        Ok(held) => held,
        Err(e) => {
            tracing::warn!(message = id, error.message = %e, "Could not take a message for sending; will retry.");
            false
        }
    }
}

/// Records that a message went out, retrying while the database is away (a restart, a
/// failover): left unrecorded, the message would be due again and sent twice. Gives up after
/// [`RECORD_SENT_FOR`] (the message may then be sent again, once).
async fn record_until_done<F, Fut>(record: F, message: i64) -> Result<(), crate::store::StoreError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::store::StoreError>>,
{
    let deadline = tokio::time::Instant::now() + RECORD_SENT_FOR;
    let mut wait = Duration::from_millis(100);
    loop {
        match record().await {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() + wait > deadline => return Err(e),
            Err(e) => {
                tracing::warn!(message, error.message = %e, "Sent, but could not record it yet; retrying so it is not sent twice.");
                tokio::time::sleep(wait).await;
                // Short waits: the sooner it is recorded once the database is back, the
                // smaller the chance another replica's sender picks it up meanwhile.
                wait = (wait * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Sends one PagerDuty delivery and records the result; says how it failed, if it did.
async fn send_pagerduty(
    store: &dyn Store,
    pagerduty: &dyn PagerDutyApi,
    m: &PagerDutyMessage,
) -> Result<(), DeliveryFailure> {
    let now = OffsetDateTime::now_utc();
    if !claimed(store, m.id, now).await {
        return Ok(());
    }
    let result = match m.kind {
        PagerDutyKind::Note => {
            let field = |name: &str| m.body[name].as_str().unwrap_or_default();
            pagerduty
                .add_note(field("incident"), field("content"))
                .await
        }
        PagerDutyKind::Trigger | PagerDutyKind::Resolve => pagerduty.send_event(&m.body).await,
    };
    let (kind, after) = match &result {
        Ok(()) => {
            tracing::info!(
                message = m.id,
                incident = m.incident_id,
                kind = m.kind.as_str(),
                "PagerDuty accepted a delivery."
            );
            if let Err(e) = record_until_done(|| store.pagerduty_sent(m.id, now), m.id).await {
                tracing::error!(message = m.id, error.message = %e, "Could not record a delivery result.");
            }
            return Ok(());
        }
        Err(PagerDutyError::RateLimited { retry_after }) => {
            (DeliveryFailure::RateLimited, *retry_after)
        }
        Err(PagerDutyError::Unavailable(_)) => (DeliveryFailure::Unavailable, None),
        Err(PagerDutyError::Rejected(_)) => (DeliveryFailure::Rejected, None),
    };
    let error = result.err().map(|e| e.to_string()).unwrap_or_default();
    let retry_at = retry_delay(kind, after, m.attempts).map(|d| now + d);
    if retry_at.is_some() {
        tracing::warn!(message = m.id, incident = m.incident_id, kind = m.kind.as_str(), error.message = %error, "PagerDuty delivery failed; will retry.");
    } else {
        tracing::error!(message = m.id, incident = m.incident_id, kind = m.kind.as_str(), error.message = %error, "PagerDuty refused a delivery; giving up on it.");
    }
    if let Err(e) = store.message_failed(m.id, &error, retry_at).await {
        tracing::error!(message = m.id, error.message = %e, "Could not record a delivery result.");
    }
    Err(kind)
}

/// Edits the earlier message `m.edit` names; refused for good if that one was never posted.
async fn edit_earlier(
    chat: &dyn ChatApi,
    m: &OutboxMessage,
    blocks: Option<&str>,
) -> Result<super::slack::Posted, SlackError> {
    let Some((ch, ts)) = m.edit.as_ref().and_then(|e| e.posted.as_ref()) else {
        return Err(SlackError::Rejected(
            "the message to edit was never posted".to_owned(),
        ));
    };
    chat.update_rich(ch, ts, &m.text, blocks).await?;
    Ok(super::slack::Posted {
        channel: ch.clone(),
        ts: ts.clone(),
    })
}

/// Shares the message's file in the thread; a file outside a thread (its parent refused for
/// good) would be lost among the channel's messages, so it is refused too.
async fn share_file(
    chat: &dyn ChatApi,
    m: &OutboxMessage,
    thread: Option<&(String, String)>,
) -> Result<super::slack::Posted, SlackError> {
    let (Some((channel, ts)), Some(bytes)) = (thread, &m.file) else {
        return Err(SlackError::Rejected(
            "no thread to share the file in".to_owned(),
        ));
    };
    let file = super::slack::FileUpload {
        filename: "chart.png".to_owned(),
        title: m.text.clone(),
        bytes: bytes.clone(),
    };
    chat.upload_file(channel, ts, &file).await?;
    Ok(super::slack::Posted {
        channel: channel.clone(),
        ts: ts.clone(),
    })
}

/// When to try again: the destination's Retry-After, else exponential backoff; `None` gives up.
fn retry_delay(
    failure: DeliveryFailure,
    retry_after: Option<Duration>,
    attempts: i64,
) -> Option<Duration> {
    let backoff =
        Duration::from_millis(500u64.saturating_mul(1 << attempts.clamp(0, 10))).min(MAX_BACKOFF);
    match failure {
        DeliveryFailure::RateLimited => Some(retry_after.unwrap_or(backoff)),
        DeliveryFailure::Unavailable => Some(backoff),
        DeliveryFailure::Rejected => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_follow_the_destination_then_back_off_and_give_up_on_refusals() {
        let limited = DeliveryFailure::RateLimited;
        let seven = Some(Duration::from_secs(7));
        assert_eq!(retry_delay(limited, seven, 0), seven);
        assert_eq!(
            retry_delay(limited, None, 2),
            Some(Duration::from_secs(2)),
            "no Retry-After: backoff"
        );
        let down = DeliveryFailure::Unavailable;
        assert_eq!(retry_delay(down, None, 0), Some(Duration::from_millis(500)));
        assert_eq!(retry_delay(down, None, 3), Some(Duration::from_secs(4)));
        assert_eq!(retry_delay(down, None, 40), Some(MAX_BACKOFF));
        assert_eq!(retry_delay(DeliveryFailure::Rejected, None, 0), None);
    }
}
