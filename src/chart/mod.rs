//! The chart of an alert's expression around an action: the PromQL from the alert's
//! Prometheus link (`generatorURL`), queried over the run's time range, drawn as a PNG with
//! the action marked, so a thread shows the metric before and after the fix.
//!
//! Everything here can fail without touching the run: the caller says why in one line and
//! goes on without a chart.

pub mod expr;
pub mod render;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// How much of the time before the action the chart shows.
pub const BEFORE: Duration = Duration::from_secs(30 * 60);
/// About this many points per series: smooth at the chart's width, small to transfer.
const POINTS: f64 = 240.0;
/// Upper bound on one query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why there is no chart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChartError {
    /// Prometheus could not be reached, or answered with something that is not a range.
    #[error("Prometheus unavailable: {0}")]
    Unavailable(String),
    /// Prometheus refused the query (its `error`).
    #[error("the query failed: {0}")]
    Query(String),
    /// Drawing or encoding failed.
    #[error("the chart could not be drawn: {0}")]
    Render(String),
}

/// One line: its label and its (unix seconds, value) points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// What it is: the query side and the series' labels.
    pub label: String,
    /// The points, in time order.
    pub points: Vec<(f64, f64)>,
}

/// Series a step asked to chart, with their title and the time range they cover.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    /// The chart's title, e.g. `streaming-lag trend: sum(kafka_consumergroup_lag{…})`.
    pub title: String,
    /// The lines.
    pub series: Vec<Series>,
    /// The time range queried (unix seconds).
    pub range: (f64, f64),
}

/// Queries each side of `expression` over `range` (unix seconds) from Prometheus at `base`.
pub async fn fetch(
    http: &reqwest::Client,
    base: &str,
    expression: &str,
    range: (f64, f64),
) -> Result<Vec<Series>, ChartError> {
    let step = ((range.1 - range.0) / POINTS).max(1.0).ceil();
    let mut series = Vec::new();
    for side in expr::sides(expression) {
        let url = format!("{}/api/v1/query_range", base.trim_end_matches('/'));
        let answer = http
            .get(url)
            .query(&[
                ("query", side.as_str()),
                ("start", &range.0.to_string()),
                ("end", &range.1.to_string()),
                ("step", &step.to_string()),
            ])
            .timeout(QUERY_TIMEOUT)
            .send()
            .await
            .map_err(|e| ChartError::Unavailable(e.without_url().to_string()))?;
        let status = answer.status();
        let body = answer
            .text()
            .await
            .map_err(|e| ChartError::Unavailable(e.without_url().to_string()))?;
        series.extend(parse(&side, status, &body)?);
    }
    Ok(series)
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: Vec<Matrix>,
}

#[derive(Deserialize)]
struct Matrix {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// The series of one side's answer; Prometheus explains its 4xx and 5xx in the envelope.
pub fn parse(
    side: &str,
    status: reqwest::StatusCode,
    body: &str,
) -> Result<Vec<Series>, ChartError> {
    let Ok(envelope) = serde_json::from_str::<Envelope>(body) else {
        return Err(ChartError::Unavailable(format!(
            "HTTP {status}, not a query_range answer"
        )));
    };
    if envelope.status != "success" {
        let why = envelope.error.unwrap_or_else(|| format!("HTTP {status}"));
        return Err(ChartError::Query(why));
    }
    let data = envelope
        .data
        .filter(|d| d.result_type == "matrix")
        .ok_or_else(|| ChartError::Query("the answer is not a matrix".into()))?;
    Ok(data
        .result
        .into_iter()
        .map(|m| Series {
            label: label(side, &m.metric),
            points: m
                .values
                .iter()
                .filter_map(|(t, v)| v.parse::<f64>().ok().map(|v| (*t, v)))
                .filter(|(_, v)| v.is_finite())
                .collect(),
        })
        .collect())
}

/// A series' label: its metric name and labels, or the query side when it has none (a
/// threshold like `90`, or an aggregate without labels).
fn label(side: &str, metric: &BTreeMap<String, String>) -> String {
    let name = metric.get("__name__").map(String::as_str).unwrap_or("");
    let labels: Vec<String> = metric
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    match (name, labels.is_empty()) {
        ("", true) => side.to_owned(),
        (name, true) => name.to_owned(),
        (name, false) => format!("{name}{{{}}}", labels.join(", ")),
    }
}

#[cfg(test)]
mod tests;
