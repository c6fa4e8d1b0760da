//! `GET /api/incidents`, `GET /api/incidents/{id}` and `GET /api/audit`: the record, as JSON;
//! `POST /api/incidents/{id}/approvals`: a decision; `GET /api/schedules`: the scheduled
//! responders and their next slots.
//!
//! The token is checked before anything else is looked at: an id or a query string that does
//! not parse is refused only after it, and the refusal does not repeat the input.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{unread, ApiError, ApiState, Credential, Gate};
use crate::responders::schedule::{overview, ScheduleView};
use crate::store::{ApprovalRow, ApprovalState, AuditRow, IncidentDetail, IncidentRow};

pub(super) fn routes(state: ApiState) -> Router {
    let admin = Gate::new(Credential::Admin(state.admin_token.clone()), &state.budget);
    Router::new()
        .route("/api/incidents", get(list))
        .route("/api/incidents/{id}", get(detail))
        .route("/api/incidents/{id}/approvals", admin.guard(post(decide)))
        .route("/api/audit", get(audit))
        .route("/api/schedules", get(schedules))
        .with_state(state)
}

/// `GET /api/schedules`: the scheduled responders, each with its next five slots.
async fn schedules(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<Vec<ScheduleView>>, ApiError> {
    state.access.check(&headers).await?;
    let now = time::OffsetDateTime::now_utc();
    Ok(Json(overview(
        state.responders.iter().map(|r| &**r),
        now,
        5,
    )))
}

/// An incident id from the path, refused without echoing what was sent.
pub(super) fn incident_id(path: Result<Path<i64>, PathRejection>) -> Result<i64, ApiError> {
    path.map(|Path(id)| id)
        .map_err(|_| ApiError::BadRequest("an incident id is a whole number".to_owned()))
}

/// A query string, refused without echoing what was sent.
fn query<T>(query: Result<Query<T>, QueryRejection>, expected: &str) -> Result<T, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|_| ApiError::BadRequest(format!("unusable query string; expected {expected}")))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(default)]
    open: bool,
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    100
}

async fn list(
    State(state): State<ApiState>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<IncidentRow>>, ApiError> {
    state.access.check(&headers).await?;
    let q = query(q, "open=true|false and limit=<number>")?;
    Ok(Json(
        state
            .store
            .list_incidents(q.open, q.limit.min(1000))
            .await?,
    ))
}

/// An incident's record and its watches: whether the fixes it made held, and whose fix it
/// is the recurrence of.
#[derive(Debug, Serialize)]
struct DetailWithWatches {
    #[serde(flatten)]
    detail: IncidentDetail,
    watches: Vec<crate::store::Watch>,
}

async fn detail(
    State(state): State<ApiState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<DetailWithWatches>, ApiError> {
    state.access.check(&headers).await?;
    let id = incident_id(id)?;
    let detail = (state.store.incident_detail(id).await?)
        .ok_or_else(|| ApiError::NotFound(format!("no incident {id}")))?;
    let watches = state.store.incident_watches(id).await?;
    Ok(Json(DetailWithWatches { detail, watches }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Decision {
    decision: String,
    #[serde(default)]
    by: Option<String>,
    /// The step to decide, among the incident's pending approvals: required to approve an
    /// option of a choice (`choice:` steps), since which one is for a person to say.
    #[serde(default)]
    step: Option<String>,
}

/// Approves or denies the incident's oldest pending approval; the [`Gate`] has checked the
/// admin token before the body was read.
async fn decide(
    State(state): State<ApiState>,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<Decision>, JsonRejection>,
) -> Result<Json<ApprovalRow>, ApiError> {
    let id = incident_id(id)?;
    let Json(decision) = body.map_err(|e| match e {
        JsonRejection::BytesRejection(r) => ApiError::from(unread(&r, state.budget.limit())),
        other => ApiError::BadRequest(other.body_text()),
    })?;
    let approve = match decision.decision.as_str() {
        "approve" => true,
        "deny" => false,
        other => {
            return Err(ApiError::BadRequest(format!(
                "decision {other:?}: use \"approve\" or \"deny\""
            )))
        }
    };
    let by = decision
        .by
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| "api".to_owned());
    let now = time::OffsetDateTime::now_utc();
    let decided = match decision.step.as_deref() {
        None => {
            state
                .store
                .decide_approval(id, approve, by.trim(), now)
                .await?
        }
        Some(step) => decide_step(&state, id, step, approve, by.trim(), now).await?,
    };
    let decided = decided.ok_or_else(|| {
        ApiError::Conflict(format!(
            "incident {id} has no pending approval{} (it may have been decided, expired, or cancelled by a resolve; an option of a choice is refused once another was chosen, and is approved only by naming its step)",
            decision.step.as_deref().map(|s| format!(" for step {s:?}")).unwrap_or_default()
        ))
    })?;
    tracing::info!(incident = id, approval = decided.id, state = %decided.state, by = %by, "Approval decided.");
    state.approvals.notify_waiters();
    Ok(Json(decided))
}

/// Decides the incident's newest approval of `step`, if it is pending. An option of a choice
/// whose other option was approved is refused, and said so (the store refuses it too, even
/// when both are decided at the same moment).
async fn decide_step(
    state: &ApiState,
    incident: i64,
    step: &str,
    approve: bool,
    by: &str,
    now: time::OffsetDateTime,
) -> Result<Option<ApprovalRow>, ApiError> {
    let chosen_instead = |approvals: &[ApprovalRow], row: &ApprovalRow| {
        approvals
            .iter()
            .find(|a| {
                a.id != row.id
                    && a.run_id == row.run_id
                    && a.choice.is_some()
                    && a.choice == row.choice
                    && a.state == ApprovalState::Approved
            })
            .map(|a| {
                ApiError::Conflict(format!(
                    "{step} is refused: another option of choice {} was chosen ({}, approved by {})",
                    a.choice.as_deref().unwrap_or_default(),
                    a.step_id,
                    a.decided_by.as_deref().unwrap_or("someone")
                ))
            })
    };
    let Some(detail) = state.store.incident_detail(incident).await? else {
        return Ok(None);
    };
    let Some(row) = detail.approvals.iter().rev().find(|a| a.step_id == step) else {
        return Ok(None);
    };
    if approve {
        if let Some(refusal) = chosen_instead(&detail.approvals, row) {
            return Err(refusal);
        }
    }
    if row.state != ApprovalState::Pending {
        return Ok(None);
    }
    let decided = state
        .store
        .decide_approval_by_id(row.id, approve, by, now)
        .await?;
    if decided.is_none() && approve {
        // Lost a race against another option: say which.
        if let Some(detail) = state.store.incident_detail(incident).await? {
            if let Some(refusal) = chosen_instead(&detail.approvals, row) {
                return Err(refusal);
            }
        }
    }
    Ok(decided)
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    #[serde(default = "default_limit")]
    limit: u32,
}

/// Who asked for what from Slack, allowed or refused, newest first.
async fn audit(
    State(state): State<ApiState>,
    headers: HeaderMap,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Vec<AuditRow>>, ApiError> {
    state.access.check(&headers).await?;
    let q = query(q, "limit=<number>")?;
    Ok(Json(state.store.audit(q.limit.min(1000)).await?))
}
