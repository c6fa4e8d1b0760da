//! [`ChatStore`] for SQLite: audit, mode overrides, approvals by id, rich outbox messages.

use async_trait::async_trait;
use sqlx::Row;
use time::OffsetDateTime;

use super::{reads, ts, SqliteStore};
use crate::store::views::named;
use crate::store::{
    superseding, ApprovalContext, ApprovalRow, AuditOutcome, AuditRow, ChatStore, ModeOverrideRow,
    NewAudit, NewMessage, StoreError,
};

#[async_trait]
impl ChatStore for SqliteStore {
    async fn record_audit(&self, e: &NewAudit, now: OffsetDateTime) -> Result<i64, StoreError> {
        let done = sqlx::query(
            "INSERT INTO audit (at, user_id, user_name, command, args, outcome, detail)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(ts(now))
        .bind(&e.user_id)
        .bind(&e.user_name)
        .bind(&e.command)
        .bind(&e.args)
        .bind(e.outcome.as_str())
        .bind(&e.detail)
        .execute(&self.writer)
        .await?;
        Ok(done.last_insert_rowid())
    }

    async fn audit(&self, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit ORDER BY id DESC LIMIT ?")
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    user_id: r.try_get("user_id")?,
                    user_name: r.try_get("user_name")?,
                    command: r.try_get("command")?,
                    args: r.try_get("args")?,
                    outcome: named("outcome", r.try_get("outcome")?, AuditOutcome::parse)?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    async fn set_mode_override(
        &self,
        scope: Option<&str>,
        mode: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO mode_overrides (scope, mode, set_by, set_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (scope) DO UPDATE SET mode = excluded.mode, set_by = excluded.set_by,
                                               set_at = excluded.set_at",
        )
        .bind(scope.unwrap_or(""))
        .bind(mode)
        .bind(by)
        .bind(ts(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn mode_overrides(&self) -> Result<Vec<ModeOverrideRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM mode_overrides ORDER BY scope")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| {
                let scope: String = r.try_get("scope")?;
                Ok(ModeOverrideRow {
                    scope: Some(scope).filter(|s| !s.is_empty()),
                    mode: r.try_get("mode")?,
                    set_by: r.try_get("set_by")?,
                    set_at: r.try_get("set_at")?,
                })
            })
            .collect()
    }

    async fn enqueue_rich(
        &self,
        m: &NewMessage,
        blocks: Option<&str>,
        edit_of: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        let mut tx = self.writer.begin().await?;
        if superseding(m, edit_of) {
            // A claimed edit (its retry time moved past now) is left to finish; the claim
            // and this are single statements, so they never both take one message.
            sqlx::query(
                "UPDATE outbox SET state = 'superseded'
                 WHERE incident_id = ? AND destination = 'slack' AND kind = 'update'
                   AND edit_of IS NULL AND state = 'pending' AND next_attempt_unix <= ?",
            )
            .bind(m.incident_id)
            .bind(now.unix_timestamp())
            .execute(&mut *tx)
            .await?;
        }
        let done = sqlx::query(
            "INSERT INTO outbox (incident_id, kind, text, state, created_at, blocks, edit_of, channel)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(m.incident_id)
        .bind(m.kind.as_str())
        .bind(&m.text)
        .bind(if m.deliver { "pending" } else { "disabled" })
        .bind(ts(now))
        .bind(blocks)
        .bind(edit_of)
        .bind(&m.channel)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.last_insert_rowid())
    }

    async fn set_approval_message(&self, approval: i64, message: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE approvals SET message_id = ? WHERE id = ?")
            .bind(message)
            .bind(approval)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn approval_context(&self, id: i64) -> Result<Option<ApprovalContext>, StoreError> {
        let row = sqlx::query(
            "SELECT a.*, r.responder FROM approvals a JOIN runs r ON r.id = a.run_id WHERE a.id = ?",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(ApprovalContext {
                row: reads::approval_row(&r)?,
                incident_id: r.try_get("incident_id")?,
                responder: r.try_get("responder")?,
                message_id: r.try_get("message_id")?,
            })
        })
        .transpose()
    }

    async fn decide_approval_by_id(
        &self,
        id: i64,
        approve: bool,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ApprovalRow>, StoreError> {
        // One statement: two clicks (or two replicas) cannot both decide the same approval,
        // and an option of a choice is approved only while no other option of it is.
        let decided: Option<i64> = match sqlx::query_scalar(
            "UPDATE approvals SET state = ?1, decided_by = ?2, decided_at = ?3
             WHERE id = ?4 AND state = 'pending' AND expires_at_unix > ?5
               AND (?1 = 'denied' OR choice IS NULL OR NOT EXISTS (
                    SELECT 1 FROM approvals o WHERE o.run_id = approvals.run_id
                    AND o.choice = approvals.choice AND o.state = 'approved'))
             RETURNING id",
        )
        .bind(if approve { "approved" } else { "denied" })
        .bind(by)
        .bind(ts(now))
        .bind(id)
        .bind(now.unix_timestamp())
        .fetch_optional(&self.writer)
        .await
        {
            Ok(decided) => decided,
            // `approvals_one_choice`: another option of the choice won at the same moment.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => None,
            Err(e) => return Err(e.into()),
        };
        match decided {
            Some(id) => reads::approval(&self.writer, id).await,
            None => Ok(None),
        }
    }

    async fn incident_by_fingerprint(&self, fingerprint: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT MAX(id) FROM incidents WHERE fingerprint = ?")
                .bind(fingerprint)
                .fetch_one(&self.reader)
                .await?,
        )
    }
}
