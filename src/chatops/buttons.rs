//! `POST /slack/interactions`: the Approve / Deny buttons of approval requests.
//!
//! A click is verified like a command, authorized against SLACK_APPROVE_ALLOWED, and decides
//! the approval its button carries, once: a second click, or a click after expiry or a
//! resolve, changes nothing; the clicker is told why (ephemeral, via `response_url`) and the
//! message is edited to show the final state. The dispatcher's waiting run edits the message
//! for a decision it sees.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{audit, follow_up, form, loggable, verified, who, SlackState};
use crate::http::ApiError;
use crate::notify::approval::{APPROVE_ACTION, DENY_ACTION};
use crate::store::AuditOutcome;
use crate::store::{ApprovalState, NewAudit};

#[derive(Deserialize)]
struct PayloadForm {
    payload: String,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    user: User,
    #[serde(default)]
    actions: Vec<Action>,
    #[serde(default)]
    response_url: String,
}

#[derive(Default, Deserialize)]
struct User {
    #[serde(default)]
    id: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct Action {
    action_id: String,
    #[serde(default)]
    value: String,
}

/// `POST /slack/interactions`: 200 at once; the clicker hears back through `response_url`.
pub(super) async fn interaction(
    State(state): State<SlackState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = verified(&state, &headers, body)?;
    let PayloadForm { payload } = form(&body)?;
    let payload: Payload = serde_json::from_str(&payload)
        .map_err(|e| ApiError::BadRequest(format!("payload is not an interaction: {e}")))?;
    if payload.kind != "block_actions" {
        tracing::info!(kind = %loggable(&payload.kind), "Slack interaction of another kind ignored.");
        return Ok(StatusCode::OK);
    }
    for action in &payload.actions {
        // A choice's Approve buttons are `approval_approve_<id>` (ids are unique per block);
        // the value, not the action id, names the approval either way.
        let approve = match action.action_id.as_str() {
            APPROVE_ACTION => true,
            DENY_ACTION => false,
            id if id
                .strip_prefix(APPROVE_ACTION)
                .and_then(|rest| rest.strip_prefix('_'))
                .is_some_and(|n| n.parse::<i64>().is_ok()) =>
            {
                true
            }
            _ => continue,
        };
        let (outcome, detail, reply) = click(&state, &payload, action, approve).await;
        audit(
            &state,
            NewAudit {
                user_id: payload.user.id.clone(),
                user_name: user_name(&payload.user).to_owned(),
                command: "button".to_owned(),
                args: format!("{} {}", action.action_id, action.value),
                outcome,
                detail,
            },
        )
        .await;
        follow_up(&state, &payload.response_url, reply);
    }
    Ok(StatusCode::OK)
}

fn user_name(user: &User) -> &str {
    if user.username.is_empty() {
        &user.name
    } else {
        &user.username
    }
}

/// Decides one click: (audit outcome, audit detail, the clicker's ephemeral answer).
async fn click(
    state: &SlackState,
    payload: &Payload,
    action: &Action,
    approve: bool,
) -> (AuditOutcome, String, String) {
    let user = &payload.user;
    if let Err(why) = state
        .access
        .check(
            &user.id,
            &state.settings.approve_allowed,
            "SLACK_APPROVE_ALLOWED",
        )
        .await
    {
        let reply =
            format!(":no_entry: Not allowed to decide approvals: {why}. The attempt is recorded.");
        return (AuditOutcome::Refused, why, reply);
    }
    let Ok(id) = action.value.parse::<i64>() else {
        return (
            AuditOutcome::Failed,
            format!("button value {:?} is not an approval id", action.value),
            ":warning: This button is not one of mine.".to_owned(),
        );
    };
    let by = who(user_name(user), &user.id);
    let now = OffsetDateTime::now_utc();
    match state
        .store
        .decide_approval_by_id(id, approve, &by, now)
        .await
    {
        Ok(Some(row)) => {
            state.approvals.notify_waiters();
            tracing::info!(approval = id, state = %row.state, by = %loggable(&by), "Approval decided in Slack.");
            let verb = if approve { "approved" } else { "denied" };
            (
                AuditOutcome::Allowed,
                format!("{verb} approval {id}"),
                format!("You {verb} *{}*: {}", row.step_id, row.plan),
            )
        }
        Ok(None) => settled_already(state, id, now).await,
        Err(e) => (
            AuditOutcome::Failed,
            e.to_string(),
            ":warning: The record is unavailable; nothing was decided. Try again.".to_owned(),
        ),
    }
}

/// A click on an approval that is no longer pending: say why, and show the final state.
async fn settled_already(
    state: &SlackState,
    id: i64,
    now: OffsetDateTime,
) -> (AuditOutcome, String, String) {
    let context = match state.store.approval_context(id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return (
                AuditOutcome::Failed,
                format!("no approval {id}"),
                ":warning: This approval no longer exists.".to_owned(),
            )
        }
        Err(e) => {
            return (
                AuditOutcome::Failed,
                e.to_string(),
                ":warning: The record is unavailable; try again.".to_owned(),
            )
        }
    };
    let mut row = context.row;
    let open = row.expires_at_unix > now.unix_timestamp();
    if row.state == ApprovalState::Pending && row.choice.is_some() && open {
        // Refused by the store while unexpired: another option of its choice was approved
        // (the run closes this one as `refused` at its next look).
        row.state = ApprovalState::Refused;
    } else if row.state == ApprovalState::Pending {
        // Past its expiry, not yet closed by the waiting run: it can no longer be decided.
        row.state = ApprovalState::Expired;
        row.decided_at = Some(crate::store::format_time(
            OffsetDateTime::from_unix_timestamp(row.expires_at_unix).unwrap_or(now),
        ));
    }
    let why = match row.state {
        ApprovalState::Approved | ApprovalState::Denied => format!(
            "already {} by {}",
            row.state,
            row.decided_by.as_deref().unwrap_or("someone")
        ),
        ApprovalState::Expired => "expired".to_owned(),
        ApprovalState::Cancelled => "cancelled (the alert resolved)".to_owned(),
        ApprovalState::Preempted => "preempted (the container died)".to_owned(),
        ApprovalState::Refused => {
            "refused: another option was chosen (or the choice denied)".to_owned()
        }
        // Only a refusal by the store while unexpired and not of a choice: a race the
        // reread did not see settle.
        ApprovalState::Pending => "pending".to_owned(),
    };
    if let Some(message) = context.message_id {
        state
            .reporter
            .approval_settled(context.incident_id, message, &row)
            .await;
    }
    (
        AuditOutcome::Refused,
        format!("approval {id}: {why}"),
        format!(
            ":information_source: Nothing changed: *{}* was {why}.",
            row.step_id
        ),
    )
}
