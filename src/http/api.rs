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
use serde::Deserialize;

use super::{ApiError, ApiState, Gate};
use crate::responders::schedule::{overview, ScheduleView};
use crate::sources::{unread, Credential};
use crate::store::{ApprovalRow, AuditRow, IncidentDetail, IncidentRow};

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
        state.catalog.responders.values().map(|r| &**r),
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

async fn detail(
    State(state): State<ApiState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<IncidentDetail>, ApiError> {
    state.access.check(&headers).await?;
    let id = incident_id(id)?;
    state
        .store
        .incident_detail(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no incident {id}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Decision {
    decision: String,
    #[serde(default)]
    by: Option<String>,
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
    let decided = state
        .store
        .decide_approval(id, approve, by.trim(), time::OffsetDateTime::now_utc())
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "incident {id} has no pending approval (it may have been decided, expired, or cancelled by a resolve)"
            ))
        })?;
    tracing::info!(incident = id, approval = decided.id, state = %decided.state, by = %by, "Approval decided.");
    state.approvals.notify_waiters();
    Ok(Json(decided))
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
