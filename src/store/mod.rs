//! The durable record: intake journal, incidents, runs, steps, decisions, budgets, outbox.
//!
//! Everything the service knows lives behind the [`Store`] trait so a second backend
//! (Postgres, for replicas) can stand in for the embedded SQLite one. Writes that must happen
//! together (a journal entry, its incident and its run) happen in one call and one transaction.

mod annotations;
mod chatops;
mod files;
mod history;
mod intake;
mod model;
mod open;
mod postgres;
mod record;
mod schedules;
pub(crate) mod silences;
mod sqlite;
mod views;
pub(crate) mod watches;

pub use crate::alert::format_time;
pub use annotations::{AnnotationKind, DueAnnotation, NewAnnotation};
pub use chatops::*;
pub use history::{BudgetUse, HistoryStore, PastAlert};
pub use intake::{Intake, IntakeHealth, Prioritize, Receipt};
pub use model::*;
pub(crate) use open::new_owner;
pub use open::{connect, open_read_only, redact_url, Backend, StoreOptions};
pub use postgres::PostgresStore;
pub use schedules::ScheduleStore;
pub use silences::{NewSilence, Silence, SilenceStore};
pub use sqlite::SqliteStore;
pub use views::*;
pub use watches::{NewWatch, Watch, WatchState, WatchStore};

use async_trait::async_trait;
use futures::stream::BoxStream;
use time::OffsetDateTime;

use crate::alert::Alert;
use crate::limits::{Admission, Budget};

/// Why the store could not do what was asked. Worded for people, the same for every backend:
/// no driver types, no SQL, no file paths in [`StoreError::reason`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or is unreachable; callers answer 503 and retry later.
    /// `reason` is short and public; `detail` is the driver's message, for logs only.
    #[error("database: {reason} ({detail})")]
    Database {
        /// What kind of failure, fit for `/readyz` and a 503 body.
        reason: &'static str,
        /// The driver's own message.
        detail: String,
    },
    /// Applying the schema failed at startup.
    #[error("migration: {0}")]
    Migration(String),
    /// A stored JSON document could not be read back.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The intake writer could not commit (the database failed underneath it).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The intake takes no more alerts: the service is shutting down.
    #[error("intake closed")]
    IntakeClosed,
    /// The journal holds as many unprocessed alerts as it may (`RESPONDER_MAX_BACKLOG`):
    /// webhooks are refused until the dispatcher works some off; their senders retry.
    #[error("the journal holds {pending} unprocessed alerts (RESPONDER_MAX_BACKLOG is {limit}): retry later")]
    Backlog {
        /// Unprocessed entries, as last counted.
        pending: u64,
        /// The bound.
        limit: u64,
    },
    /// Another replica is doing this work right now (recording the journal); it does this
    /// caller's share too, so the caller leaves it and looks again later.
    #[error("another replica is recording the journal")]
    Contended,
    /// `RESPONDER_DATABASE_URL` names no backend this build has, or cannot be parsed.
    #[error("{0}")]
    Url(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database {
            reason: classify(&e),
            detail: e.to_string(),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migration(e.to_string())
    }
}

/// A short, stable reason for a driver error: SQLite's wording (sqlite3_errstr) and
/// PostgreSQL's SQLSTATE classes mapped to the same few phrases.
fn classify(e: &sqlx::Error) -> &'static str {
    let message = match e {
        // Every connection busy, or (PostgreSQL) none can be opened: the server is down or
        // unreachable. Either way the database did not answer in time.
        sqlx::Error::PoolTimedOut => {
            return "the database did not answer in time (no connection available)"
        }
        sqlx::Error::PoolClosed => return "the database connection is closed",
        sqlx::Error::Io(e) => e.to_string(),
        sqlx::Error::Tls(_) => return "the database connection failed (TLS)",
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // PostgreSQL: 53 insufficient resources, 57P0x shutdown, 08 connection, 25006
            // read-only transaction, 57014 statement timeout, 40 serialization.
            let by_code = [
                ("53100", "the database or disk is full"),
                ("53", "the database is out of resources"),
                ("57014", "the database took too long (statement timeout)"),
                ("57P", "the database is shutting down or restarting"),
                ("08", "the database connection failed"),
                ("25006", "the database is read-only"),
                ("40", "the database is busy"),
                ("28", "the database refused the credentials"),
                ("3D", "the database does not exist"),
            ];
            if let Some((_, reason)) = by_code.iter().find(|(prefix, _)| code.starts_with(prefix)) {
                return reason;
            }
            db.message().to_owned()
        }
        _ => String::new(),
    };
    let known = [
        ("full", "the database or disk is full"),
        ("readonly", "the database is read-only"),
        ("read-only", "the database is read-only"),
        ("locked", "the database is locked"),
        ("busy", "the database is busy"),
        ("disk i/o", "disk I/O error"),
        ("unable to open", "the database file cannot be opened"),
        ("connection refused", "the database refused the connection"),
        ("timed out", "the database did not answer in time"),
        ("reset by peer", "the database connection was lost"),
        ("broken pipe", "the database connection was lost"),
        ("unexpected eof", "the database connection was lost"),
    ];
    let lower = message.to_ascii_lowercase();
    known
        .iter()
        .find(|(needle, _)| lower.contains(needle))
        .map_or("the database failed", |(_, reason)| reason)
}

impl StoreError {
    /// A short, stable reason fit for a public answer (`/readyz`, a 503 body): what kind of
    /// failure, never a query, a path or a driver's internals.
    pub fn reason(&self) -> &str {
        match self {
            StoreError::Database { reason, .. } => reason,
            StoreError::Unavailable(reason) => reason,
            StoreError::IntakeClosed => "shutting down",
            StoreError::Backlog { .. } => "the journal's backlog is at RESPONDER_MAX_BACKLOG",
            StoreError::Contended => "another replica is doing this work",
            StoreError::Corrupt(_) => "a stored record could not be read",
            StoreError::Migration(_) => "the database schema could not be applied",
            StoreError::Url(_) => "the database URL is not usable",
        }
    }
}

/// Durable storage for everything the responder sees and does.
#[async_trait]
pub trait Store:
    ChatStore + ScheduleStore + HistoryStore + WatchStore + SilenceStore + Send + Sync + std::fmt::Debug
{
    /// Cheap liveness check of the database, for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Closes the connections, waiting for them to finish.
    async fn close(&self);

    /// This replica's name as the holder of runs and roles: unique per process
    /// (`host-pid-random`), so a restarted process never mistakes an earlier one's runs for
    /// its own.
    fn owner(&self) -> &str;

    /// Claims a pending run for this replica: marks it `running`, holding its target and a
    /// lease, unless another run anywhere holds the target ([`Claim::TargetBusy`]),
    /// `max_running` runs already run across every replica ([`Claim::Full`]), or it is no
    /// longer pending ([`Claim::Gone`]). One running run per target is a database rule.
    async fn claim_run(
        &self,
        run_id: i64,
        max_running: u32,
        now: OffsetDateTime,
    ) -> Result<Claim, StoreError>;

    /// Renews the leases of the runs this replica holds (pending and running) and returns
    /// those whose cancellation was asked for (a resolve, recorded by any replica), and those
    /// asked to stop for another incident whose target died (its holder decides).
    async fn renew_leases(&self, now: OffsetDateTime) -> Result<LeaseNews, StoreError>;

    /// Checks and spends, in one transaction, everything a destructive step needs: this
    /// replica still holds the run's lease (fencing), the cluster-wide action rate, and the
    /// step's budget. When allowed, the use is recorded.
    async fn spend_action(
        &self,
        spend: &ActionSpend<'_>,
        now: OffsetDateTime,
    ) -> Result<Spend, StoreError>;

    /// Holds (or takes over, when its holder's lease expired) the singleton `role`, e.g. the
    /// outbox sender; true while this replica holds it. Call at least once per lease.
    async fn lead(&self, role: &str, now: OffsetDateTime) -> Result<bool, StoreError>;

    /// Gives up `role` if held, so another replica takes it at once.
    async fn resign(&self, role: &str) -> Result<(), StoreError>;

    /// Changes other replicas commit, as they happen (PostgreSQL's LISTEN/NOTIFY); `None`
    /// where no other process shares the database (SQLite). A wake-up may be lost (the
    /// listener's connection dropped): every consumer also polls.
    async fn wakeups(&self) -> Result<Option<BoxStream<'static, Wakeup>>, StoreError> {
        Ok(None)
    }

    /// How many journal appends the intake may have in flight at once: 1 where writes are
    /// serialised anyway (SQLite has one writer), more where the server commits concurrent
    /// transactions together (PostgreSQL flushes their WAL in one go).
    fn journal_writers(&self) -> usize {
        1
    }

    /// Appends alerts to the journal in one transaction, all of one (the lowest) priority and
    /// one target; a known dedup key is a no-op. Returns, per alert, whether it was new.
    async fn append_journal(&self, alerts: &[Alert]) -> Result<Vec<bool>, StoreError> {
        let ranks = vec![Rank::default(); alerts.len()];
        self.append_ranked(alerts, &ranks).await
    }

    /// Appends alerts to the journal in one transaction, each with its rank (same length as
    /// `alerts`); a known dedup key is a no-op. Returns, per alert, whether it was new.
    ///
    /// Each entry gets its turn among the pending entries of its priority: after the pending
    /// entries of its own target, and never before the turn the dispatcher has reached.
    async fn append_ranked(
        &self,
        alerts: &[Alert],
        ranks: &[Rank],
    ) -> Result<Vec<bool>, StoreError>;

    /// The unprocessed journal entries the dispatcher takes next: the highest priority
    /// first; within a priority, by turn (targets take turns), then in arrival order.
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
    /// entries before it in the batch recorded (an incident one of them opened). With
    /// replicas, one records at a time: [`StoreError::Contended`] while another is at it
    /// (it records these entries too), and entries another recorded come back
    /// `already_recorded`.
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

    /// Asks the run of another incident holding the dead target, unless it has a destructive
    /// step started, to stop for the death's incident; returns it (its holder decides,
    /// [`LeaseNews::preempt`]). Recording a death asks the same; the death's run asks again
    /// while it waits, as the target may change hands meanwhile.
    async fn ask_preemption(&self, death: &TargetDeath<'_>) -> Result<Vec<i64>, StoreError>;

    /// Marks a pending run as running without holding its target or a run slot: for a run
    /// cancelled before it could start, which only records its steps as cancelled.
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

    /// Marks runs whose holder is gone (or, at shutdown, this replica's own) as interrupted,
    /// their started steps as `unknown`, and returns them to be reported; takes over and
    /// returns runs never started (see [`RecoverScope`]). Never re-runs anything.
    async fn recover_runs(
        &self,
        scope: RecoverScope,
        now: OffsetDateTime,
    ) -> Result<Recovery, StoreError>;

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

    /// Takes a due message (Slack or PagerDuty) for sending, for one lease: no sender, on
    /// any replica, sees it due meanwhile, so one accepted by the destination but not yet
    /// recorded as sent (the database away for a moment) is not sent again. A lease, because
    /// a sender that dies loses its role after one too: its successor finds the message due.
    /// False when it is no longer due (sent, or taken by another sender).
    async fn claim_message(&self, id: i64, now: OffsetDateTime) -> Result<bool, StoreError>;

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

    /// Queues a reply sharing `file` in the incident's thread, titled `message.text`.
    async fn enqueue_file(
        &self,
        message: &NewMessage,
        file: &[u8],
        now: OffsetDateTime,
    ) -> Result<i64, StoreError>;

    /// The incident's latest chart (title, PNG), for its page; `None` when it has none.
    async fn latest_chart(&self, incident: i64) -> Result<Option<(String, Vec<u8>)>, StoreError>;

    /// Queues a Grafana annotation delivery; `None` when the run already has one of that
    /// kind (so a second report of one run never doubles its annotation).
    async fn enqueue_annotation(
        &self,
        annotation: &NewAnnotation,
        now: OffsetDateTime,
    ) -> Result<Option<i64>, StoreError>;

    /// The next annotation delivery of each incident (the oldest pending one, if due).
    async fn due_annotations(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<DueAnnotation>, StoreError>;

    /// Marks an annotation delivery accepted, with the id Grafana gave a created annotation
    /// (failures: [`Store::message_failed`]).
    async fn annotation_sent(
        &self,
        id: i64,
        annotation_id: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

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

    /// Closes a still-pending approval as `expired`, `cancelled` or `preempted`.
    async fn close_approval(
        &self,
        id: i64,
        state: ApprovalState,
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
