//! The durable record: intake journal, incidents, runs, steps, decisions, budgets, outbox.
//!
//! Everything the service knows lives behind the [`Store`] trait so a second backend
//! (Postgres, for replicas) can stand in for the embedded SQLite one. Writes that must happen
//! together (a journal entry, its incident and its run) happen in one call and one transaction.

mod chatops;
mod intake;
mod model;
mod sqlite;
mod views;

pub use chatops::*;
pub use intake::{Intake, IntakeHealth, Receipt};
pub use model::*;
pub use sqlite::SqliteStore;
pub use views::*;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::alert::Alert;
use crate::limits::{Admission, Budget};

/// RFC 3339 text, the one timestamp format the store and the API use.
pub fn format_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or is unreachable; callers answer 503 and retry later.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the schema failed at startup.
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A stored JSON document could not be read back.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The intake writer could not commit (the database failed underneath it).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The intake takes no more alerts: the service is shutting down.
    #[error("intake closed")]
    IntakeClosed,
}

impl StoreError {
    /// A short, stable reason fit for a public answer (`/readyz`, a 503 body): what kind of
    /// failure, never a query, a path or a driver's internals.
    pub fn reason(&self) -> &'static str {
        let message = match self {
            StoreError::Database(sqlx::Error::Database(db)) => db.message().to_owned(),
            StoreError::Database(sqlx::Error::PoolTimedOut) => {
                return "the database is busy (timed out waiting for a connection)"
            }
            StoreError::Database(sqlx::Error::Io(e)) => e.to_string(),
            StoreError::Unavailable(reason) => reason.clone(),
            StoreError::IntakeClosed => return "shutting down",
            StoreError::Corrupt(_) => return "a stored record could not be read",
            _ => String::new(),
        };
        // SQLite's own wording (sqlite3_errstr), which the driver passes through.
        let known = [
            ("full", "the database or disk is full"),
            ("readonly", "the database is read-only"),
            ("read-only", "the database is read-only"),
            ("locked", "the database is locked"),
            ("busy", "the database is busy"),
            ("disk i/o", "disk I/O error"),
            ("unable to open", "the database file cannot be opened"),
        ];
        let lower = message.to_ascii_lowercase();
        known
            .iter()
            .find(|(needle, _)| lower.contains(needle))
            .map_or("the database failed", |(_, reason)| reason)
    }
}

/// Durable storage for everything the responder sees and does.
#[async_trait]
pub trait Store: ChatStore + Send + Sync + std::fmt::Debug {
    /// Cheap liveness check of the database, for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Appends alerts to the journal in one transaction; a known dedup key is a no-op.
    /// Returns, per alert, whether it was new.
    async fn append_journal(&self, alerts: &[Alert]) -> Result<Vec<bool>, StoreError>;

    /// The oldest unprocessed journal entries.
    async fn pending_journal(&self, limit: u32) -> Result<Vec<JournalEntry>, StoreError>;

    /// Records a journal entry's alert against its incident and, in the same transaction,
    /// marks the entry processed and creates the planned run (firing) or resolves the
    /// incident (resolved).
    async fn record_alert(
        &self,
        entry: &JournalEntry,
        plan: &AlertPlan,
        now: OffsetDateTime,
    ) -> Result<Recorded, StoreError>;

    /// Records many journal entries, in order, in one transaction (one fsync for the batch):
    /// what [`Store::record_alert`] does for each, all or nothing. An entry sees what the
    /// entries before it in the batch recorded (an incident one of them opened).
    async fn record_alerts(
        &self,
        batch: &[(&JournalEntry, &AlertPlan)],
        now: OffsetDateTime,
    ) -> Result<Vec<Recorded>, StoreError>;

    /// Each step's outputs in the latest finished run of (responder, target) before `run_id`.
    async fn previous_outputs(
        &self,
        responder: &str,
        target: &str,
        run_id: i64,
    ) -> Result<serde_json::Map<String, serde_json::Value>, StoreError>;

    /// Closes an open incident that has no pending or running runs; true when it closed.
    async fn close_idle_incident(
        &self,
        incident_id: i64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Marks a pending run as running.
    async fn start_run(&self, run_id: i64, now: OffsetDateTime) -> Result<(), StoreError>;

    /// Records a step that began and returns its row id.
    async fn step_started(&self, step: &NewStep, now: OffsetDateTime) -> Result<i64, StoreError>;

    /// Records how a started step ended.
    async fn step_finished(
        &self,
        step_row: i64,
        end: &StepEnd,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Records a step that never ran (skipped, refused, cancelled, planned in dry-run).
    async fn step_not_run(
        &self,
        step: &NewStep,
        end: &StepEnd,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Closes a run with its outcome and one-line summary.
    async fn finish_run(
        &self,
        run_id: i64,
        outcome: RunOutcome,
        summary: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Records a decision (no route, refused target, budget exhausted, ...).
    async fn record_decision(
        &self,
        decision: &NewDecision,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Atomically checks the budget of (responder, target, step) against its stored history and,
    /// when admitted, records the use, so two replicas cannot both spend the last unit.
    async fn consume_budget(
        &self,
        responder: &str,
        target: &str,
        step: &str,
        budget: &Budget,
        run_id: i64,
        now: OffsetDateTime,
    ) -> Result<Admission, StoreError>;

    /// At startup: marks runs a crash left running as interrupted (their started steps as
    /// `unknown`) and returns them so they can be reported; returns runs never started too.
    async fn recover_runs(&self, now: OffsetDateTime) -> Result<Recovery, StoreError>;

    /// Queues a message for delivery, in order, in the incident's thread.
    async fn enqueue_message(
        &self,
        message: &NewMessage,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError>;

    /// The next deliverable message of each incident (the oldest pending one, if due).
    async fn due_messages(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError>;

    /// Marks a message delivered; a parent's channel and ts become the incident's thread.
    async fn message_sent(
        &self,
        id: i64,
        channel: &str,
        ts: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Records a failed attempt: retried at `retry_at`, or given up when `None`.
    async fn message_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<OffsetDateTime>,
    ) -> Result<(), StoreError>;

    /// Queues a PagerDuty delivery. A trigger is queued once per incident, a resolve only
    /// after a trigger and once; `None` when those rules skipped it.
    async fn enqueue_pagerduty(
        &self,
        message: &PagerDutyMessage,
        now: OffsetDateTime,
    ) -> Result<Option<i64>, StoreError>;

    /// The next PagerDuty delivery of each incident (the oldest pending one, if due).
    async fn due_pagerduty(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<PagerDutyMessage>, StoreError>;

    /// Marks a PagerDuty delivery accepted by PagerDuty (failures: [`Store::message_failed`]).
    async fn pagerduty_sent(&self, id: i64, now: OffsetDateTime) -> Result<(), StoreError>;

    /// Records a step's request for approval; returns its id.
    async fn request_approval(
        &self,
        approval: &NewApproval,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError>;

    /// One approval.
    async fn approval(&self, id: i64) -> Result<Option<ApprovalRow>, StoreError>;

    /// Decides the incident's oldest pending, unexpired approval; `None` when there is none.
    async fn decide_approval(
        &self,
        incident_id: i64,
        approve: bool,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ApprovalRow>, StoreError>;

    /// Closes a still-pending approval as `expired` or `cancelled`.
    async fn close_approval(
        &self,
        id: i64,
        state: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Unix-second times of the budget uses of (responder, target, step) after `since`.
    /// Read-only: what [`Store::consume_budget`] would weigh, for `simulate`.
    async fn budget_uses(
        &self,
        responder: &str,
        target: &str,
        step: &str,
        since: i64,
    ) -> Result<Vec<i64>, StoreError>;

    /// Incidents, newest first.
    async fn list_incidents(
        &self,
        open_only: bool,
        limit: u32,
    ) -> Result<Vec<IncidentRow>, StoreError>;

    /// One incident with its alerts, runs, steps, decisions and messages.
    async fn incident_detail(&self, id: i64) -> Result<Option<IncidentDetail>, StoreError>;

    /// The incident's header and its latest run with steps, for rendering messages.
    async fn incident_view(&self, id: i64) -> Result<Option<IncidentView>, StoreError>;

    /// The counts `/metrics` exposes as gauges, in one cheap read.
    async fn gauges(&self, now: OffsetDateTime) -> Result<StoreGauges, StoreError>;
}
