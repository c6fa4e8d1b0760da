//! The PostgreSQL store, for several replicas sharing one database.
//!
//! Same tables, same columns and the same timestamp text as SQLite, so every answer reads the
//! same whichever backend wrote it. What differs is what several processes need: the checks
//! that SQLite's single writer makes atomic for free (recording alerts, claiming a run,
//! spending a budget) are serialized here with transaction-scoped advisory locks, runs are held
//! under leases that another replica reaps when they lapse, and singleton roles are leased rows
//! of `leaders`. What an acknowledgement, an action or a message depends on commits durably
//! (PostgreSQL's default `synchronous_commit`); bookkeeping the journal rebuilds (recording, a
//! run's claim, a read-only step's start) commits without waiting for the flush (`RELAXED`).

mod approvals;
mod chatops;
mod connection;
mod history;
mod journal;
mod outbox;
mod reads;
mod record;
mod recover;
mod runs;
mod schedules;
mod silences;
mod spend;
mod wakeups;
mod watches;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use time::OffsetDateTime;

use super::*;

/// PostgreSQL-backed [`Store`].
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// This process's name as the holder of runs and roles (see [`Store::owner`]).
    owner: Arc<str>,
    /// How long a run or a role is held without renewal.
    lease: Duration,
}

use super::format_time as ts;

/// Keys of the transaction-scoped advisory locks (`pg_advisory_xact_lock(bigint)`) that
/// serialize the store's read-check-write sections across replicas. Released at commit or
/// rollback, so a replica that dies mid-transaction never leaves one held.
mod lock {
    /// Recording journal entries: per-fingerprint order, folding and joining stay as simple
    /// as with one writer.
    pub(super) const RECORDER: i64 = 0x6172_7265_636f_7264;
    /// Claiming runs: the target check and the running-run cap.
    pub(super) const RUNS: i64 = 0x6172_7275_6e73;
    /// Spending budgets and the cluster-wide action rate.
    pub(super) const SPEND: i64 = 0x61_7273_7065_6e64;
    /// The class of PagerDuty enqueue locks (`pg_advisory_xact_lock(int, int)`, a key space
    /// apart from the bigint one), the second key being the incident.
    pub(super) const PAGERDUTY: i32 = 0x6172_7064;
}

/// Who holds the runs a recording creates or a claim takes, and until when (unix seconds).
#[derive(Debug, Clone, Copy)]
struct Holder<'a> {
    owner: &'a str,
    until: i64,
}

impl PostgresStore {
    /// This process holding what it records or claims, until a lease from `now`.
    fn holder(&self, now: OffsetDateTime) -> Holder<'_> {
        Holder {
            owner: &self.owner,
            until: now.unix_timestamp() + lease_secs(self.lease),
        }
    }
}

fn lease_secs(lease: Duration) -> i64 {
    i64::try_from(lease.as_secs()).unwrap_or(60)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Takes the advisory lock `key` until the end of the transaction on `conn`, and lets that
/// transaction commit without waiting for its WAL to reach disk (bookkeeping only; see
/// [`RELAXED`]).
async fn relaxed_xact_lock(conn: &mut sqlx::PgConnection, key: i64) -> Result<(), StoreError> {
    sqlx::query(&format!("SELECT pg_advisory_xact_lock($1), {RELAXED}"))
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// Selected first in a transaction whose effects the journal can rebuild (recording, claiming
/// a run): it commits without waiting for the WAL flush. A crash of the PostgreSQL server may
/// lose such a commit, never a later one: the WAL is one sequence and any ordinary commit
/// (an intake, a spent action, an enqueued message) flushes everything before it. So what is
/// lost is only a tail of bookkeeping that no action or message depends on yet: journal
/// entries go back to unprocessed and are recorded again, a claimed run back to pending.
/// A crash of a replica loses nothing: the server has the commit.
const RELAXED: &str = "set_config('synchronous_commit', 'off', true)";

/// Takes the advisory lock `key` until the end of the transaction on `conn`.
async fn xact_lock(conn: &mut sqlx::PgConnection, key: i64) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn owner(&self) -> &str {
        &self.owner
    }

    fn journal_writers(&self) -> usize {
        // Up to half the pool: the dispatcher, the outbox and the API keep the rest.
        let connections = self.pool.options().get_max_connections() as usize;
        (connections / 2).clamp(1, 4)
    }

    async fn claim_run(
        &self,
        run_id: i64,
        max_running: u32,
        now: OffsetDateTime,
    ) -> Result<Claim, StoreError> {
        runs::claim(&self.pool, run_id, max_running, self.holder(now), &ts(now)).await
    }

    async fn renew_leases(&self, now: OffsetDateTime) -> Result<LeaseNews, StoreError> {
        runs::renew(&self.pool, self.holder(now)).await
    }

    async fn spend_action(
        &self,
        spend: &ActionSpend<'_>,
        now: OffsetDateTime,
    ) -> Result<Spend, StoreError> {
        spend::spend(&self.pool, spend, &self.owner, now).await
    }

    async fn lead(&self, role: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        spend::lead(&self.pool, role, self.holder(now), now.unix_timestamp()).await
    }

    async fn resign(&self, role: &str) -> Result<(), StoreError> {
        spend::resign(&self.pool, role, &self.owner).await
    }

    async fn wakeups(
        &self,
    ) -> Result<Option<futures::stream::BoxStream<'static, Wakeup>>, StoreError> {
        wakeups::listen(&self.pool).await.map(Some)
    }

    async fn append_ranked(
        &self,
        alerts: &[Alert],
        ranks: &[Rank],
    ) -> Result<Vec<bool>, StoreError> {
        journal::append(&self.pool, alerts, ranks, &ts(OffsetDateTime::now_utc())).await
    }

    async fn pending_journal(&self, limit: u32) -> Result<Vec<JournalEntry>, StoreError> {
        journal::pending(&self.pool, limit).await
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
        record::record_alerts(&self.pool, batch, &ts(now), self.holder(now)).await
    }

    async fn previous_outputs(
        &self,
        responder: &str,
        target: &str,
        run_id: i64,
    ) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
        reads::previous_outputs(&self.pool, responder, target, run_id).await
    }

    async fn close_idle_incident(
        &self,
        incident_id: i64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        runs::close_idle_incident(&self.pool, incident_id, &ts(now)).await
    }

    async fn ask_preemption(&self, death: &TargetDeath<'_>) -> Result<Vec<i64>, StoreError> {
        Ok(
            sqlx::query_scalar(crate::store::record::statements::ASK_PREEMPTION)
                .bind(death.incident)
                .bind(death.target)
                .bind(death.died_unix)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn start_run(&self, run_id: i64, now: OffsetDateTime) -> Result<(), StoreError> {
        runs::start(&self.pool, run_id, &ts(now)).await
    }

    async fn step_started(&self, step: &NewStep, now: OffsetDateTime) -> Result<i64, StoreError> {
        runs::step_started(&self.pool, step, &ts(now)).await
    }

    async fn step_finished(
        &self,
        row: i64,
        end: &StepEnd,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        runs::step_finished(&self.pool, row, end, &ts(now)).await
    }

    async fn step_not_run(
        &self,
        step: &NewStep,
        end: &StepEnd,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        runs::step_not_run(&self.pool, step, end, &ts(now)).await
    }

    async fn finish_run(
        &self,
        run_id: i64,
        outcome: RunOutcome,
        summary: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        runs::finish(&self.pool, run_id, outcome, summary, &ts(now)).await
    }

    async fn record_decision(
        &self,
        d: &NewDecision,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        record::insert_decision(&mut *self.pool.acquire().await?, d, &ts(now)).await
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
        let key = spend::Key {
            responder,
            target,
            step,
        };
        spend::consume(&self.pool, &key, budget, run_id, now).await
    }

    async fn recover_runs(
        &self,
        scope: RecoverScope,
        now: OffsetDateTime,
    ) -> Result<Recovery, StoreError> {
        recover::recover_runs(&self.pool, scope, self.holder(now), now).await
    }

    async fn enqueue_message(
        &self,
        m: &NewMessage,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        outbox::enqueue(&self.pool, m, None, None, now).await
    }

    async fn due_messages(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        outbox::due_messages(&self.pool, now.unix_timestamp(), limit).await
    }

    async fn message_sent(
        &self,
        id: i64,
        channel: &str,
        ts_: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        outbox::sent(&self.pool, id, channel, ts_, &ts(now)).await
    }

    async fn claim_message(&self, id: i64, now: OffsetDateTime) -> Result<bool, StoreError> {
        let until = self.holder(now).until;
        outbox::claim(&self.pool, id, now.unix_timestamp(), until).await
    }

    async fn message_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        outbox::failed(&self.pool, id, error, retry_at).await
    }

    async fn enqueue_pagerduty(
        &self,
        m: &PagerDutyMessage,
        now: OffsetDateTime,
    ) -> Result<Option<i64>, StoreError> {
        outbox::enqueue_pagerduty(&self.pool, m, &ts(now)).await
    }

    async fn due_pagerduty(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<PagerDutyMessage>, StoreError> {
        outbox::due_pagerduty(&self.pool, now.unix_timestamp(), limit).await
    }

    async fn pagerduty_sent(&self, id: i64, now: OffsetDateTime) -> Result<(), StoreError> {
        outbox::pagerduty_sent(&self.pool, id, &ts(now)).await
    }

    async fn enqueue_file(
        &self,
        m: &NewMessage,
        file: &[u8],
        now: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(files::ENQUEUE)
            .bind(m.incident_id)
            .bind(&m.text)
            .bind(if m.deliver { "pending" } else { "disabled" })
            .bind(ts(now))
            .bind(file)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn latest_chart(&self, incident: i64) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        Ok(sqlx::query_as(files::LATEST)
            .bind(incident)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn enqueue_annotation(
        &self,
        a: &NewAnnotation,
        now: OffsetDateTime,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(annotations::ENQUEUE)
            .bind(a.incident_id)
            .bind(a.run_id)
            .bind(a.kind.as_str())
            .bind(to_json(&a.body)?)
            .bind(ts(now))
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn due_annotations(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<DueAnnotation>, StoreError> {
        let rows: Vec<annotations::DueRow> = sqlx::query_as(annotations::DUE)
            .bind(now.unix_timestamp())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(annotations::due_annotation).collect()
    }

    async fn annotation_sent(
        &self,
        id: i64,
        annotation_id: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(annotations::SENT)
            .bind(ts(now))
            .bind(annotation_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn request_approval(
        &self,
        a: &NewApproval,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        approvals::request(&self.pool, a, &ts(now)).await
    }

    async fn approval(&self, id: i64) -> Result<Option<ApprovalRow>, StoreError> {
        reads::approval(&self.pool, id).await
    }

    async fn decide_approval(
        &self,
        incident_id: i64,
        approve: bool,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ApprovalRow>, StoreError> {
        approvals::decide(&self.pool, incident_id, approve, by, now).await
    }

    async fn close_approval(
        &self,
        id: i64,
        state: ApprovalState,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        approvals::close(&self.pool, id, state.as_str(), &ts(now)).await
    }

    async fn budget_uses(
        &self,
        responder: &str,
        target: &str,
        step: &str,
        since: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let key = spend::Key {
            responder,
            target,
            step,
        };
        spend::uses_since(&mut *self.pool.acquire().await?, &key, since).await
    }

    async fn list_incidents(
        &self,
        open_only: bool,
        limit: u32,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        reads::list_incidents(&self.pool, open_only, limit).await
    }

    async fn incident_detail(&self, id: i64) -> Result<Option<IncidentDetail>, StoreError> {
        reads::incident_detail(&self.pool, id).await
    }

    async fn incident_view(&self, id: i64) -> Result<Option<IncidentView>, StoreError> {
        reads::incident_view(&self.pool, id).await
    }

    async fn gauges(&self, now: OffsetDateTime) -> Result<StoreGauges, StoreError> {
        reads::gauges(&self.pool, now).await
    }
}
