//! The PagerDuty client: notes on PagerDuty incidents (REST API v2) and Events API v2
//! triggers and resolves, with every answer classified as done, retryable or refused.
//!
//! Like the Slack client it owns no retries: the persisted outbox decides when to try again.
//! Protocol facts it relies on:
//! - `POST {api}/incidents/{id}/notes` with `Authorization: Token token=<token>`, a `From`
//!   header naming a PagerDuty user's email, `Accept: application/vnd.pagerduty+json;version=2`
//!   and `{"note":{"content":…}}`; 201 (or 200) with the note is success.
//! - `POST {events}/v2/enqueue` with the routing key in the body (no auth header); 202 is
//!   success; the same `dedup_key` makes a resend land on the same PagerDuty alert.
//! - 429 (with `Retry-After` when sent), 5xx and network errors are worth retrying; any other
//!   4xx (400 invalid event, 401 bad token, 404 unknown incident) will not improve.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::alert::Alert;
use crate::responders::escalation::Priority;

/// Upper bound on one call, connection included; beyond it the call counts as unavailable.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// PagerDuty's REST API media type, which selects version 2.
pub const REST_ACCEPT: &str = "application/vnd.pagerduty+json;version=2";
/// Events API v2 limits `dedup_key` to this many characters.
const MAX_DEDUP_KEY: usize = 255;
/// Events API v2 limits `payload.summary` to this many characters.
const MAX_SUMMARY: usize = 1024;
/// How much of a refusal's body is kept in the record and the log.
const MAX_ERROR_BODY: usize = 300;

/// The two PagerDuty calls the outbox makes; a trait so tests can stand in.
#[async_trait]
pub trait PagerDutyApi: Send + Sync + fmt::Debug {
    /// Adds a note with `content` to the PagerDuty incident `incident` (its id, e.g. `Q1K2…`).
    async fn add_note(&self, incident: &str, content: &str) -> Result<(), PagerDutyError>;

    /// Sends an Events API v2 event (without `routing_key`, which the client adds).
    async fn send_event(&self, event: &Value) -> Result<(), PagerDutyError>;

    /// `body.details` of the incident's first alert (`None` when it has none); see `lookup`.
    async fn first_alert_details(&self, incident: &str) -> Result<Option<Value>, PagerDutyError> {
        let _ = incident;
        Err(PagerDutyError::Rejected(
            "alert lookups are not supported here".into(),
        ))
    }
}

/// Why a PagerDuty call failed, classified by whether trying again later can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PagerDutyError {
    /// HTTP 429; wait `retry_after` when PagerDuty said how long.
    #[error("pagerduty rate limited{}", match .retry_after {
        Some(d) => format!(" (retry after {}s)", d.as_secs()),
        None => String::new(),
    })]
    RateLimited {
        /// PagerDuty's `Retry-After`, when sent.
        retry_after: Option<Duration>,
    },
    /// Network error, timeout or 5xx.
    #[error("pagerduty unavailable: {0}")]
    Unavailable(String),
    /// A 4xx other than 429, or a request that cannot be made (setting off, bad id).
    #[error("pagerduty refused: {0}")]
    Rejected(String),
}

/// Where and as whom to call PagerDuty; an output whose settings are missing is off.
#[derive(Debug, Clone)]
pub struct PagerDutyConfig {
    /// REST API base URL (`https://api.pagerduty.com`).
    pub api_url: String,
    /// REST API token; notes are off without it.
    pub api_token: Option<SecretString>,
    /// Email of the PagerDuty user notes are written as (the `From` header).
    pub from: Option<String>,
    /// Events API base URL (`https://events.pagerduty.com`).
    pub events_url: String,
    /// Events API v2 integration key; events are off without it.
    pub routing_key: Option<SecretString>,
}

impl PagerDutyConfig {
    /// Whether notes can be sent (token and From both set).
    pub fn notes_on(&self) -> bool {
        self.api_token.is_some() && self.from.is_some()
    }

    /// Whether events can be sent (routing key set).
    pub fn events_on(&self) -> bool {
        self.routing_key.is_some()
    }
}

/// [`PagerDutyApi`] over HTTPS with reqwest. `Debug` shows no secret (they are SecretStrings).
#[derive(Debug, Clone)]
pub struct PagerDutyClient {
    http: reqwest::Client,
    config: PagerDutyConfig,
}

impl PagerDutyClient {
    /// A client for `config`.
    pub fn new(config: PagerDutyConfig) -> Result<Self, PagerDutyError> {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .user_agent(concat!("alert-responder/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PagerDutyError::Rejected(format!("HTTP client: {e}")))?;
        Ok(Self { http, config })
    }

    /// The note request, ready to send.
    pub fn note_request(
        &self,
        incident: &str,
        content: &str,
    ) -> Result<reqwest::Request, PagerDutyError> {
        let c = &self.config;
        let (Some(token), Some(from)) = (&c.api_token, &c.from) else {
            return Err(PagerDutyError::Rejected(
                "notes are off: PAGERDUTY_API_TOKEN and PAGERDUTY_FROM must both be set".into(),
            ));
        };
        let url = endpoint(&c.api_url, &["incidents", incident, "notes"])?;
        self.http
            .post(url)
            .header(
                AUTHORIZATION,
                format!("Token token={}", token.expose_secret()),
            )
            .header("From", from)
            .header(ACCEPT, REST_ACCEPT)
            .json(&json!({ "note": { "content": content } }))
            .build()
            .map_err(|e| PagerDutyError::Rejected(format!("note request: {e}")))
    }

    /// The Events API v2 request for `event`, with the routing key added.
    pub fn event_request(&self, event: &Value) -> Result<reqwest::Request, PagerDutyError> {
        let c = &self.config;
        let Some(key) = &c.routing_key else {
            return Err(PagerDutyError::Rejected(
                "events are off: PAGERDUTY_ROUTING_KEY is not set".into(),
            ));
        };
        let mut event = event.clone();
        let Some(fields) = event.as_object_mut() else {
            return Err(PagerDutyError::Rejected(
                "event is not a JSON object".into(),
            ));
        };
        fields.insert("routing_key".into(), key.expose_secret().into());
        let url = endpoint(&c.events_url, &["v2", "enqueue"])?;
        self.http
            .post(url)
            .json(&event)
            .build()
            .map_err(|e| PagerDutyError::Rejected(format!("event request: {e}")))
    }

    async fn send(&self, request: reqwest::Request) -> Result<(), PagerDutyError> {
        self.call(request).await.map(drop)
    }

    /// Makes the call and classifies the answer; the body of a success.
    async fn call(&self, request: reqwest::Request) -> Result<String, PagerDutyError> {
        let response = self
            .http
            .execute(request)
            .await
            // Without the URL: nothing secret is in it, but the error reads better short.
            .map_err(|e| PagerDutyError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        classify(status, &headers, &body)?;
        Ok(body)
    }
}

#[async_trait]
impl PagerDutyApi for PagerDutyClient {
    async fn add_note(&self, incident: &str, content: &str) -> Result<(), PagerDutyError> {
        self.send(self.note_request(incident, content)?).await
    }

    async fn send_event(&self, event: &Value) -> Result<(), PagerDutyError> {
        self.send(self.event_request(event)?).await
    }

    async fn first_alert_details(&self, incident: &str) -> Result<Option<Value>, PagerDutyError> {
        self.fetch_first_alert_details(incident).await
    }
}

/// `base` with `segments` appended, each percent-encoded (an incident id is webhook data).
fn endpoint(base: &str, segments: &[&str]) -> Result<Url, PagerDutyError> {
    let mut url = Url::parse(base.trim_end_matches('/'))
        .map_err(|e| PagerDutyError::Rejected(format!("invalid URL {base:?}: {e}")))?;
    url.path_segments_mut()
        .map_err(|()| PagerDutyError::Rejected(format!("invalid base URL {base:?}")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// What an answer means: 2xx done; 429, 5xx (and 408) retry; every other status refused.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &str) -> Result<(), PagerDutyError> {
    if status.is_success() {
        return Ok(());
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        let retry_after = super::retry_after(headers);
        return Err(PagerDutyError::RateLimited { retry_after });
    }
    let detail: String = body
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_ERROR_BODY)
        .collect();
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        Err(PagerDutyError::Unavailable(format!("HTTP {status}")))
    } else {
        Err(PagerDutyError::Rejected(format!("HTTP {status}: {detail}")))
    }
}

/// The `dedup_key` of an incident's events: stable for the incident, so a resend, a second
/// escalation and the resolve all land on the same PagerDuty alert.
pub fn dedup_key(incident_id: i64, alert: &Alert) -> String {
    let key = format!("alert-responder/{}/{incident_id}", alert.fingerprint);
    key.chars().take(MAX_DEDUP_KEY).collect()
}

/// The Events API v2 trigger for an escalated incident (the client adds `routing_key`).
pub fn trigger_event(
    incident_id: i64,
    alert: &Alert,
    target: &str,
    reason: &str,
    priority: Priority,
) -> Value {
    let summary = format!("{} on {target}: {reason}", alert.name());
    // An escalation means a human must look; an unknown severity pages.
    let severity = alert
        .labels
        .get("severity")
        .map(String::as_str)
        .filter(|s| matches!(*s, "critical" | "error" | "warning" | "info"))
        .unwrap_or("critical");
    json!({
        "event_action": "trigger",
        "dedup_key": dedup_key(incident_id, alert),
        "client": "alert-responder",
        "payload": {
            "summary": summary.chars().take(MAX_SUMMARY).collect::<String>(),
            "source": target,
            "severity": severity,
            "component": target,
            "class": alert.name(),
            "custom_details": {
                "incident_id": incident_id,
                "priority": priority.as_str(),
                "reason": reason,
                "source": alert.source.as_str(),
                "labels": alert.labels,
                "annotations": alert.annotations,
            },
        },
    })
}

/// The Events API v2 resolve of the incident's trigger.
pub fn resolve_event(incident_id: i64, alert: &Alert) -> Value {
    json!({
        "event_action": "resolve",
        "dedup_key": dedup_key(incident_id, alert),
    })
}

mod lookup;

#[cfg(test)]
mod tests;
