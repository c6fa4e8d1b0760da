//! `GET /api/incidents`, `GET /api/incidents/{id}` and `GET /api/audit`: the record, as JSON.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, ApiState};
use crate::sources::check_bearer;
use crate::store::{ApprovalRow, AuditRow, IncidentDetail, IncidentRow};

pub(super) fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/api/incidents", get(list))
        .route("/api/incidents/{id}", get(detail))
        .route("/api/incidents/{id}/approvals", post(decide))
        .route("/api/audit", get(audit))
        .with_state(state)
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
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<IncidentRow>>, ApiError> {
    check_bearer(&headers, state.token.as_deref())?;
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
    Path(id): Path<i64>,
) -> Result<Json<IncidentDetail>, ApiError> {
    check_bearer(&headers, state.token.as_deref())?;
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

/// Approves or denies the incident's oldest pending approval.
async fn decide(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Result<Json<Decision>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ApprovalRow>, ApiError> {
    let Some(admin) = state.admin_token.as_deref() else {
        return Err(ApiError::Forbidden(
            "approvals over the API need RESPONDER_ADMIN_TOKEN to be set on the responder"
                .to_owned(),
        ));
    };
    check_bearer(&headers, Some(admin))?;
    let Json(decision) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
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
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<AuditRow>>, ApiError> {
    check_bearer(&headers, state.token.as_deref())?;
    Ok(Json(state.store.audit(q.limit.min(1000)).await?))
}
