//! Sources: verify the caller, parse the body into canonical alerts, persist, then ack.
//!
//! A source never runs an action; it answers 2xx only once its alerts are durable.
//! Endpoints: `POST /webhook/alertmanager`, `POST /webhook/pagerduty`, and Slack's
//! `POST /slack/commands` and `POST /slack/interactions` (see [`slack`]).

pub mod alertmanager;
pub mod docker_events;
pub mod pagerduty;
pub mod slack;

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::metrics::Metrics;
use crate::store::{Intake, StoreError};

/// Why an inbound webhook was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// No or wrong bearer token.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// The body is not what this source accepts.
    #[error("{0}")]
    Malformed(String),
    /// The body exceeds the configured limit.
    #[error("request body exceeds {0} bytes (RESPONDER_BODY_LIMIT); set max_alerts in Alertmanager or raise the limit")]
    TooLarge(usize),
    /// The request does not carry a valid signature (PagerDuty: `X-PagerDuty-Signature`).
    #[error("{0}")]
    BadSignature(&'static str),
    /// A Slack request without a valid v0 signature or with a stale timestamp (401).
    #[error("{0}")]
    Unsigned(&'static str),
    /// The endpoint needs a secret this service was not given.
    #[error("{0}")]
    NotConfigured(&'static str),
    /// The alerts could not be made durable.
    #[error("alerts could not be stored: {0}")]
    Store(#[from] StoreError),
}

/// What the source handlers need.
#[derive(Debug, Clone)]
pub struct SourceState {
    /// Where alerts become durable.
    pub intake: Intake,
    /// The bearer token webhooks must present, when configured.
    pub webhook_token: Option<Arc<SecretString>>,
    /// The PagerDuty Webhooks V3 signing secret; `None` turns `/webhook/pagerduty` off.
    pub pagerduty_secret: Option<Arc<SecretString>>,
    /// The body limit, for the error message.
    pub body_limit: usize,
    /// Webhook and duplicate counters.
    pub metrics: Arc<Metrics>,
    /// The Slack command and buttons.
    pub slack: slack::SlackState,
}

/// The webhook routes of every source.
pub fn routes(state: SourceState) -> Router {
    let slack = slack::routes(state.slack.clone());
    Router::new()
        .route("/webhook/alertmanager", post(alertmanager::receive))
        .route("/webhook/pagerduty", post(pagerduty::receive))
        .with_state(state)
        .merge(slack)
}

/// Checks `Authorization: Bearer <token>` in constant time when a token is configured.
pub fn check_bearer(headers: &HeaderMap, token: Option<&SecretString>) -> Result<(), IngestError> {
    let Some(token) = token else { return Ok(()) };
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Comparing digests keeps the time independent of where the texts differ and of the
    // token's length (a slice comparison returns early on a length mismatch).
    let presented = Sha256::digest(presented.as_bytes());
    let expected = Sha256::digest(token.expose_secret().as_bytes());
    if bool::from(presented.as_slice().ct_eq(expected.as_slice())) {
        Ok(())
    } else {
        Err(IngestError::Unauthorized)
    }
}

#[cfg(test)]
mod properties;
