//! The embedded SQLite store (WAL): the default, needing nothing but a file.
//!
//! All writes go through a single-connection pool, so the service's own writers queue in
//! the pool instead of failing with SQLITE_BUSY; reads use a separate pool and, thanks to WAL,
//! never wait for writes. Intake's group commits and bookkeeping take turns at that connection
//! ([`turns`]), so a webhook's ack waits for at most one bookkeeping transaction.
//!
//! Durability: the journal (what a 2xx promises), budget uses and the start of a destructive
//! step are committed with synchronous=FULL (fsynced), and group commit in [`super::Intake`]
//! keeps the journal's fsync affordable. Bookkeeping (recording a journal entry's incident and
//! runs, a run starting or ending, non-destructive steps, decisions, the outbox) commits with
//! synchronous=NORMAL: in WAL mode that survives a process crash (the commit is in the OS),
//! and a power loss can only lose what came after the last fsync — and every FULL commit
//! fsyncs all of the WAL before it. So before a destructive action, everything leading to it
//! is on disk; what a power loss can take is recovered: a journal entry recorded again, a run
//! never started run from the top, a message sent again (or, at worst, a message queued in the
//! last moments before the power went, lost). This halves-and-more the fsyncs per incident,
//! which on a disk with ~5 ms fsyncs is what bounds throughput.

mod approvals;
mod budgets;
mod chatops;
mod claims;
mod connection;
mod history;
mod journal;
mod pagerduty;
mod queries;
mod reads;
mod record;
mod schedules;
mod silences;
mod target_turns;
mod turns;
mod watches;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sqlx::{Connection, Row, SqlitePool};
use time::OffsetDateTime;

use super::*;
use target_turns::TargetTurns;
use turns::{Queue, Turns};

/// SQLite-backed [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Who goes next at the writer: intake's group commits, then bookkeeping, in turn.
    turns: Arc<Turns>,
    /// Each new journal entry's turn among its priority's targets.
    target_turns: Arc<Mutex<TargetTurns>>,
    /// This process's name as the holder of runs (see [`Store::owner`]).
    owner: Arc<str>,
    /// How long a run is held without renewal.
    lease: std::time::Duration,
}

use super::format_time as ts;

impl SqliteStore {
    fn lock_target_turns(&self) -> std::sync::MutexGuard<'_, TargetTurns> {
        // Its state stays consistent whatever panicked while holding it: every update is one
        // insert or max.
        self.target_turns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This process holding what it records or claims, until a lease from `now`.
    fn holder(&self, now: OffsetDateTime) -> queries::Holder<'_> {
        queries::Holder {
            owner: &self.owner,
            until: now.unix_timestamp() + i64::try_from(self.lease.as_secs()).unwrap_or(60),
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn close(&self) {
        SqliteStore::close(self).await;
    }

    fn owner(&self) -> &str {
        &self.owner
    }

    async fn claim_run(
        &self,
        run_id: i64,
        max_running: u32,
        now: OffsetDateTime,
    ) -> Result<Claim, StoreError> {
        let holder = self.holder(now);
        claims::claim(
            &mut *self.relaxed().await?,
            run_id,
            max_running,
            holder,
            &ts(now),
        )
        .await
    }

    async fn renew_leases(&self, now: OffsetDateTime) -> Result<LeaseNews, StoreError> {
        claims::renew(&mut *self.relaxed().await?, self.holder(now)).await
    }

    async fn spend_action(
        &self,
        spend: &ActionSpend<'_>,
        now: OffsetDateTime,
    ) -> Result<Spend, StoreError> {
        claims::spend(&mut *self.durable().await?, spend, &self.owner, now).await
    }

    /// One process owns a SQLite file: every role is its own.
    async fn lead(&self, _role: &str, _now: OffsetDateTime) -> Result<bool, StoreError> {
        Ok(true)
    }

    async fn resign(&self, _role: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn append_ranked(
        &self,
        alerts: &[Alert],
        ranks: &[Rank],
    ) -> Result<Vec<bool>, StoreError> {
        let now = ts(OffsetDateTime::now_utc());
        let _turn = self.turns.take(Queue::Intake).await;
        let mut tx = self.writer.begin().await?;
        if !self.lock_target_turns().loaded() {
            let pending = TargetTurns::pending(&mut tx).await?;
            self.lock_target_turns().load(pending);
        }
        let turns: Vec<i64> = {
            let mut target_turns = self.lock_target_turns();
            ranks.iter().map(|rank| target_turns.assign(rank)).collect()
        };
        let fresh = journal::append(&mut tx, alerts, ranks, &turns, &now).await?;
        tx.commit().await?;
        Ok(fresh)
    }

    async fn pending_journal(&self, limit: u32) -> Result<Vec<JournalEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, alert, priority, turn FROM journal WHERE processed = 0
             ORDER BY priority DESC, turn, id LIMIT ?",
        )
        .bind(limit)
        // Only the dispatcher marks entries processed, and it reads after its commits:
        // a reader sees them all, and the writer stays free for intake.
        .fetch_all(&self.reader)
        .await?;
        let mut target_turns = self.lock_target_turns();
        let entries = rows
            .iter()
            .map(|row| {
                let alert: String = row.try_get("alert")?;
                let priority: i64 = row.try_get("priority")?;
                // Taken: a target's next entry goes no earlier than this turn.
                target_turns.taken(u8::try_from(priority).unwrap_or(0), row.try_get("turn")?);
                Ok(JournalEntry {
                    id: row.try_get("id")?,
                    alert: serde_json::from_str(&alert)
                        .map_err(|e| StoreError::Corrupt(format!("journal alert: {e}")))?,
                })
            })
            .collect();
        target_turns.forget_passed();
        entries
    }

    async fn record_alert(
        &self,
        entry: &JournalEntry,
        plan: &AlertPlan,
        now: OffsetDateTime,
    ) -> Result<Recorded, StoreError> {
        self.record_alerts(&[(entry, plan)], now)
            .await?
            .pop()
            .ok_or_else(|| StoreError::Corrupt("a recorded batch of one came back empty".into()))
    }

    async fn record_alerts(
        &self,
        batch: &[(&JournalEntry, &AlertPlan)],
        now: OffsetDateTime,
    ) -> Result<Vec<Recorded>, StoreError> {
        let at = now;
        let now = ts(now);
        let mut conn = self.relaxed().await?;
        let mut tx = conn.begin().await?;
        let mut recorder = record::SqliteRecorder {
            conn: &mut tx,
            now: &now,
            holder: self.holder(at),
        };
        let recorded = super::record::record_batch(&mut recorder, batch).await?;
        journal::mark_processed(&mut tx, batch.iter().map(|(entry, _)| entry.id)).await?;
        tx.commit().await?;
        Ok(recorded)
    }

    async fn previous_outputs(
        &self,
        responder: &str,
        target: &str,
        run_id: i64,
    ) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
        reads::previous_outputs(&self.reader, responder, target, run_id).await
    }

    async fn close_idle_incident(
        &self,
        incident_id: i64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE incidents SET status = 'resolved', resolved_at = ?
             WHERE id = ? AND status = 'open' AND NOT EXISTS (
                 SELECT 1 FROM runs WHERE incident_id = ? AND state IN ('pending', 'running'))",
        )
        .bind(ts(now))
        .bind(incident_id)
        .bind(incident_id)
        .execute(&mut *self.relaxed().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn ask_preemption(&self, death: &TargetDeath<'_>) -> Result<Vec<i64>, StoreError> {
        Ok(
            sqlx::query_scalar(crate::store::record::statements::ASK_PREEMPTION)
                .bind(death.incident)
                .bind(death.target)
                .bind(death.died_unix)
                .fetch_all(&mut *self.relaxed().await?)
                .await?,
        )
    }

    async fn start_run(&self, run_id: i64, now: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query("UPDATE runs SET state = 'running', started_at = ? WHERE id = ?")
            .bind(ts(now))
            .bind(run_id)
            .execute(&mut *self.relaxed().await?)
            .await?;
        Ok(())
    }

    async fn step_started(&self, step: &NewStep, now: OffsetDateTime) -> Result<i64, StoreError> {
        let query = sqlx::query(
            "INSERT INTO steps (run_id, step_id, action, destructive, state, started_at) VALUES (?, ?, ?, ?, 'started', ?)",
        )
        .bind(step.run_id)
        .bind(&step.step_id)
        .bind(&step.action)
        .bind(step.destructive)
        .bind(ts(now));
        // The record that a destructive step began must be on disk before it acts, so a
        // crash is reported as "may or may not have happened" and never re-run blindly.
        let done = if step.destructive {
            query.execute(&mut *self.durable().await?).await?
        } else {
            query.execute(&mut *self.relaxed().await?).await?
        };
        Ok(done.last_insert_rowid())
    }

    async fn step_finished(
        &self,
        row: i64,
        end: &StepEnd,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE steps SET state = ?, summary = ?, outputs = ?, error = ?, finished_at = ? WHERE id = ?",
        )
        .bind(end.state.as_str())
        .bind(&end.summary)
        .bind(end.outputs.as_ref().map(to_json).transpose()?)
        .bind(&end.error)
        .bind(ts(now))
        .bind(row)
        .execute(&mut *self.relaxed().await?)
        .await?;
        Ok(())
    }

    async fn step_not_run(
        &self,
        step: &NewStep,
        end: &StepEnd,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let at = ts(now);
        sqlx::query(
            "INSERT INTO steps (run_id, step_id, action, destructive, state, summary, outputs, error, started_at, finished_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(step.run_id)
        .bind(&step.step_id)
        .bind(&step.action)
        .bind(step.destructive)
        .bind(end.state.as_str())
        .bind(&end.summary)
        .bind(end.outputs.as_ref().map(to_json).transpose()?)
        .bind(&end.error)
        .bind(&at)
        .bind(&at)
        .execute(&mut *self.relaxed().await?)
        .await?;
        Ok(())
    }

    async fn finish_run(
        &self,
        run_id: i64,
        outcome: RunOutcome,
        summary: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut conn = self.relaxed().await?;
        let mut tx = conn.begin().await?;
        // Only a run still running: one reported interrupted meanwhile (a shutdown, or a lease
        // that lapsed and was reaped) keeps that report.
        sqlx::query("UPDATE runs SET state = 'finished', outcome = ?, summary = ?, finished_at = ?, target_lock = NULL WHERE id = ? AND state = 'running'")
            .bind(outcome.as_str())
            .bind(summary)
            .bind(ts(now))
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE incidents SET summary = ? WHERE id = (SELECT incident_id FROM runs WHERE id = ?)")
            .bind(summary)
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_decision(
        &self,
        d: &NewDecision,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        queries::insert_decision(&mut *self.relaxed().await?, d, &ts(now)).await
    }

    async fn consume_budget(
        &self,
        responder: &str,
        target: &str,
        step: &str,
        budget: &Budget,
        run_id: i64,
        now: OffsetDateTime,
    ) -> Result<Admission, StoreError> {
        let key = budgets::Key {
            responder,
            target,
            step,
        };
        budgets::consume(&mut *self.durable().await?, &key, budget, run_id, now).await
    }

    async fn recover_runs(
        &self,
        scope: RecoverScope,
        now: OffsetDateTime,
    ) -> Result<Recovery, StoreError> {
        let mut conn = self.durable().await?;
        let mut tx = conn.begin().await?;
        let recovery = queries::recover_runs(&mut tx, scope, self.holder(now), &ts(now)).await?;
        tx.commit().await?;
        Ok(recovery)
    }

    async fn enqueue_message(
        &self,
        m: &NewMessage,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        // One path for every message, so superseding parent edits holds for both.
        self.enqueue_rich(m, None, None, now).await
    }

    async fn due_messages(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        queries::due_messages(&self.reader, now.unix_timestamp(), limit).await
    }

    async fn message_sent(
        &self,
        id: i64,
        channel: &str,
        ts_: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut conn = self.relaxed().await?;
        let mut tx = conn.begin().await?;
        sqlx::query(
            "UPDATE outbox SET state = 'sent', channel = ?, ts = ?, sent_at = ?, attempts = attempts + 1 WHERE id = ?",
        )
        .bind(channel)
        .bind(ts_)
        .bind(ts(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE incidents SET slack_channel = ?, slack_ts = ?
             WHERE id = (SELECT incident_id FROM outbox WHERE id = ? AND kind = 'parent')",
        )
        .bind(channel)
        .bind(ts_)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim_message(&self, id: i64, now: OffsetDateTime) -> Result<bool, StoreError> {
        // The retry time doubles as the claim: a claimed message is not due until it lapses.
        let done = sqlx::query(
            "UPDATE outbox SET next_attempt_unix = ?
             WHERE id = ? AND state = 'pending' AND next_attempt_unix <= ?",
        )
        .bind(self.holder(now).until)
        .bind(id)
        .bind(now.unix_timestamp())
        .execute(&mut *self.relaxed().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn message_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let (state, next) = match retry_at {
            Some(at) => ("pending", at.unix_timestamp()),
            None => ("failed", 0),
        };
        sqlx::query(
            "UPDATE outbox SET state = ?, next_attempt_unix = ?, last_error = ?, attempts = attempts + 1 WHERE id = ?",
        )
        .bind(state)
        .bind(next)
        .bind(error)
        .bind(id)
        .execute(&mut *self.relaxed().await?)
        .await?;
        Ok(())
    }

    async fn enqueue_pagerduty(
        &self,
        m: &PagerDutyMessage,
        now: OffsetDateTime,
    ) -> Result<Option<i64>, StoreError> {
        pagerduty::enqueue(&self.writer, m, &ts(now)).await
    }

    async fn due_pagerduty(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<PagerDutyMessage>, StoreError> {
        pagerduty::due(&self.reader, now.unix_timestamp(), limit).await
    }

    async fn pagerduty_sent(&self, id: i64, now: OffsetDateTime) -> Result<(), StoreError> {
        pagerduty::sent(&self.writer, id, &ts(now)).await
    }

    async fn enqueue_file(
        &self,
        m: &NewMessage,
        file: &[u8],
        now: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(&annotations::for_sqlite(files::ENQUEUE))
            .bind(m.incident_id)
            .bind(&m.text)
            .bind(if m.deliver { "pending" } else { "disabled" })
            .bind(ts(now))
            .bind(file)
            .fetch_one(&self.writer)
            .await?)
    }

    async fn latest_chart(&self, incident: i64) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        Ok(sqlx::query_as(&annotations::for_sqlite(files::LATEST))
            .bind(incident)
            .fetch_optional(&self.reader)
            .await?)
    }

    async fn enqueue_annotation(
        &self,
        a: &NewAnnotation,
        now: OffsetDateTime,
    ) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar(&annotations::for_sqlite(annotations::ENQUEUE))
                .bind(a.incident_id)
                .bind(a.run_id)
                .bind(a.kind.as_str())
                .bind(to_json(&a.body)?)
                .bind(ts(now))
                .fetch_optional(&self.writer)
                .await?,
        )
    }

    async fn due_annotations(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<DueAnnotation>, StoreError> {
        let rows: Vec<annotations::DueRow> =
            sqlx::query_as(&annotations::for_sqlite(annotations::DUE))
                .bind(now.unix_timestamp())
                .bind(i64::from(limit))
                .fetch_all(&self.reader)
                .await?;
        rows.into_iter().map(annotations::due_annotation).collect()
    }

    async fn annotation_sent(
        &self,
        id: i64,
        annotation_id: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(&annotations::for_sqlite(annotations::SENT))
            .bind(ts(now))
            .bind(annotation_id)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn request_approval(
        &self,
        a: &NewApproval,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        approvals::request(&self.writer, a, &ts(now), a.expires_at.unix_timestamp()).await
    }

    async fn approval(&self, id: i64) -> Result<Option<ApprovalRow>, StoreError> {
        reads::approval(&self.reader, id).await
    }

    async fn decide_approval(
        &self,
        incident_id: i64,
        approve: bool,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ApprovalRow>, StoreError> {
        approvals::decide(&self.writer, incident_id, approve, by, now).await
    }

    async fn close_approval(
        &self,
        id: i64,
        state: ApprovalState,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        approvals::close(&self.writer, id, state.as_str(), &ts(now)).await
    }

    async fn budget_uses(
        &self,
        responder: &str,
        target: &str,
        step: &str,
        since: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let key = budgets::Key {
            responder,
            target,
            step,
        };
        let mut conn = self.reader.acquire().await?;
        budgets::uses_since(&mut conn, &key, since).await
    }

    async fn list_incidents(
        &self,
        open_only: bool,
        limit: u32,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        reads::list_incidents(&self.reader, open_only, limit).await
    }

    async fn incident_detail(&self, id: i64) -> Result<Option<IncidentDetail>, StoreError> {
        reads::incident_detail(&self.reader, id).await
    }

    async fn incident_view(&self, id: i64) -> Result<Option<IncidentView>, StoreError> {
        reads::incident_view(&self.reader, id).await
    }

    async fn gauges(&self, now: OffsetDateTime) -> Result<StoreGauges, StoreError> {
        reads::gauges(&self.reader, now).await
    }
}
