//! `GET /api/incidents` and `GET /api/incidents/{id}`: the record, as JSON.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, ApiState};
use crate::sources::check_bearer;
use crate::store::{IncidentDetail, IncidentRow};

pub(super) fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/api/incidents", get(list))
        .route("/api/incidents/{id}", get(detail))
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
