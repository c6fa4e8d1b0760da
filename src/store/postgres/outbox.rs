//! The outbox on PostgreSQL: Slack messages and PagerDuty deliveries, each destination in
//! order per incident, so neither one's outage holds the other back.

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use time::OffsetDateTime;

use super::{lock, to_json, StoreError};
use crate::store::*;

/// Queues a Slack message (with Block Kit `blocks`, or editing `edit_of`, when given).
pub(super) async fn enqueue(
    pool: &PgPool,
    m: &NewMessage,
    blocks: Option<&str>,
    edit_of: Option<i64>,
    now: OffsetDateTime,
) -> Result<i64, StoreError> {
    let mut tx = pool.begin().await?;
    if superseding(m, edit_of) {
        // A claimed edit (its retry time moved past now) is left to finish; the claim and
        // this are single statements, so they never both take one message.
        sqlx::query(
            "UPDATE outbox SET state = 'superseded'
             WHERE incident_id = $1 AND destination = 'slack' AND kind = 'update'
               AND edit_of IS NULL AND state = 'pending' AND next_attempt_unix <= $2",
        )
        .bind(m.incident_id)
        .bind(now.unix_timestamp())
        .execute(&mut *tx)
        .await?;
    }
    let id = sqlx::query_scalar(
        "INSERT INTO outbox (incident_id, kind, text, state, created_at, blocks, edit_of, channel)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(m.incident_id)
    .bind(m.kind.as_str())
    .bind(&m.text)
    .bind(if m.deliver { "pending" } else { "disabled" })
    .bind(super::ts(now))
    .bind(blocks)
    .bind(edit_of)
    .bind(&m.channel)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

pub(super) async fn due_messages(
    pool: &PgPool,
    now: i64,
    limit: u32,
) -> Result<Vec<OutboxMessage>, StoreError> {
    // Only the oldest pending message of each incident is deliverable: a reply waits for its
    // parent and an edit for the replies before it, so the thread reads in order. New
    // incidents' parents go first: in a storm, people hear of a new incident before reply
    // number five of an old one.
    let rows = sqlx::query(
        "SELECT o.id, o.incident_id, o.kind, o.text, o.attempts, i.slack_channel, i.slack_ts,
                o.blocks, o.file, o.edit_of, e.channel AS edit_channel, e.ts AS edit_ts, o.channel AS post_to
         FROM outbox o JOIN incidents i ON i.id = o.incident_id
         LEFT JOIN outbox e ON e.id = o.edit_of
         WHERE o.id IN (SELECT MIN(id) FROM outbox WHERE state = 'pending' AND destination = 'slack'
                        GROUP BY incident_id)
           AND o.next_attempt_unix <= $1
         ORDER BY o.kind <> 'parent', o.id LIMIT $2",
    )
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(outbox_message).collect()
}

fn outbox_message(row: &PgRow) -> Result<OutboxMessage, StoreError> {
    let kind: String = row.try_get("kind")?;
    let channel: Option<String> = row.try_get("slack_channel")?;
    let ts: Option<String> = row.try_get("slack_ts")?;
    let edit = match row.try_get::<Option<i64>, _>("edit_of")? {
        Some(message_id) => {
            let channel: Option<String> = row.try_get("edit_channel")?;
            let ts: Option<String> = row.try_get("edit_ts")?;
            Some(EditTarget {
                message_id,
                posted: channel.zip(ts),
            })
        }
        None => None,
    };
    Ok(OutboxMessage {
        id: row.try_get("id")?,
        incident_id: row.try_get("incident_id")?,
        kind: match kind.as_str() {
            "parent" => MessageKind::Parent,
            "update" => MessageKind::Update,
            _ => MessageKind::Reply,
        },
        text: row.try_get("text")?,
        attempts: row.try_get("attempts")?,
        thread: channel.zip(ts),
        blocks: row.try_get("blocks")?,
        file: row.try_get("file")?,
        edit,
        post_to: row.try_get("post_to")?,
    })
}

/// Marks a message delivered; a parent's channel and ts become the incident's thread.
pub(super) async fn sent(
    pool: &PgPool,
    id: i64,
    channel: &str,
    ts: &str,
    now: &str,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE outbox SET state = 'sent', channel = $1, ts = $2, sent_at = $3,
                attempts = attempts + 1
         WHERE id = $4",
    )
    .bind(channel)
    .bind(ts)
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE incidents SET slack_channel = $1, slack_ts = $2
         WHERE id = (SELECT incident_id FROM outbox WHERE id = $3 AND kind = 'parent')",
    )
    .bind(channel)
    .bind(ts)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Records a failed attempt (either destination): retried at `retry_at`, or given up.
/// See [`Store::claim_message`]: the retry time doubles as the claim.
pub(super) async fn claim(
    pool: &PgPool,
    id: i64,
    now: i64,
    until: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE outbox SET next_attempt_unix = $1
         WHERE id = $2 AND state = 'pending' AND next_attempt_unix <= $3",
    )
    .bind(until)
    .bind(id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn failed(
    pool: &PgPool,
    id: i64,
    error: &str,
    retry_at: Option<OffsetDateTime>,
) -> Result<(), StoreError> {
    let (state, next) = match retry_at {
        Some(at) => ("pending", at.unix_timestamp()),
        None => ("failed", 0),
    };
    sqlx::query(
        "UPDATE outbox SET state = $1, next_attempt_unix = $2, last_error = $3,
                attempts = attempts + 1
         WHERE id = $4",
    )
    .bind(state)
    .bind(next)
    .bind(error)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Inserts the PagerDuty delivery unless the rules skip it: one trigger per incident, and a
/// resolve only once and only after a trigger. Two replicas queueing for one incident take
/// turns on an advisory lock, so each sees the other's row; the partial unique indexes make
/// "one trigger, one resolve" hold even without it.
pub(super) async fn enqueue_pagerduty(
    pool: &PgPool,
    m: &PagerDutyMessage,
    now: &str,
) -> Result<Option<i64>, StoreError> {
    let has = |kind: PagerDutyKind| {
        format!(
            "EXISTS (SELECT 1 FROM outbox WHERE incident_id = $1 AND destination = 'pagerduty' AND kind = '{}')",
            kind.as_str()
        )
    };
    let rule = match m.kind {
        PagerDutyKind::Note => "TRUE".to_owned(),
        PagerDutyKind::Trigger => format!("NOT {}", has(PagerDutyKind::Trigger)),
        PagerDutyKind::Resolve => format!(
            "{} AND NOT {}",
            has(PagerDutyKind::Trigger),
            has(PagerDutyKind::Resolve)
        ),
    };
    let sql = format!(
        "INSERT INTO outbox (incident_id, destination, kind, text, state, created_at)
         SELECT $1, 'pagerduty', $2, $3, 'pending', $4 WHERE {rule}
         ON CONFLICT DO NOTHING RETURNING id"
    );
    let mut tx = pool.begin().await?;
    // The int-pair key space is apart from the bigint one of the other locks; incident ids
    // beyond 2^31 share a key with another incident, which only makes them take turns.
    sqlx::query("SELECT pg_advisory_xact_lock($1, ($2 % 2147483647)::int4)")
        .bind(lock::PAGERDUTY)
        .bind(m.incident_id)
        .execute(&mut *tx)
        .await?;
    let id: Option<i64> = sqlx::query_scalar(&sql)
        .bind(m.incident_id)
        .bind(m.kind.as_str())
        .bind(to_json(&m.body)?)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

/// The oldest pending PagerDuty delivery of each incident, when due: a resolve never
/// overtakes its trigger.
pub(super) async fn due_pagerduty(
    pool: &PgPool,
    now: i64,
    limit: u32,
) -> Result<Vec<PagerDutyMessage>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, incident_id, kind, text, attempts FROM outbox
         WHERE id IN (SELECT MIN(id) FROM outbox WHERE state = 'pending' AND destination = 'pagerduty'
                      GROUP BY incident_id)
           AND next_attempt_unix <= $1
         ORDER BY id LIMIT $2",
    )
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("kind")?;
            let body: String = row.try_get("text")?;
            Ok(PagerDutyMessage {
                id: row.try_get("id")?,
                incident_id: row.try_get("incident_id")?,
                kind: PagerDutyKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("PagerDuty outbox kind {kind}")))?,
                body: serde_json::from_str(&body)
                    .map_err(|e| StoreError::Corrupt(format!("PagerDuty outbox body: {e}")))?,
                attempts: row.try_get("attempts")?,
            })
        })
        .collect()
}

/// Marks a delivery accepted by PagerDuty.
pub(super) async fn pagerduty_sent(pool: &PgPool, id: i64, now: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbox SET state = 'sent', sent_at = $1, attempts = attempts + 1 WHERE id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}
