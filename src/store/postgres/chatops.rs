//! [`ChatStore`] for PostgreSQL: audit, mode overrides, approvals by id, rich outbox messages.

use async_trait::async_trait;
use sqlx::Row;
use time::OffsetDateTime;

use super::{approvals, outbox, reads, ts, PostgresStore};
use crate::store::views::named;
use crate::store::{
    ApprovalContext, ApprovalRow, AuditOutcome, AuditRow, ChatStore, ModeOverrideRow, NewAudit,
    NewMessage, StoreError,
};

#[async_trait]
impl ChatStore for PostgresStore {
    async fn record_audit(&self, e: &NewAudit, now: OffsetDateTime) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO audit (at, user_id, user_name, command, args, outcome, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(ts(now))
        .bind(&e.user_id)
        .bind(&e.user_name)
        .bind(&e.command)
        .bind(&e.args)
        .bind(e.outcome.as_str())
        .bind(&e.detail)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn audit(&self, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit ORDER BY id DESC LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
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
            "INSERT INTO mode_overrides (scope, mode, set_by, set_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (scope) DO UPDATE SET mode = EXCLUDED.mode, set_by = EXCLUDED.set_by,
                                               set_at = EXCLUDED.set_at",
        )
        .bind(scope.unwrap_or(""))
        .bind(mode)
        .bind(by)
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn mode_overrides(&self) -> Result<Vec<ModeOverrideRow>, StoreError> {
        // Byte order, as SQLite sorts, whatever the database's collation.
        let rows = sqlx::query("SELECT * FROM mode_overrides ORDER BY scope COLLATE \"C\"")
            .fetch_all(&self.pool)
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
        outbox::enqueue(&self.pool, m, blocks, edit_of, now).await
    }

    async fn set_approval_message(&self, approval: i64, message: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE approvals SET message_id = $1 WHERE id = $2")
            .bind(message)
            .bind(approval)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn approval_context(&self, id: i64) -> Result<Option<ApprovalContext>, StoreError> {
        let row = sqlx::query(
            "SELECT a.*, r.responder FROM approvals a JOIN runs r ON r.id = a.run_id WHERE a.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
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
        approvals::decide_by_id(&self.pool, id, approve, by, now).await
    }

    async fn incident_by_fingerprint(&self, fingerprint: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT MAX(id) FROM incidents WHERE fingerprint = $1")
                .bind(fingerprint)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
