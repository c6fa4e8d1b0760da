//! Why a webhook was not accepted, and reading its body: what every source and the gate in
//! front of them share, so that the sources build on the HTTP layer and never the reverse.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;

use crate::store::StoreError;

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
