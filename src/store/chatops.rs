//! What the Slack commands and buttons need from the store: the audit of who asked for what,
//! runtime mode overrides, approvals decided by id, and messages with blocks or editing one
//! earlier message.

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

use super::{ApprovalRow, MessageKind, NewMessage, StoreError};
pub use crate::responders::overrides::ModeOverrideRow;

/// How an attempt to use the responder from Slack ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// Authorized and done.
    Allowed,
    /// Not authorized (or not a command): nothing done.
    Refused,
    /// Authorized, but it could not be done.
    Failed,
}

crate::responders::outcome::stored_names!(AuditOutcome {
    Allowed => "allowed",
    Refused => "refused",
    Failed => "failed",
});

/// One attempt to use the responder from Slack, allowed or not.
#[derive(Debug, Clone)]
pub struct NewAudit {
    /// Slack user ID (`U…`).
    pub user_id: String,
    /// The user's name as Slack sent it.
    pub user_name: String,
    /// Subcommand (`run`, `approve`, …) or `button`.
    pub command: String,
    /// The rest of the command text, or the button's action and value.
    pub args: String,
    /// Whether it was done.
    pub outcome: AuditOutcome,
    /// One line: what happened or why it was refused.
    pub detail: String,
}

/// A recorded audit entry, as `GET /api/audit` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    /// Entry id.
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    /// Slack user ID.
    pub user_id: String,
    /// Slack user name.
    pub user_name: String,
    /// Subcommand or `button`.
    pub command: String,
    /// Its arguments.
    pub args: String,
    /// Whether it was done.
    pub outcome: AuditOutcome,
    /// What happened.
    pub detail: String,
}

/// An approval with what a Slack button needs around it.
#[derive(Debug, Clone)]
pub struct ApprovalContext {
    /// The approval.
    pub row: ApprovalRow,
    /// Its incident.
    pub incident_id: i64,
    /// The responder whose step waits.
    pub responder: String,
    /// The outbox message carrying its buttons, once posted.
    pub message_id: Option<i64>,
}

/// Store operations of Slack chat-ops; part of every [`super::Store`].
#[async_trait]
pub trait ChatStore: Send + Sync {
    /// Records one attempt; returns its id.
    async fn record_audit(&self, entry: &NewAudit, now: OffsetDateTime) -> Result<i64, StoreError>;

    /// Audit entries, newest first.
    async fn audit(&self, limit: u32) -> Result<Vec<AuditRow>, StoreError>;

    /// Sets (replaces) the mode of `scope` (`None`: global).
    async fn set_mode_override(
        &self,
        scope: Option<&str>,
        mode: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Every mode override.
    async fn mode_overrides(&self) -> Result<Vec<ModeOverrideRow>, StoreError>;

    /// Queues a message with Block Kit `blocks` (JSON) and, for an edit, the outbox id of the
    /// earlier message it replaces (`kind` update); returns its id. An edit of the parent
    /// supersedes the parent edits still waiting (not being sent): it carries the newer
    /// state, so a storm's many refreshes cost Slack one edit, not one each.
    async fn enqueue_rich(
        &self,
        message: &NewMessage,
        blocks: Option<&str>,
        edit_of: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError>;

    /// Remembers which outbox message carries an approval's buttons.
    async fn set_approval_message(&self, approval: i64, message: i64) -> Result<(), StoreError>;

    /// One approval with its incident, responder and message.
    async fn approval_context(&self, approval: i64) -> Result<Option<ApprovalContext>, StoreError>;

    /// Decides approval `id` if it is still pending and unexpired; `None` when it was not
    /// (decided before, expired, cancelled): the decision never changes twice.
    async fn decide_approval_by_id(
        &self,
        id: i64,
        approve: bool,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ApprovalRow>, StoreError>;

    /// The newest incident of an alert fingerprint.
    async fn incident_by_fingerprint(&self, fingerprint: &str) -> Result<Option<i64>, StoreError>;
}

/// Whether queueing `m` supersedes the incident's waiting parent edits: it is itself a parent
/// edit (an edit of another message, such as an approval request, replaces nothing else).
pub fn superseding(m: &NewMessage, edit_of: Option<i64>) -> bool {
    m.kind == MessageKind::Update && edit_of.is_none() && m.deliver
}
