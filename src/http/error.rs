//! The one error response of the HTTP API: a status code and a one-line JSON reason.
//!
//! Client errors say what was wrong; server errors never carry internals (they are logged).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::IngestError;
use crate::store::StoreError;

/// What a browser is asked for when users are configured: it then shows a login dialog.
const BASIC_CHALLENGE: &str = "Basic realm=\"alert-responder\"";

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// 401 with a Basic challenge: users are configured (web config file) and none logged in.
    #[error("log in: missing or invalid credentials")]
    LoginRequired,
    /// 401 for a request that must be signed (Slack) and is not, or not validly.
    #[error("{0}")]
    Unsigned(String),
    /// 400 with a one-line reason.
    #[error("{0}")]
    BadRequest(String),
    /// 413.
    #[error("{0}")]
    TooLarge(String),
    /// 403: authenticated as nobody allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409: the thing to act on is not in a state that allows it.
    #[error("{0}")]
    Conflict(String),
    /// 503: this endpoint needs a setting the service was not given; senders retry 5xx.
    #[error("{0}")]
    NotConfigured(String),
    /// 503: the store cannot take or serve data right now; Alertmanager retries 5xx.
    #[error("store unavailable: {}", .0.reason())]
    Unavailable(#[source] StoreError),
    /// 503: the service is shutting down and takes nothing new; senders retry 5xx.
    #[error("shutting down: retry later")]
    ShuttingDown,
    /// 503 with `Retry-After`: the service holds as many request bodies as it may.
    #[error("{0}")]
    Busy(String),
}

impl From<IngestError> for ApiError {
    fn from(err: IngestError) -> Self {
        match err {
            IngestError::Unauthorized => ApiError::Unauthorized,
            IngestError::Malformed(reason) => ApiError::BadRequest(reason),
            e @ IngestError::TooLarge(_) => ApiError::TooLarge(e.to_string()),
            e @ IngestError::BadSignature(_) => ApiError::Forbidden(e.to_string()),
            e @ IngestError::Unsigned(_) => ApiError::Unsigned(e.to_string()),
            e @ IngestError::NotConfigured(_) => ApiError::NotConfigured(e.to_string()),
            IngestError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::IntakeClosed => ApiError::ShuttingDown,
            e @ StoreError::Backlog { .. } => ApiError::Busy(e.to_string()),
            other => ApiError::Unavailable(other),
        }
    }
}

impl ApiError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized | ApiError::LoginRequired | ApiError::Unsigned(_) => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::NotConfigured(_)
            | ApiError::Unavailable(_)
            | ApiError::ShuttingDown
            | ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let challenge = match self {
            ApiError::Unauthorized => Some("Bearer"),
            ApiError::LoginRequired => Some(BASIC_CHALLENGE),
            _ => None,
        };
        let busy = matches!(self, ApiError::Busy(_));
        if let ApiError::Unavailable(cause) = &self {
            tracing::error!(error.message = %cause, "Answering 503: the store is unavailable.");
        }
        let mut response = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if let Some(challenge) = challenge {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(challenge),
            );
        }
        if busy {
            // Bodies are answered within the request timeout, so a second is a fair wait.
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}
