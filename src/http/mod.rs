//! The HTTP server: routes, layers (trace, body limit, timeout), health and the incident API.
//!
//! Endpoints:
//! - `POST /webhook/alertmanager`: Alertmanager v4 webhooks (see [`crate::sources`]).
//! - `POST /webhook/pagerduty`: PagerDuty Webhooks V3, signed with `PAGERDUTY_WEBHOOK_SECRET`
//!   (see [`crate::sources::pagerduty`]).
//! - `GET /healthz`: the process is up.
//! - `GET /readyz`: the store answers and takes alerts; 503 with a JSON `reason` otherwise
//!   (shutting down, database full or read-only, ...).
//! - `GET /metrics`: Prometheus text format; unauthenticated like `/healthz` (see
//!   [`crate::metrics`]: counts only, no secrets or alert text).
//! - `GET /api/incidents[?open=true&limit=N]`: incidents, newest first.
//! - `GET /api/incidents/{id}`: one incident with alerts, runs, steps, decisions, messages.
//! - `POST /api/incidents/{id}/approvals`: approve or deny the step waiting for a human
//!   (`{"decision": "approve"|"deny", "by": "name"}`, admin token).
//! - `GET /api/audit[?limit=N]`: who used the Slack command or buttons, allowed or refused.
//! - `POST /slack/commands`: the slash command, signed with `SLACK_SIGNING_SECRET` (see
//!   [`crate::chatops`]).
//! - `POST /slack/interactions`: Approve / Deny button clicks, signed the same way.
//!
//! - `GET /`: the incident page, open and recent incidents (HTML, see [`page`]).
//! - `GET /incidents/{id}`: one incident's timeline (HTML).
//!
//! With a webhook token configured, `/api/*`, `/` and `/incidents/*` require the same bearer
//! token. With users in the web configuration file (`RESPONDER_WEB_CONFIG`, see
//! [`web_config`]), they and `POST /webhook/alertmanager` also take those users' Basic auth,
//! and ask a browser for it (see [`Access`]); with `tls_server_config`, everything is HTTPS. Routes that read a body check what the headers show (token, signature headers,
//! declared size) before reading it, and all bodies together stay within a budget (see
//! [`Gate`]).

mod api;
mod auth;
mod basic_auth;
mod credential;
mod error;
mod gate;
mod ingest;
pub mod page;
mod reload;
mod serve;
pub mod web_config;

pub use auth::check_bearer;
pub use basic_auth::{Access, Users};
pub use credential::{Credential, SignedHeaders};
pub use error::ApiError;
pub use gate::{BodyBudget, Gate};
pub use ingest::{read_body, unread, IngestError};
pub use reload::{Reloader, TlsHandle};
pub use serve::serve;
pub use web_config::{WebConfig, WebConfigError};

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use secrecy::SecretString;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::metrics::Metrics;
use crate::responders::Responder;
use crate::store::{IntakeHealth, Store};

/// What the non-source handlers need.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Who may read `/api/*` and the page: the webhook token, the web config's users.
    pub access: Access,
    /// Bearer token for approval decisions; without it nobody can approve over the API.
    pub admin_token: Option<Arc<SecretString>>,
    /// Notified after a decision so the waiting run looks at once.
    pub approvals: Arc<tokio::sync::Notify>,
    /// Counters and histograms for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Whether the intake takes alerts, for `/readyz`.
    pub health: IntakeHealth,
    /// Bound on reading a request and answering it (408 after it).
    pub request_timeout: Duration,
    /// The body limit and the bytes all bodies may hold at once (approvals carry a body).
    pub budget: BodyBudget,
    /// The responders, for their schedules (`GET /api/schedules`).
    pub responders: Arc<[Arc<Responder>]>,
}

/// Builds the full router: `webhooks` (the sources' and Slack's routes, composed by the
/// application) with the API, the page, health and metrics, under one set of layers.
pub fn router(webhooks: Router, api: ApiState) -> Router {
    let body_limit = api.budget.limit();
    let request_timeout = api.request_timeout;
    Router::new()
        .merge(webhooks)
        .merge(api::routes(api.clone()))
        .merge(page::routes(api.clone()))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz).with_state(api.clone()))
        .route("/metrics", get(metrics).with_state(api))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(TraceLayer::new_for_http())
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Ready means webhooks would be accepted now; otherwise 503 and a `reason` a person can act on.
async fn readyz(State(state): State<ApiState>) -> (StatusCode, Json<serde_json::Value>) {
    let unavailable = match state.health.unavailable() {
        Some(reason) => Some(reason),
        None => state
            .store
            .ping()
            .await
            .err()
            .map(|e| format!("the store does not answer: {}", e.reason())),
    };
    match unavailable {
        None => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready" })),
        ),
        Some(reason) => {
            tracing::warn!(reason, "Not ready.");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "unavailable", "reason": reason })),
            )
        }
    }
}

/// Counters, then the store's gauges; a store that cannot answer leaves the gauges out (and
/// `/readyz` says why) rather than failing the scrape and hiding the counters.
async fn metrics(State(state): State<ApiState>) -> impl axum::response::IntoResponse {
    let gauges = state
        .store
        .gauges(time::OffsetDateTime::now_utc())
        .await
        .inspect_err(
            |e| tracing::warn!(error.message = %e, "Metrics scraped without the store's gauges."),
        )
        .ok();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(gauges.as_ref()),
    )
}
