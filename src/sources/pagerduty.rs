//! PagerDuty Webhooks V3 source: verify the signature, parse, hand to intake, answer 202.
//!
//! # Authentication
//! `X-PagerDuty-Signature` carries one or more comma-separated `v1=<hex>` entries, each the
//! hex HMAC-SHA256 of the **raw** body under a subscription secret (`PAGERDUTY_WEBHOOK_SECRET`).
//! Several entries appear while a secret is rotated; any match accepts. Digests are compared
//! in constant time. The endpoint does not use the bearer token (`RESPONDER_WEBHOOK_TOKEN`):
//! PagerDuty does not send one, and the signature is the stronger proof.
//!
//! Status codes, chosen for PagerDuty's delivery rules (2xx within 5 s; 5xx and 429 retried
//! for 48 h; other 4xx dropped; three drops in a row disable the subscription for 24 h):
//! - **202** accepted (PagerDuty's recommendation), answered once the journal commit is done.
//! - **403** bad or missing signature: a forgery must not be retried.
//! - **400** malformed JSON or an incident event without its id or creation time.
//! - **503** when `PAGERDUTY_WEBHOOK_SECRET` is not set. Only a subscription someone created
//!   points here, so a missing secret is a deployment mistake (e.g. the secret not mounted);
//!   503 makes PagerDuty hold and retry the pages until it is fixed, where a 404 would drop
//!   them and, after three, disable the subscription. Unsigned requests are never accepted.
//!
//! # Mapping
//! `incident.triggered` becomes a firing [`Alert`] with fingerprint `data.id` (the PagerDuty
//! incident id) and `starts_at` = `data.created_at`; `incident.resolved` becomes the same
//! fingerprint and start with status resolved, so it resolves the same incident. Labels:
//! `alertname` (see [`TITLE_ALERTNAMES`]), `pd_title`, `pd_service`, `pd_urgency`,
//! `pd_priority` (when set), `pd_incident_id`, `pd_incident_number` and `container`.
//!
//! **Container convention**: a title of the form `"<what>: <container>"` — the text after the
//! last `": "` — names the container when it is a single Docker container name
//! (`[A-Za-z0-9][A-Za-z0-9_.-]*`), e.g. `"High Memory Usage: k2-bronze-binance-stream"`.
//! Otherwise there is no `container` label here; dispatch may still take one from the title
//! or the incident's alert details before routing (`routing::extract`, `docs/pagerduty.md`).
//!
//! **Reopened**: `incident.reopened` acts as a new trigger. The incident (id and title) is
//! the same, so the same routes and target apply; it starts at `data.reopened_at`, which
//! makes it a new alert instance (its own dedup key) that opens a new incident here, since
//! ours closed with PagerDuty's resolve. A later `incident.resolved` carries the same
//! `reopened_at`, so it resolves that new incident instead of repeating the first resolve.
//!
//! **Acknowledged and annotated** become [`Status::Update`] alerts on the same fingerprint:
//! never routed or acted on, shown in the incident's Slack thread by the dispatcher.
//! Annotations: `pd_event` (`acknowledged` / `annotated`), `pd_agent` (who, from
//! `event.agent.summary`), `pd_note` (the note's content) and [`EVENT_ID`] (`event.id`,
//! which makes each update its own journal entry).
//!
//! Every other event type (delegated, priority_updated, types added later) is answered 202
//! and recorded nowhere, only logged at INFO with its type.
//!
//! # Redeliveries
//! PagerDuty delivers at least once and repeats `X-Webhook-Id` on each attempt. A redelivery
//! carries the same body, hence the same incident id, `created_at` and status, hence the same
//! [`Alert::dedup_key`], which the journal already stores uniquely: the second delivery is
//! answered 202 and counted as a duplicate, writing nothing. Event types that are not stored
//! need no deduplication. `X-Webhook-Id` is therefore only logged, to correlate with
//! PagerDuty's delivery log.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::SourceState;
use crate::alert::{Alert, Labels, Source, Status, EVENT_ID, PD_AGENT, PD_EVENT};
use crate::http::{read_body, ApiError, IngestError};

/// The header carrying the signatures.
pub const SIGNATURE_HEADER: &str = "x-pagerduty-signature";
/// The header PagerDuty repeats on every delivery attempt of one webhook.
pub const WEBHOOK_ID_HEADER: &str = "x-webhook-id";

/// Title prefixes (matched case-insensitively) to the `alertname` the routes know.
/// Titles matching none get [`DEFAULT_ALERTNAME`].
pub const TITLE_ALERTNAMES: &[(&str, &str)] = &[
    ("High Memory Usage", "HighMemoryUsage"),
    ("Streaming Query Behind", "StreamingQueryBehind"),
    ("DLQ Rate", "DlqRateHigh"),
    ("Checkpoint Disk Full", "CheckpointDiskFull"),
];

/// The `alertname` of an incident whose title matches no entry of [`TITLE_ALERTNAMES`].
pub use crate::alert::PD_DEFAULT_ALERTNAME as DEFAULT_ALERTNAME;

/// What one webhook amounts to.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `incident.triggered`, `.reopened`, `.resolved`, `.acknowledged` or `.annotated`:
    /// an alert (or update) to make durable.
    Alert(Box<Alert>),
    /// Any other event type: acknowledged, nothing recorded.
    Ignored {
        /// The `event_type` as sent.
        event_type: String,
    },
}

#[derive(Debug, Deserialize)]
struct Message {
    event: WireEvent,
}

#[derive(Debug, Deserialize)]
struct WireEvent {
    #[serde(default)]
    id: String,
    event_type: String,
    #[serde(default)]
    agent: Option<Reference>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    occurred_at: Option<OffsetDateTime>,
    #[serde(default)]
    data: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct Incident {
    id: String,
    #[serde(default)]
    number: Option<u64>,
    #[serde(default)]
    title: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    created_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    reopened_at: Option<OffsetDateTime>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    urgency: Option<String>,
    #[serde(default)]
    service: Option<Reference>,
    #[serde(default)]
    priority: Option<Reference>,
}

#[derive(Debug, Deserialize)]
struct Reference {
    #[serde(default)]
    summary: Option<String>,
}

/// Why `/webhook/pagerduty` answers 503 without a signing secret.
pub const OFF: &str = "PagerDuty webhooks are off: PAGERDUTY_WEBHOOK_SECRET is not configured";

/// The `v1=` digests of an `X-PagerDuty-Signature` header. Needs no body, so a header that no
/// body could match is refused before one is read.
///
/// # Errors
/// [`IngestError::BadSignature`] when the header is missing or has no `v1=` entry.
pub fn v1_digests(header: Option<&str>) -> Result<Vec<&str>, IngestError> {
    let header = header.ok_or(IngestError::BadSignature(
        "missing X-PagerDuty-Signature header",
    ))?;
    let digests: Vec<&str> = header
        .split(',')
        .filter_map(|entry| entry.trim().strip_prefix("v1="))
        .collect();
    if digests.is_empty() {
        return Err(IngestError::BadSignature(
            "X-PagerDuty-Signature has no v1= signature",
        ));
    }
    Ok(digests)
}

/// Checks `X-PagerDuty-Signature` against the raw body: any `v1=` entry that equals the hex
/// HMAC-SHA256 of `body` under `secret` accepts. Compared in constant time.
///
/// # Errors
/// [`IngestError::BadSignature`] with a one-line reason when the header is missing, has no
/// `v1=` entry, or no entry matches.
pub fn verify_signature(
    header: Option<&str>,
    body: &[u8],
    secret: &str,
) -> Result<(), IngestError> {
    let digests = v1_digests(header)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| IngestError::BadSignature("unusable signing secret"))?;
    mac.update(body);
    let expected = hex(&mac.finalize().into_bytes());
    let mut matched = subtle::Choice::from(0);
    for digest in digests {
        // Every entry is compared, so timing does not reveal which one matched.
        matched |= digest
            .to_ascii_lowercase()
            .as_bytes()
            .ct_eq(expected.as_bytes());
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(IngestError::BadSignature(
            "X-PagerDuty-Signature does not match PAGERDUTY_WEBHOOK_SECRET",
        ))
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Parses a Webhooks V3 body. Pure: no I/O.
///
/// # Errors
/// [`IngestError::Malformed`] with a one-line reason when the body is not a V3 event, or a
/// triggered/resolved event lacks its incident id or start time.
pub fn parse(body: &[u8]) -> Result<Event, IngestError> {
    let message: Message = serde_json::from_slice(body)
        .map_err(|e| IngestError::Malformed(format!("not a PagerDuty V3 webhook: {e}")))?;
    let event = message.event;
    let status = match event.event_type.as_str() {
        "incident.triggered" | "incident.reopened" => Status::Firing,
        "incident.resolved" => Status::Resolved,
        "incident.annotated" => return parse_note(event),
        "incident.acknowledged" => Status::Update,
        _ => {
            return Ok(Event::Ignored {
                event_type: event.event_type,
            })
        }
    };
    let incident: Incident = serde_json::from_value(event.data).map_err(|e| {
        IngestError::Malformed(format!(
            "{} without a usable incident: {e}",
            event.event_type
        ))
    })?;
    if incident.id.is_empty() {
        return Err(IngestError::Malformed(format!(
            "{} without an incident id",
            event.event_type
        )));
    }
    // A reopened incident is a new instance of it; see "Reopened" above.
    let starts_at = match status {
        Status::Update => event.occurred_at,
        _ => incident
            .reopened_at
            .or(incident.created_at)
            .or(event.occurred_at),
    };
    let starts_at = starts_at.ok_or_else(|| {
        IngestError::Malformed(format!(
            "{} without data.created_at or occurred_at",
            event.event_type
        ))
    })?;
    let mut labels = Labels::new();
    labels.insert("alertname".into(), alertname(&incident.title).into());
    if let Some(container) = container(&incident.title) {
        labels.insert("container".into(), container.into());
    }
    labels.insert("pd_title".into(), incident.title.clone());
    labels.insert("pd_incident_id".into(), incident.id.clone());
    if let Some(number) = incident.number {
        labels.insert("pd_incident_number".into(), number.to_string());
    }
    let summary = |r: Option<Reference>| r.and_then(|r| r.summary).filter(|s| !s.is_empty());
    if let Some(service) = summary(incident.service) {
        labels.insert("pd_service".into(), service);
    }
    if let Some(urgency) = incident.urgency.filter(|s| !s.is_empty()) {
        labels.insert("pd_urgency".into(), urgency);
    }
    if let Some(priority) = summary(incident.priority) {
        labels.insert("pd_priority".into(), priority);
    }
    let mut annotations = Labels::new();
    if status == Status::Update {
        annotations.insert(PD_EVENT.into(), "acknowledged".into());
        annotations.insert(PD_AGENT.into(), agent_name(event.agent));
        annotations.insert(EVENT_ID.into(), event.id);
    }
    annotations.insert("summary".into(), incident.title);
    let html_url = incident.html_url.filter(|u| !u.is_empty());
    if let Some(url) = &html_url {
        annotations.insert("html_url".into(), url.clone());
    }
    Ok(Event::Alert(Box::new(Alert {
        source: Source::PagerDuty,
        fingerprint: incident.id,
        status,
        labels,
        annotations,
        starts_at,
        ends_at: match status {
            Status::Resolved => event.occurred_at,
            Status::Firing | Status::Update => None,
        },
        generator_url: html_url,
    })))
}

/// The `alertname` for an incident title (see [`TITLE_ALERTNAMES`]).
pub fn alertname(title: &str) -> &'static str {
    let title = title.trim_start().as_bytes();
    TITLE_ALERTNAMES
        .iter()
        .find(|(prefix, _)| {
            title.len() >= prefix.len()
                && title[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        })
        .map_or(DEFAULT_ALERTNAME, |(_, name)| name)
}

/// The container a title names by convention: the text after its last `": "`, when that is a
/// single Docker container name.
pub fn container(title: &str) -> Option<&str> {
    let (_, tail) = title.rsplit_once(": ")?;
    let tail = tail.trim();
    let mut chars = tail.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    (first_ok && rest_ok).then_some(tail)
}

/// `POST /webhook/pagerduty`: verify, parse, persist, then answer 202; counted by status.
pub(super) async fn receive(
    State(state): State<SourceState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let answer = accept(&state, &headers, body).await;
    let status = answer
        .as_ref()
        .map_or_else(ApiError::status, |_| StatusCode::ACCEPTED);
    state.metrics.webhook(Source::PagerDuty, status.as_u16());
    answer.map(|json| (StatusCode::ACCEPTED, json))
}

async fn accept(
    state: &SourceState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let secret: &SecretString = state
        .pagerduty_secret
        .as_deref()
        .ok_or(IngestError::NotConfigured(OFF))?;
    let body = read_body(body, state.budget.limit())?;
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    verify_signature(signature, &body, secret.expose_secret())?;
    let webhook_id = headers
        .get(WEBHOOK_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match parse(&body)? {
        Event::Ignored { event_type } => {
            tracing::info!(
                pagerduty.event_type = %event_type,
                pagerduty.webhook_id = %webhook_id,
                "PagerDuty event acknowledged and not recorded."
            );
            Ok(Json(serde_json::json!({
                "status": "ignored",
                "event_type": event_type,
            })))
        }
        Event::Alert(alert) => {
            tracing::info!(
                pagerduty.incident = %alert.fingerprint,
                pagerduty.webhook_id = %webhook_id,
                status = alert.status.as_str(),
                "PagerDuty incident event received."
            );
            let receipt = state
                .intake
                .submit(vec![*alert])
                .await
                .map_err(IngestError::from)?;
            state
                .metrics
                .duplicates(Source::PagerDuty, receipt.duplicates);
            Ok(Json(serde_json::json!({
                "status": "accepted",
                "new": receipt.accepted,
                "duplicates": receipt.duplicates,
            })))
        }
    }
}

mod updates;
use updates::{agent_name, parse_note};

#[cfg(test)]
mod tests;
