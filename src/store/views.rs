//! What the store returns for the API and for message rendering.

use serde::Serialize;

use crate::responders::outcome::{stored_names, ApprovalState, RunOutcome, RunState, StepState};
use crate::responders::Mode;
use crate::store::StoreError;

/// A stored name read back as what it stands for: a name this version never writes is a
/// corrupt record, said so, not a silent default.
pub(super) fn named<T>(
    column: &str,
    text: String,
    parse: fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(&text).ok_or_else(|| StoreError::Corrupt(format!("{column} {text:?} is not known")))
}

/// [`named`] for a column that may be empty.
pub(super) fn named_opt<T>(
    column: &str,
    text: Option<String>,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>, StoreError> {
    text.map(|t| named(column, t, parse)).transpose()
}

/// Whether an incident is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Its alert fires (or a run is still going).
    Open,
    /// Its alert resolved.
    Resolved,
}

stored_names!(IncidentStatus {
    Open => "open",
    Resolved => "resolved",
});

/// An incident as listed by the API.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentRow {
    /// Incident id.
    pub id: i64,
    /// Alert fingerprint (the incident key).
    pub fingerprint: String,
    /// Alert name.
    pub alertname: String,
    /// `severity` label.
    pub severity: Option<String>,
    /// What the responder acts on.
    pub target: Option<String>,
    /// Open or resolved.
    pub status: IncidentStatus,
    /// The latest run's summary.
    pub summary: Option<String>,
    /// RFC 3339.
    pub opened_at: String,
    /// RFC 3339.
    pub resolved_at: Option<String>,
    /// The latest run's state, if any run.
    pub run_state: Option<RunState>,
    /// The latest run's outcome once it finished.
    pub run_outcome: Option<RunOutcome>,
}

/// An incident row as both backends select it (`INCIDENT_COLUMNS`): one reading for both, so
/// their answers cannot drift apart.
pub(super) fn incident_row<'r, R>(row: &'r R) -> Result<IncidentRow, StoreError>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(IncidentRow {
        id: row.try_get("id")?,
        fingerprint: row.try_get("fingerprint")?,
        alertname: row.try_get("alertname")?,
        severity: row.try_get("severity")?,
        target: row.try_get("target")?,
        status: named("status", row.try_get("status")?, IncidentStatus::parse)?,
        summary: row.try_get("summary")?,
        opened_at: row.try_get("opened_at")?,
        resolved_at: row.try_get("resolved_at")?,
        run_state: named_opt("run_state", row.try_get("run_state")?, RunState::parse)?,
        run_outcome: named_opt(
            "run_outcome",
            row.try_get("run_outcome")?,
            RunOutcome::parse,
        )?,
    })
}

/// An alert notification as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct AlertRow {
    /// Row id.
    pub id: i64,
    /// firing / resolved.
    pub status: crate::alert::Status,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339.
    pub ends_at: Option<String>,
    /// RFC 3339.
    pub received_at: String,
    /// Labels.
    pub labels: serde_json::Value,
    /// Annotations.
    pub annotations: serde_json::Value,
}

/// A run with its steps.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    /// Run id.
    pub id: i64,
    /// Responder name.
    pub responder: String,
    /// Target.
    pub target: String,
    /// Live or dry-run.
    pub mode: Mode,
    /// Where it stands.
    pub state: RunState,
    /// How it ended, once it did.
    pub outcome: Option<RunOutcome>,
    /// One line.
    pub summary: Option<String>,
    /// RFC 3339.
    pub started_at: Option<String>,
    /// RFC 3339.
    pub finished_at: Option<String>,
    /// Steps in order.
    pub steps: Vec<StepRow>,
}

/// A recorded step.
#[derive(Debug, Clone, Serialize)]
pub struct StepRow {
    /// Playbook step id.
    pub step_id: String,
    /// Action kind.
    pub action: String,
    /// Whether the action changes the system.
    pub destructive: bool,
    /// How it ended, or that it runs.
    pub state: StepState,
    /// One line.
    pub summary: Option<String>,
    /// Typed outputs.
    pub outputs: Option<serde_json::Value>,
    /// Error text.
    pub error: Option<String>,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: Option<String>,
}

/// A recorded decision.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionRow {
    /// What was decided.
    pub kind: super::DecisionKind,
    /// Why.
    pub detail: String,
    /// Run it concerns.
    pub run_id: Option<i64>,
    /// RFC 3339.
    pub at: String,
}

/// A message and its delivery state.
#[derive(Debug, Clone, Serialize)]
pub struct MessageRow {
    /// parent / reply / update.
    pub kind: super::MessageKind,
    /// pending / sent / failed / superseded / disabled.
    pub state: super::DeliveryState,
    /// Text.
    pub text: String,
    /// Attempts.
    pub attempts: i64,
    /// Last error.
    pub last_error: Option<String>,
    /// Slack ts once sent.
    pub ts: Option<String>,
    /// RFC 3339: when it was queued.
    pub created_at: String,
    /// RFC 3339: when it was delivered.
    pub sent_at: Option<String>,
}

/// Everything about one incident.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentDetail {
    /// The incident.
    pub incident: IncidentRow,
    /// Its labels when it opened.
    pub labels: serde_json::Value,
    /// Every notification received.
    pub alerts: Vec<AlertRow>,
    /// Runs with steps.
    pub runs: Vec<RunRow>,
    /// Decisions.
    pub decisions: Vec<DecisionRow>,
    /// Messages.
    pub messages: Vec<MessageRow>,
    /// Approvals requested by its runs.
    pub approvals: Vec<ApprovalRow>,
}

/// Whether a read of an incident's decisions keeps folds and joins, which are one per alert
/// of a storm: the API shows them all, the parent message reads none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Followers {
    /// Every decision.
    Kept,
    /// All but folds and joins.
    Skipped,
}

/// An incident's header and latest run, for rendering its Slack parent message.
#[derive(Debug, Clone)]
pub struct IncidentView {
    /// The incident.
    pub incident: IncidentRow,
    /// Its latest run.
    pub run: Option<RunRow>,
    /// Its decisions but folds and joins ([`Followers::Skipped`]): a storm's thousands of
    /// those would be read at every edit of the parent, for nothing.
    pub decisions: Vec<DecisionRow>,
    /// Firing notifications recorded on it: the one that opened it, its re-fires and every
    /// alert folded into it.
    pub firing: i64,
    /// Whether its Slack parent message was queued: a quiet incident (unrouted, with
    /// unrouted alerts not posted) has none, and nothing edits what was never posted.
    pub posted: bool,
}

/// A step's request for a human decision.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRow {
    /// Approval id.
    pub id: i64,
    /// The run waiting for it.
    pub run_id: i64,
    /// The step waiting for it.
    pub step_id: String,
    /// What the step will do, e.g. `delete 12 files ... in k2-spark-master`.
    pub plan: String,
    /// Where it stands.
    pub state: ApprovalState,
    /// RFC 3339.
    pub requested_at: String,
    /// Unix seconds after which it expires.
    pub expires_at_unix: i64,
    /// Who decided.
    pub decided_by: Option<String>,
    /// RFC 3339.
    pub decided_at: Option<String>,
    /// The choice it is an option of (`choice:`), if any.
    pub choice: Option<String>,
}

/// Counts read at scrape time for the `/metrics` gauges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreGauges {
    /// Journal entries not yet processed.
    pub journal_pending: i64,
    /// Age of the oldest unprocessed journal entry; zero when none.
    pub journal_oldest_pending_age: std::time::Duration,
    /// Outbox messages still to deliver.
    pub outbox_pending: i64,
    /// Approvals pending and not yet expired.
    pub approvals_pending: i64,
    /// Open incidents.
    pub incidents_open: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::responders::outcome::tests::agree;

    #[test]
    fn incident_status_names_agree() {
        agree(
            IncidentStatus::ALL,
            IncidentStatus::as_str,
            IncidentStatus::parse,
        );
    }
}
