//! Reports to people: every incident gets one Slack thread, written through the persisted
//! outbox so a Slack outage delays messages but loses and doubles none.
//!
//! [`Reporter`] renders and queues; [`outbox::deliver`] sends, in order per incident.

pub mod outbox;
pub mod render;
pub mod slack;

use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::store::{MessageKind, NewMessage, StepEnd, Store};

/// Renders incident events into messages and queues them in the outbox.
#[derive(Debug, Clone)]
pub struct Reporter {
    store: Arc<dyn Store>,
    deliver: bool,
    mention: Option<String>,
    wake: Arc<Notify>,
}

impl Reporter {
    /// `deliver` false (no Slack token) still records every message, marked undeliverable.
    pub fn new(
        store: Arc<dyn Store>,
        deliver: bool,
        mention: Option<String>,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            deliver,
            mention,
            wake,
        }
    }

    /// The incident opened: post its parent message.
    pub async fn opened(&self, incident: i64) {
        self.parent(incident, MessageKind::Parent).await;
    }

    /// A step ended (or did not run): a reply in the thread.
    pub async fn step(
        &self,
        incident: i64,
        step_id: &str,
        action: &str,
        mode: &str,
        end: &StepEnd,
    ) {
        self.queue(
            incident,
            MessageKind::Reply,
            render::step_reply(
                step_id,
                action,
                mode,
                end,
                OffsetDateTime::now_utc().to_offset(time::UtcOffset::UTC),
            ),
        )
        .await;
    }

    /// A decision worth telling people (refused target, no route, interrupted run, ...).
    pub async fn note(&self, incident: i64, text: &str) {
        self.queue(
            incident,
            MessageKind::Reply,
            format!(":information_source: {text}"),
        )
        .await;
    }

    /// A human must look: a reply that mentions the on-call group when one is configured.
    pub async fn escalate(&self, incident: i64, reason: &str) {
        let who = self
            .mention
            .as_deref()
            .map(|m| format!(" {m}"))
            .unwrap_or_default();
        let text = format!(
            ":sos: {}: escalating to a human{who}",
            render::escape(reason)
        );
        self.queue_escaped(incident, MessageKind::Reply, text).await;
    }

    /// A step waits for a human: what it will do, how to decide, when it expires.
    pub async fn approval_requested(
        &self,
        incident: i64,
        step_id: &str,
        plan: &str,
        expires_in: &str,
    ) {
        let who = self
            .mention
            .as_deref()
            .map(|m| format!("{m} "))
            .unwrap_or_default();
        let text = format!(
            ":raised_hand: {who}Approval needed for *{}*: {}. Expires in {expires_in}. \
             Decide with `POST /api/incidents/{incident}/approvals` `{{\"decision\": \"approve\"|\"deny\", \"by\": \"&lt;you&gt;\"}}` (admin token).",
            render::escape(step_id),
            render::escape(plan),
        );
        self.queue_escaped(incident, MessageKind::Reply, text).await;
    }

    /// A human decided an approval.
    pub async fn approval_decided(&self, incident: i64, step_id: &str, decision: &str, by: &str) {
        let icon = if decision == "approved" {
            ":white_check_mark:"
        } else {
            ":no_entry_sign:"
        };
        let text = format!("{icon} *{step_id}* {decision} by {by}");
        self.queue(incident, MessageKind::Reply, text).await;
    }

    /// The run ended or the alert resolved: edit the parent to show the current state.
    pub async fn refresh(&self, incident: i64) {
        self.parent(incident, MessageKind::Update).await;
    }

    async fn parent(&self, incident: i64, kind: MessageKind) {
        match self.store.incident_view(incident).await {
            Ok(Some(view)) => self.queue(incident, kind, render::parent(&view)).await,
            Ok(None) => tracing::warn!(
                incident,
                "Incident vanished before its message was rendered."
            ),
            Err(e) => {
                tracing::error!(incident, error.message = %e, "Could not read the incident to report it.")
            }
        }
    }

    /// Queues `text` as plain text: alert data in it can neither mention nor link.
    async fn queue(&self, incident: i64, kind: MessageKind, text: String) {
        self.queue_escaped(incident, kind, render::escape(&text))
            .await;
    }

    /// Queues mrkdwn whose data parts the caller escaped, so its own mention stays live.
    async fn queue_escaped(&self, incident: i64, kind: MessageKind, text: String) {
        let message = NewMessage {
            incident_id: incident,
            kind,
            text,
            deliver: self.deliver,
        };
        match self
            .store
            .enqueue_message(&message, OffsetDateTime::now_utc())
            .await
        {
            Ok(_) => self.wake.notify_one(),
            Err(e) => {
                tracing::error!(incident, error.message = %e, "Could not queue a Slack message.")
            }
        }
    }
}
