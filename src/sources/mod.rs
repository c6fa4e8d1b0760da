//! Sources: verify the caller, parse the body into canonical alerts, persist, then ack.
//!
//! A source never runs an action; it answers 2xx only once its alerts are durable.
//! Endpoints: `POST /webhook/alertmanager`, `POST /webhook/pagerduty`, and Slack's
//! `POST /slack/commands` and `POST /slack/interactions` (see [`slack`]).

pub mod alertmanager;
mod credential;
pub mod docker_events;
pub mod pagerduty;
pub mod schedule;
pub mod slack;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use credential::Credential;

use crate::alert::Source;
use crate::http::{BodyBudget, Gate};
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
    /// Who may send Alertmanager webhooks: the bearer token, the web config's users.
    pub access: crate::http::Access,
    /// The PagerDuty Webhooks V3 signing secret; `None` turns `/webhook/pagerduty` off.
    pub pagerduty_secret: Option<Arc<SecretString>>,
    /// The body limit and the bytes all bodies may hold at once.
    pub budget: BodyBudget,
    /// Webhook and duplicate counters.
    pub metrics: Arc<Metrics>,
    /// The Slack command and buttons.
    pub slack: slack::SlackState,
}

/// The webhook routes of every source, each behind its [`Gate`].
pub fn routes(state: SourceState) -> Router {
    let slack = slack::routes(state.slack.clone(), &state.budget);
    let alertmanager = Gate::new(Credential::Access(state.access.clone()), &state.budget)
        .counted(Source::Alertmanager, &state.metrics);
    let pagerduty = Gate::new(
        Credential::PagerDutySigned {
            configured: state.pagerduty_secret.is_some(),
        },
        &state.budget,
    )
    .counted(Source::PagerDuty, &state.metrics);
    Router::new()
        .route(
            "/webhook/alertmanager",
            alertmanager.guard(post(alertmanager::receive)),
        )
        .route(
            "/webhook/pagerduty",
            pagerduty.guard(post(pagerduty::receive)),
        )
        .with_state(state)
        .merge(slack)
}

/// The body a handler was given, or why not: over the limit is a 413 naming the setting
/// (a body sent in chunks, whose length the gate could not see), anything else a 400.
pub fn read_body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, IngestError> {
    body.map_err(|rejection| unread(&rejection, limit))
}

/// Why a body could not be read: see [`read_body`].
pub fn unread(rejection: &BytesRejection, limit: usize) -> IngestError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        IngestError::TooLarge(limit)
    } else {
        IngestError::Malformed(rejection.body_text())
    }
}

/// The credentials of an `Authorization` value of the Bearer scheme. The scheme is
/// case-insensitive and followed by one or more spaces (RFC 9110, section 11).
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim_start_matches(' '))
}

/// Checks `Authorization: Bearer <token>` in constant time when a token is configured.
pub fn check_bearer(headers: &HeaderMap, token: Option<&SecretString>) -> Result<(), IngestError> {
    let Some(token) = token else { return Ok(()) };
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_credentials)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_is_not() {
        let token = SecretString::from("s3cret-Token");
        let cases = [
            ("Bearer s3cret-Token", true),
            ("bearer s3cret-Token", true),
            ("BEARER s3cret-Token", true),
            ("Bearer   s3cret-Token", true),
            ("Bearer s3cret-token", false),
            ("Basic s3cret-Token", false),
            ("Bearers3cret-Token", false),
            ("s3cret-Token", false),
            ("", false),
        ];
        for (value, accepted) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(
                axum::http::header::AUTHORIZATION,
                value.parse().expect("a header value"),
            );
            assert_eq!(
                check_bearer(&headers, Some(&token)).is_ok(),
                accepted,
                "{value:?}"
            );
        }
    }
}
