//! Prometheus step kinds: `prometheus_range`, a range query summed across series and reduced
//! to a trend, for "Check Kafka consumer lag trend" over minutes rather than seconds.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::docker::HumanDuration;
use super::{api, ActionCtx, ActionError, StepEnv, StepKind, StepOutput};
use crate::template::Tmpl;

/// Runs a PromQL range query ending now and summarizes the summed series.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Prometheus' base URL, e.g. `http://prometheus:9090`.
    pub url: Tmpl,
    /// The PromQL expression.
    pub query: Tmpl,
    /// How far back the query reaches.
    #[serde(default = "default_range")]
    pub range: HumanDuration,
    /// The resolution step.
    #[serde(default = "default_step")]
    pub step: HumanDuration,
    /// Also share a chart of the query's series (each series its own line) in the thread.
    #[serde(default)]
    pub chart: bool,
}

/// Three times the runbook's "monitor progress every 5 minutes".
fn default_range() -> HumanDuration {
    HumanDuration(Duration::from_secs(15 * 60))
}

/// 30 points over the default range: enough for a trend, small to transfer.
fn default_step() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

/// A change within this fraction of the larger end is `flat`: lag gauges jitter with every
/// batch, and a 2% wobble over 15 minutes is not a trend.
const FLAT_TOLERANCE: f64 = 0.05;

/// The direction of the summed series from its first point to its last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    /// Up by more than the tolerance.
    Rising,
    /// Down by more than the tolerance.
    Falling,
    /// Within the tolerance.
    Flat,
    /// No samples in the range.
    NoData,
}

impl Trend {
    /// The name used in outputs and `when` conditions.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rising => "rising",
            Self::Falling => "falling",
            Self::Flat => "flat",
            Self::NoData => "no_data",
        }
    }
}

/// The typed outputs of [`Range`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RangeOutput {
    /// Distinct timestamps with at least one finite sample.
    pub points: usize,
    /// The sum at the first timestamp (0 without data).
    pub first: f64,
    /// The sum at the last timestamp (0 without data).
    pub last: f64,
    /// `last - first`.
    pub change: f64,
    /// `rising`, `falling`, `flat` or `no_data`.
    pub trend: Trend,
    /// The first timestamp (RFC 3339), `""` without data.
    pub from: String,
    /// The last timestamp (RFC 3339), `""` without data.
    pub to: String,
}

const OUTPUTS: &[&str] = &["points", "first", "last", "change", "trend", "from", "to"];

/// The Prometheus HTTP API envelope, success or error.
#[derive(Debug, Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Series>,
}

#[derive(Debug, Deserialize)]
struct Series {
    /// `[unix seconds, "value"]` pairs; values are strings so `NaN` and `+Inf` survive JSON.
    values: Vec<(f64, String)>,
}

/// Why a body gave no series.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BodyError {
    /// Prometheus answered with its error envelope (bad query, timeout, ...).
    Api(String),
    /// The body is not a `query_range` answer at all (wrong URL, a proxy's page).
    Malformed(String),
}

/// Parses a `query_range` body (of any status: Prometheus explains 4xx/5xx in the envelope)
/// into the per-timestamp sum, keyed by Unix milliseconds.
fn parse(body: &str) -> Result<BTreeMap<i64, f64>, BodyError> {
    let env: Envelope = serde_json::from_str(body)
        .map_err(|e| BodyError::Malformed(format!("not a Prometheus API answer: {e}")))?;
    if env.status != "success" {
        return Err(BodyError::Api(format!(
            "Prometheus {}: {}",
            env.error_type.as_deref().unwrap_or("error"),
            env.error.as_deref().unwrap_or("no error text")
        )));
    }
    let data = env
        .data
        .ok_or_else(|| BodyError::Malformed("Prometheus answered success without data".into()))?;
    if data.result_type != "matrix" {
        return Err(BodyError::Malformed(format!(
            "expected a matrix from query_range, got {}",
            data.result_type
        )));
    }
    let mut sums = BTreeMap::new();
    for (ts, value) in data.result.iter().flat_map(|s| &s.values) {
        // NaN/Inf (a stale or divided-by-zero series) would poison the sum; skip them.
        let Ok(v) = value.parse::<f64>() else {
            continue;
        };
        if v.is_finite() {
            // Timestamps are seconds with millisecond precision; round to key them exactly.
            *sums.entry((ts * 1000.0).round() as i64).or_insert(0.0) += v;
        }
    }
    Ok(sums)
}

/// Reduces the summed series to its outputs.
fn summarize(sums: &BTreeMap<i64, f64>) -> RangeOutput {
    let (Some((&t0, &first)), Some((&t1, &last))) = (sums.first_key_value(), sums.last_key_value())
    else {
        return RangeOutput {
            points: 0,
            first: 0.0,
            last: 0.0,
            change: 0.0,
            trend: Trend::NoData,
            from: String::new(),
            to: String::new(),
        };
    };
    let change = last - first;
    let tolerance = FLAT_TOLERANCE * first.abs().max(last.abs());
    let trend = if change.abs() <= tolerance {
        Trend::Flat
    } else if change > 0.0 {
        Trend::Rising
    } else {
        Trend::Falling
    };
    RangeOutput {
        points: sums.len(),
        first,
        last,
        change,
        trend,
        from: api::rfc3339_millis(t0),
        to: api::rfc3339_millis(t1),
    }
}

/// Unix seconds with millisecond precision, as Prometheus accepts for `start`/`end`.
fn unix_seconds(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

#[async_trait]
impl StepKind for Range {
    fn name(&self) -> &'static str {
        "prometheus_range"
    }

    fn outputs(&self) -> &'static [&'static str] {
        OUTPUTS
    }

    fn templates_mut(&mut self) -> Vec<(&'static str, &mut Tmpl)> {
        vec![("url", &mut self.url), ("query", &mut self.query)]
    }

    fn plan(&self, env: &StepEnv<'_>) -> Result<String, ActionError> {
        let url = api::join(&env.render(&self.url)?, "/api/v1/query_range");
        let query = env.render(&self.query)?;
        Ok(format!(
            "query {url} for `{query}` over the last {} at {} steps",
            self.range, self.step
        ))
    }

    async fn run(&self, ctx: &ActionCtx, env: &StepEnv<'_>) -> Result<StepOutput, ActionError> {
        let url = api::join(&env.render(&self.url)?, "/api/v1/query_range");
        let query = env.render(&self.query)?;
        let end = SystemTime::now();
        let start = end.checked_sub(self.range.0).unwrap_or(UNIX_EPOCH);
        let params = [
            ("query", query.clone()),
            ("start", unix_seconds(start)),
            ("end", unix_seconds(end)),
            // Prometheus takes a float of seconds; sub-second steps are never useful here.
            ("step", self.step.0.as_secs().max(1).to_string()),
        ];
        let (status, body) = api::get(&ctx.http, &url, &params).await?;
        let sums = match (status.is_success(), parse(&body)) {
            (true, Ok(sums)) => sums,
            // Prometheus' error envelope explains itself, whatever the status (400, 422, 503).
            (_, Err(BodyError::Api(e))) => {
                return Err(ActionError::Failed(format!(
                    "GET {url} (HTTP {status}): {e}"
                )))
            }
            // Anything else that is not 2xx (a wrong base URL's 404, a proxy's 502 page) is
            // reported by its status and the head of its body.
            (false, _) => return Err(api::status_error(&url, status, &body)),
            (true, Err(BodyError::Malformed(e))) => {
                return Err(ActionError::Failed(format!("GET {url}: {e}")))
            }
        };
        let typed = summarize(&sums);
        let chart = self
            .chart
            .then(|| plot(&query, status, &body, (start, end)))
            .flatten();
        let summary = match typed.trend {
            Trend::NoData => format!("`{query}`: no data over the last {}", self.range),
            trend => format!(
                "`{query}`: {} → {} over the last {} ({} points): {}",
                typed.first,
                typed.last,
                self.range,
                typed.points,
                trend.as_str()
            ),
        };
        let mut output = StepOutput::from_typed(&typed, summary);
        output.chart = chart;
        Ok(output)
    }
}

/// The answer's series for the thread's chart: the same body, one line per series rather
/// than their sum. `None` when there is nothing to draw (the step's summary says "no data").
fn plot(
    query: &str,
    status: reqwest::StatusCode,
    body: &str,
    range: (SystemTime, SystemTime),
) -> Option<crate::chart::Plot> {
    let series = crate::chart::parse(query, status, body).ok()?;
    if series.iter().all(|s| s.points.is_empty()) {
        return None;
    }
    let seconds = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
    };
    Some(crate::chart::Plot {
        title: query.to_owned(),
        series,
        range: (seconds(range.0), seconds(range.1)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/prometheus/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn fixtures_summarize() {
        // (fixture, points, first, last, trend)
        let table: &[(&str, usize, f64, f64, Trend)] = &[
            ("lag_rising.json", 5, 1200.0, 9000.0, Trend::Rising),
            ("lag_falling.json", 4, 12000.0, 3000.0, Trend::Falling),
            ("lag_flat.json", 3, 5000.0, 5100.0, Trend::Flat),
            ("empty.json", 0, 0.0, 0.0, Trend::NoData),
        ];
        for &(file, points, first, last, trend) in table {
            let out = summarize(&parse(&fixture(file)).unwrap_or_else(|e| panic!("{file}: {e:?}")));
            assert_eq!(
                (out.points, out.first, out.last, out.change, out.trend),
                (points, first, last, last - first, trend),
                "{file}"
            );
            assert_eq!(out.from.is_empty(), points == 0, "{file}");
        }
    }

    #[test]
    fn series_are_summed_per_timestamp_and_nan_is_skipped() {
        let sums = parse(&fixture("lag_rising.json")).expect("parses");
        // Two partitions' series, the second missing its first sample and one NaN.
        assert_eq!(sums.get(&1_768_904_100_000), Some(&1200.0));
        let out = summarize(&sums);
        assert_eq!(out.from, "2026-01-20T10:15:00Z");
        assert_eq!(out.to, "2026-01-20T10:17:00Z");
    }

    #[test]
    fn error_envelopes_and_foreign_bodies() {
        match parse(&fixture("error_bad_data.json")) {
            Err(BodyError::Api(e)) => assert!(e.starts_with("Prometheus bad_data: "), "{e}"),
            other => panic!("expected an API error, got {other:?}"),
        }
        for body in [
            "404 page not found",
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
            r#"{"status":"success"}"#,
        ] {
            assert!(
                matches!(parse(body), Err(BodyError::Malformed(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn start_and_end_are_unix_seconds_with_millis() {
        let t = UNIX_EPOCH + Duration::from_millis(1_768_904_130_123);
        assert_eq!(unix_seconds(t), "1768904130.123");
    }

    #[test]
    fn yaml_shape_and_defaults() {
        let mut r: Range = serde_yaml_ng::from_str("url: '{{ config.prometheus_url }}'\nquery: up")
            .expect("valid YAML");
        assert_eq!((r.range.0.as_secs(), r.step.0.as_secs()), (900, 30));
        assert!(!r.destructive());
        let names: Vec<&str> = r.templates_mut().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["url", "query"]);
        assert!(serde_yaml_ng::from_str::<Range>("url: u\nquery: up\nrange: long").is_err());
        assert!(serde_yaml_ng::from_str::<Range>("url: u\nquery: up\ntimeout: 5s").is_err());
        assert!(!r.chart);
        let charted: Range = serde_yaml_ng::from_str("url: u\nquery: up\nchart: true").unwrap();
        assert!(charted.chart);
    }

    #[test]
    fn a_plot_keeps_each_series_and_the_range_asked() {
        let ok = reqwest::StatusCode::OK;
        let range = (
            UNIX_EPOCH + Duration::from_secs(1_768_904_000),
            UNIX_EPOCH + Duration::from_secs(1_768_904_300),
        );
        let drawn = plot("lag", ok, &fixture("lag_rising.json"), range).expect("series to draw");
        assert_eq!(drawn.title, "lag");
        assert_eq!(drawn.range, (1_768_904_000.0, 1_768_904_300.0));
        assert!(drawn.series.len() > 1, "one line per series, not their sum");
        assert_eq!(drawn.series[0].points[0], (1_768_904_100.0, 1200.0));
        assert!(
            plot("lag", ok, &fixture("empty.json"), range).is_none(),
            "nothing to draw"
        );
    }

    #[test]
    fn output_keys_equal_outputs() {
        let out = StepOutput::from_typed(&summarize(&BTreeMap::new()), String::new());
        assert_eq!(out.fields["trend"], serde_json::json!("no_data"));
        let mut got: Vec<&str> = out.fields.keys().map(String::as_str).collect();
        let mut want = OUTPUTS.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
    }
}
