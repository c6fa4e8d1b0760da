//! The Grafana annotations client: every run becomes one annotation region on the dashboards
//! that show the `alert-responder` tag, created when the run starts and completed (`timeEnd`,
//! outcome) when it ends.
//!
//! Like the Slack and PagerDuty clients it owns no retries: the persisted outbox decides when
//! to try again. Protocol facts it relies on (Grafana's HTTP API):
//! - `POST {url}/api/annotations` with `Authorization: Bearer <service account token>` and
//!   `{"dashboardUID"?, "time": ms, "timeEnd"?: ms, "tags": [...], "text": "..."}` answers
//!   `{"id": N, "message": "Annotation added"}`.
//! - `PATCH {url}/api/annotations/{id}` with any of those fields updates them (tags replaced).
//! - 429 (with `Retry-After` when sent), 5xx and network errors are worth retrying; any other
//!   4xx (401 bad token, 403 no permission, 404 annotation deleted) will not improve.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::store::{AnnotationKind, DueAnnotation};

/// Upper bound on one call, connection included; beyond it the call counts as unavailable.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a refusal's body is kept in the record and the log.
const MAX_ERROR_BODY: usize = 300;
/// The tag every annotation carries, which a dashboard's annotation query filters on.
pub const TAG: &str = "alert-responder";

/// The two Grafana calls the outbox makes; a trait so tests can stand in.
#[async_trait]
pub trait AnnotationsApi: Send + Sync + fmt::Debug {
    /// Creates an annotation; returns the id Grafana gave it.
    async fn create(&self, annotation: &Value) -> Result<i64, GrafanaError>;

    /// Updates the fields given of the annotation `id`.
    async fn update(&self, id: i64, fields: &Value) -> Result<(), GrafanaError>;
}

/// Why a Grafana call failed, classified by whether trying again later can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrafanaError {
    /// HTTP 429; wait `retry_after` when Grafana said how long.
    #[error("grafana rate limited")]
    RateLimited {
        /// Grafana's `Retry-After`, when sent.
        retry_after: Option<Duration>,
    },
    /// Network error, timeout or 5xx.
    #[error("grafana unavailable: {0}")]
    Unavailable(String),
    /// A 4xx other than 429, or an answer that cannot be used.
    #[error("grafana refused: {0}")]
    Rejected(String),
}

/// Where and as whom to write annotations; annotations are off without it.
#[derive(Debug, Clone)]
pub struct GrafanaConfig {
    /// Grafana's base URL, without a trailing slash.
    pub url: String,
    /// A service account token, sent as a Bearer token.
    pub token: SecretString,
    /// The dashboard the annotations belong to; without it they are organization
    /// annotations, shown on every dashboard whose annotation query asks for their tags.
    pub dashboard_uid: Option<String>,
    /// Where people open this service's incident pages, for a link in each annotation.
    pub public_url: Option<String>,
}

/// [`AnnotationsApi`] over HTTP(S) with reqwest. `Debug` shows no secret.
#[derive(Debug, Clone)]
pub struct GrafanaClient {
    http: reqwest::Client,
    url: String,
    token: SecretString,
}

impl GrafanaClient {
    /// A client for `config`.
    pub fn new(config: &GrafanaConfig) -> Result<Self, GrafanaError> {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .user_agent(concat!("alert-responder/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GrafanaError::Rejected(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            url: config.url.clone(),
            token: config.token.clone(),
        })
    }

    fn endpoint(&self, id: Option<i64>) -> Result<Url, GrafanaError> {
        let mut url = Url::parse(&self.url)
            .map_err(|e| GrafanaError::Rejected(format!("invalid GRAFANA_URL: {e}")))?;
        let id = id.map(|id| id.to_string());
        url.path_segments_mut()
            .map_err(|()| GrafanaError::Rejected("invalid GRAFANA_URL".into()))?
            .pop_if_empty()
            .extend(["api", "annotations"])
            .extend(id.as_deref());
        Ok(url)
    }

    /// Makes the call and classifies the answer; the body of a success.
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<String, GrafanaError> {
        let response = request
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .map_err(|e| GrafanaError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        classify(status, &headers, &body)?;
        Ok(body)
    }
}

#[async_trait]
impl AnnotationsApi for GrafanaClient {
    async fn create(&self, annotation: &Value) -> Result<i64, GrafanaError> {
        let url = self.endpoint(None)?;
        let body = self.call(self.http.post(url).json(annotation)).await?;
        serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|answer| answer["id"].as_i64())
            .ok_or_else(|| GrafanaError::Rejected("the answer carries no annotation id".into()))
    }

    async fn update(&self, id: i64, fields: &Value) -> Result<(), GrafanaError> {
        let url = self.endpoint(Some(id))?;
        self.call(self.http.patch(url).json(fields)).await.map(drop)
    }
}

/// What an answer means: 2xx done; 429, 5xx (and 408) retry; every other status refused.
fn classify(status: StatusCode, headers: &HeaderMap, body: &str) -> Result<(), GrafanaError> {
    if status.is_success() {
        return Ok(());
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        let retry_after = super::retry_after(headers);
        return Err(GrafanaError::RateLimited { retry_after });
    }
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        return Err(GrafanaError::Unavailable(format!("HTTP {status}")));
    }
    // Grafana's refusals are `{"message": ...}`; neither carries the token.
    let detail: String = body
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_ERROR_BODY)
        .collect();
    Err(GrafanaError::Rejected(format!("HTTP {status}: {detail}")))
}

/// The call a due delivery makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `POST /api/annotations` with these fields.
    Create(Value),
    /// `PATCH /api/annotations/{id}` with these fields.
    Update(i64, Value),
}

/// The call for `due`: its queued fields, the dashboard and the links added. A completion
/// whose annotation was never created (refused, or queued before this was on) creates the
/// whole region instead, so the run still shows.
pub fn call_for(due: &DueAnnotation, config: &GrafanaConfig) -> Call {
    let mut fields = due.body.clone();
    let text = fields["text"].as_str().unwrap_or_default();
    fields["text"] = links(text, due, config).into();
    match (due.kind, due.annotation_id) {
        (AnnotationKind::Complete, Some(id)) => Call::Update(id, fields),
        (kind, _) => {
            if kind == AnnotationKind::Complete {
                let start = due.start.as_ref().map(|s| s["time"].clone());
                fields["time"] = start
                    .filter(Value::is_i64)
                    .unwrap_or_else(|| fields["timeEnd"].clone());
            }
            if let Some(uid) = &config.dashboard_uid {
                fields["dashboardUID"] = json!(uid);
            }
            Call::Create(fields)
        }
    }
}

/// `text` (escaped: it carries alert data, and Grafana shows annotation text as HTML) with
/// links to the incident's page and Slack thread, those that are known.
fn links(text: &str, due: &DueAnnotation, config: &GrafanaConfig) -> String {
    let mut out = escape(text);
    let mut sep = "<br>";
    if let Some(base) = &config.public_url {
        let href = format!("{base}/incidents/{}", due.incident_id);
        out.push_str(&format!(
            "{sep}<a href=\"{}\">Incident {}</a>",
            escape(&href),
            due.incident_id
        ));
        sep = " · ";
    }
    if let Some((channel, ts)) = &due.thread {
        let href = format!(
            "https://slack.com/archives/{channel}/p{}",
            ts.replace('.', "")
        );
        out.push_str(&format!(
            "{sep}<a href=\"{}\">Slack thread</a>",
            escape(&href)
        ));
    }
    out
}

/// HTML-escapes text so alert data can neither add markup nor links.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The fields of a run's annotation: `tags` (the service's, the responder, the target, the
/// mode when it is a dry run, and the outcome once known) and `text`.
pub fn fields(run: &RunLabel<'_>, outcome: Option<&str>, text: &str) -> Value {
    let mut tags = vec![TAG, run.responder, run.target];
    if run.dry_run {
        tags.push("dry-run");
    }
    tags.extend(outcome);
    json!({ "tags": tags, "text": text })
}

/// What names a run in its annotation.
#[derive(Debug, Clone, Copy)]
pub struct RunLabel<'a> {
    /// The responder.
    pub responder: &'a str,
    /// The target.
    pub target: &'a str,
    /// Whether the run touched nothing.
    pub dry_run: bool,
}

#[cfg(test)]
mod tests;
