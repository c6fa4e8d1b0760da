//! Reports to people: every incident gets one Slack thread, PagerDuty hears about runs and
//! escalations, and Grafana shows every run as an annotation, all written through the
//! persisted outbox so an outage delays messages but loses and doubles none.
//!
//! [`Reporter`] renders and queues; [`outbox::deliver`] (Slack), [`outbox::deliver_pagerduty`]
//! and [`outbox::deliver_grafana`] send, in order per incident and destination.

pub mod alertmanager;
mod annotate;
pub mod approval;
pub mod grafana;
pub mod outbox;
pub mod pagerduty;
pub mod render;
pub mod slack;

use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::alert::Alert;
use crate::responders::escalation::Priority;
use crate::store::{
    ApprovalRow, ApprovalState, MessageKind, NewMessage, PagerDutyKind, PagerDutyMessage, StepEnd,
    Store,
};

/// Who an escalation names when `SLACK_ONCALL_GROUP` is not set: the runbook's primary
/// on-call rotation, as plain text (no mention can be made without the group's ID).
pub const DEFAULT_ONCALL: &str = "Data Platform Team (#data-platform-oncall)";

/// Renders incident events into messages and queues them in the outbox.
#[derive(Debug, Clone)]
pub struct Reporter {
    store: Arc<dyn Store>,
    deliver: bool,
    mention: Option<String>,
    wake: Arc<Notify>,
    pagerduty: PagerDutyOutputs,
    /// Grafana delivery's signal; `None` while annotations are off.
    grafana: Option<Arc<Notify>>,
}

/// Which PagerDuty outputs are on, and how to wake their delivery.
#[derive(Debug, Clone, Default)]
struct PagerDutyOutputs {
    notes: bool,
    events: bool,
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
            pagerduty: PagerDutyOutputs::default(),
            grafana: None,
        }
    }

    /// Turns Grafana annotations on; `wake` is the Grafana delivery's signal.
    pub fn with_grafana(mut self, wake: Arc<Notify>) -> Self {
        self.grafana = Some(wake);
        self
    }

    /// Turns PagerDuty notes and events on; `wake` is the PagerDuty delivery's signal.
    pub fn with_pagerduty(mut self, notes: bool, events: bool, wake: Arc<Notify>) -> Self {
        self.pagerduty = PagerDutyOutputs {
            notes,
            events,
            wake,
        };
        self
    }

    /// Whether a PagerDuty output of `kind` is on.
    pub fn pagerduty_on(&self, kind: PagerDutyKind) -> bool {
        match kind {
            PagerDutyKind::Note => self.pagerduty.notes,
            PagerDutyKind::Trigger | PagerDutyKind::Resolve => self.pagerduty.events,
        }
    }

    /// News from PagerDuty about the incident (acknowledged, a note): a reply in its thread.
    pub async fn pagerduty_update(&self, incident: i64, update: &Alert) {
        self.queue_escaped(
            incident,
            MessageKind::Reply,
            render::pagerduty_update(update),
        )
        .await;
    }

    /// Queues a PagerDuty delivery (`body` as [`PagerDutyMessage::body`]) when that output
    /// is on; the store skips a second trigger and a resolve without a trigger.
    pub async fn pagerduty(&self, incident: i64, kind: PagerDutyKind, body: serde_json::Value) {
        if !self.pagerduty_on(kind) {
            return;
        }
        let message = PagerDutyMessage {
            id: 0,
            incident_id: incident,
            kind,
            body,
            attempts: 0,
        };
        match self
            .store
            .enqueue_pagerduty(&message, OffsetDateTime::now_utc())
            .await
        {
            Ok(Some(_)) => self.pagerduty.wake.notify_one(),
            Ok(None) => tracing::debug!(
                incident,
                kind = kind.as_str(),
                "PagerDuty delivery not needed."
            ),
            Err(e) => {
                tracing::error!(incident, error.message = %e, "Could not queue a PagerDuty delivery.")
            }
        }
    }

    /// The incident opened (or, quiet until now, starts to act): post its parent message,
    /// unless it already has one.
    pub async fn opened(&self, incident: i64) {
        self.parent(incident, MessageKind::Parent, None).await;
    }

    /// [`Reporter::opened`], its thread in `channel` (a responder's own) when given.
    pub async fn opened_in(&self, incident: i64, channel: Option<&str>) {
        self.parent(incident, MessageKind::Parent, channel).await;
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

    /// A chart (PNG) for the thread, titled `title` (plain text).
    pub async fn chart(&self, incident: i64, title: &str, png: &[u8]) {
        let message = NewMessage {
            incident_id: incident,
            kind: MessageKind::Reply,
            text: title.to_owned(),
            deliver: self.deliver,
            // Replies follow their parent's channel.
            channel: None,
        };
        match self
            .store
            .enqueue_file(&message, png, OffsetDateTime::now_utc())
            .await
        {
            Ok(_) => self.wake.notify_one(),
            Err(e) => {
                tracing::error!(incident, error.message = %e, "Could not queue a chart.")
            }
        }
    }

    /// A human must look: a reply that names the runbook priority and mentions the primary
    /// on-call group (`SLACK_ONCALL_GROUP`, else the runbook's [`DEFAULT_ONCALL`]).
    pub async fn escalate(&self, incident: i64, priority: Priority, reason: &str) {
        let who = self.mention.as_deref().unwrap_or(DEFAULT_ONCALL);
        let text = format!(
            ":sos: *{priority}* ({}): {}: escalating to a human {who}",
            priority.meaning(),
            render::escape(reason)
        );
        self.queue_escaped(incident, MessageKind::Reply, text).await;
    }

    /// A step waits for a human: what it will do, how to decide, when it expires; with
    /// Approve / Deny buttons. Returns the message's outbox id, which a decision edits.
    pub async fn approval_requested(
        &self,
        incident: i64,
        approval_id: i64,
        step_id: &str,
        plan: &str,
        expires_in: &str,
    ) -> Option<i64> {
        let who = self.asker();
        let text = format!(
            ":raised_hand: {who}Approval needed for *{}*: {}. Expires in {expires_in}. \
             Decide with the buttons, `approve {incident}` / `deny {incident}` in the Slack command, \
             or `POST /api/incidents/{incident}/approvals` `{{\"decision\": \"approve\"|\"deny\", \"by\": \"&lt;you&gt;\"}}` (admin token).",
            render::escape(step_id),
            render::escape(plan),
        );
        let blocks = approval::request_blocks(&text, approval_id);
        let id = self.ask(incident, text, &blocks).await?;
        if let Err(e) = self.store.set_approval_message(approval_id, id).await {
            tracing::error!(approval = approval_id, error.message = %e, "Could not link an approval to its message.");
        }
        Some(id)
    }

    /// A choice waits for a human: every option (approval id, step, plan) in one message, an
    /// Approve button each and one Deny. Returns the message's outbox id.
    pub async fn choice_requested(
        &self,
        incident: i64,
        group: &str,
        options: &[(i64, &str, &str)],
        expires_in: &str,
    ) -> Option<i64> {
        let who = self.asker();
        let lines: Vec<String> = options
            .iter()
            .map(|(_, step, plan)| {
                format!("• *{}*: {}", render::escape(step), render::escape(plan))
            })
            .collect();
        let text = format!(
            ":raised_hand: {who}Choose one option of *{}* (at most one can be approved; approving one refuses the others). Expires in {expires_in}.\n{}\n\
             Decide with the buttons, `deny {incident}` in the Slack command, or `POST /api/incidents/{incident}/approvals` \
             `{{\"decision\": \"approve\", \"step\": \"&lt;option&gt;\", \"by\": \"&lt;you&gt;\"}}` (admin token).",
            render::escape(group),
            lines.join("\n"),
        );
        let buttons: Vec<(i64, &str)> = options.iter().map(|(id, step, _)| (*id, *step)).collect();
        let blocks = approval::choice_blocks(&text, &buttons);
        self.ask(incident, text, &blocks).await
    }

    /// Who a request for a decision mentions (the on-call group when one is set), with a
    /// trailing space.
    fn asker(&self) -> String {
        self.mention
            .as_deref()
            .map(|m| format!("{m} "))
            .unwrap_or_default()
    }

    /// Posts a request for a decision (text and its buttons) in the thread; its outbox id.
    async fn ask(&self, incident: i64, text: String, blocks: &str) -> Option<i64> {
        self.queue_rich(incident, MessageKind::Reply, text, Some(blocks), None, None)
            .await
    }

    /// A choice was settled: its message loses its buttons and shows each option's end.
    pub async fn choice_settled(&self, incident: i64, message_id: i64, rows: &[ApprovalRow]) {
        let (text, blocks) = approval::settled_all(rows);
        self.edit(incident, message_id, text, &blocks).await;
    }

    /// An approval was settled (decided, expired, cancelled): its request message loses its
    /// buttons and says who decided and when.
    pub async fn approval_settled(&self, incident: i64, message_id: i64, row: &ApprovalRow) {
        let (text, blocks) = approval::settled(row);
        self.edit(incident, message_id, text, &blocks).await;
    }

    /// Replaces an earlier message of the thread (its buttons too) with `text` and `blocks`.
    async fn edit(&self, incident: i64, message_id: i64, text: String, blocks: &str) {
        self.queue_rich(
            incident,
            MessageKind::Update,
            text,
            Some(blocks),
            Some(message_id),
            None,
        )
        .await;
    }

    /// A human decided an approval.
    pub async fn approval_decided(
        &self,
        incident: i64,
        step_id: &str,
        decision: ApprovalState,
        by: &str,
    ) {
        let icon = if decision == ApprovalState::Approved {
            ":white_check_mark:"
        } else {
            ":no_entry_sign:"
        };
        let text = format!("{icon} *{step_id}* {decision} by {by}");
        self.queue(incident, MessageKind::Reply, text).await;
    }

    /// The run ended or the alert resolved: edit the parent to show the current state.
    pub async fn refresh(&self, incident: i64) {
        self.parent(incident, MessageKind::Update, None).await;
    }

    /// Posts the parent once, or edits it; an incident never posted (a quiet one) is not
    /// edited, since there is nothing in Slack to edit.
    async fn parent(&self, incident: i64, kind: MessageKind, channel: Option<&str>) {
        match self.store.incident_view(incident).await {
            Ok(Some(view)) if view.posted == (kind == MessageKind::Parent) => {
                tracing::debug!(incident, kind = kind.as_str(), "Parent message not needed.");
            }
            Ok(Some(view)) => {
                let text = render::escape(&render::parent(&view));
                self.queue_rich(incident, kind, text, None, None, channel)
                    .await;
            }
            Ok(None) => tracing::warn!(
                incident,
                "Incident vanished before its message was rendered."
            ),
            Err(e) => {
                tracing::error!(incident, error.message = %e, "Could not read the incident to report it.")
            }
        }
    }

    /// Queues mrkdwn (and blocks) whose data parts the caller escaped; `edit_of` names an
    /// earlier message to edit instead of the parent. Returns the outbox id.
    async fn queue_rich(
        &self,
        incident: i64,
        kind: MessageKind,
        text: String,
        blocks: Option<&str>,
        edit_of: Option<i64>,
        channel: Option<&str>,
    ) -> Option<i64> {
        let message = NewMessage {
            incident_id: incident,
            kind,
            text,
            deliver: self.deliver,
            channel: channel.map(str::to_owned),
        };
        let now = OffsetDateTime::now_utc();
        match self
            .store
            .enqueue_rich(&message, blocks, edit_of, now)
            .await
        {
            Ok(id) => {
                self.wake.notify_one();
                Some(id)
            }
            Err(e) => {
                tracing::error!(incident, error.message = %e, "Could not queue a Slack message.");
                None
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
        self.queue_rich(incident, kind, text, None, None, None)
            .await;
    }
}

/// The delay a 429 asked for in its `Retry-After` header (whole seconds), if it gave one.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<std::time::Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(std::time::Duration::from_secs)
}
