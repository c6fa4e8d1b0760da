//! Prometheus Alertmanager webhook source (payload version 4): parse, then hand to intake.
//!
//! Parsing is a pure function over the raw body. Unknown fields are accepted on purpose:
//! newer Alertmanagers add fields (`notification_reason`, `routeLabels`) and a receiver that
//! rejected them would drop alerts, since Alertmanager never retries a 4xx.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use time::OffsetDateTime;

use super::SourceState;
use crate::alert::{Alert, Labels, Source, Status};
use crate::http::{read_body, ApiError, IngestError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    version: String,
    alerts: Vec<WireAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAlert {
    status: Status,
    #[serde(default)]
    labels: Labels,
    #[serde(default)]
    annotations: Labels,
    #[serde(with = "time::serde::rfc3339")]
    starts_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    ends_at: Option<OffsetDateTime>,
    #[serde(default, rename = "generatorURL")]
    generator_url: Option<String>,
    fingerprint: String,
}

/// Parses an Alertmanager v4 webhook body into canonical alerts. Pure: no I/O.
///
/// # Errors
/// [`IngestError::Malformed`] with a one-line reason when the body is not JSON, not a
/// version 4 payload, or an alert lacks its fingerprint or start time.
pub fn parse(body: &[u8]) -> Result<Vec<Alert>, IngestError> {
    let message: Message = serde_json::from_slice(body)
        .map_err(|e| IngestError::Malformed(format!("not an Alertmanager v4 payload: {e}")))?;
    if message.version != "4" {
        return Err(IngestError::Malformed(format!(
            "unsupported Alertmanager payload version {:?} (expected \"4\")",
            message.version
        )));
    }
    message.alerts.into_iter().map(into_alert).collect()
}

fn into_alert(wire: WireAlert) -> Result<Alert, IngestError> {
    if wire.fingerprint.is_empty() {
        return Err(IngestError::Malformed(
            "alert without a fingerprint".to_owned(),
        ));
    }
    Ok(Alert {
        source: Source::Alertmanager,
        fingerprint: wire.fingerprint,
        status: wire.status,
        labels: wire.labels,
        annotations: wire.annotations,
        starts_at: wire.starts_at,
        // Alertmanager sends Go's zero time ("0001-01-01T00:00:00Z") while an alert fires.
        ends_at: wire.ends_at.filter(|t| t.year() > 1),
        generator_url: wire.generator_url.filter(|u| !u.is_empty()),
    })
}

/// `POST /webhook/alertmanager`: verify, parse, persist, then answer; counted by status.
pub(super) async fn receive(
    State(state): State<SourceState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let answer = accept(&state, body).await;
    let status = answer
        .as_ref()
        .map_or_else(ApiError::status, |_| StatusCode::OK);
    state.metrics.webhook(Source::Alertmanager, status.as_u16());
    answer
}

async fn accept(
    state: &SourceState,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    // The gate in front of this route checked the bearer token before the body was read.
    let body = read_body(body, state.budget.limit())?;
    let alerts = parse(&body)?;
    let count = alerts.len();
    let receipt = state
        .intake
        .submit(alerts)
        .await
        .map_err(IngestError::from)?;
    state
        .metrics
        .duplicates(Source::Alertmanager, receipt.duplicates);
    Ok(Json(serde_json::json!({
        "status": "accepted",
        "alerts": count,
        "new": receipt.accepted,
        "duplicates": receipt.duplicates,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/alertmanager/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).expect("fixture exists")
    }

    #[test]
    fn fixtures_parse_into_canonical_alerts() {
        struct Case {
            file: &'static str,
            statuses: &'static [Status],
            ends_at_set: &'static [bool],
        }
        let cases = [
            Case {
                file: "firing.json",
                statuses: &[Status::Firing],
                ends_at_set: &[false],
            },
            Case {
                file: "resolved.json",
                statuses: &[Status::Resolved],
                ends_at_set: &[true],
            },
            Case {
                file: "several_with_new_fields.json",
                statuses: &[Status::Firing, Status::Resolved],
                ends_at_set: &[false, true],
            },
        ];
        for case in cases {
            let alerts = parse(&fixture(case.file)).expect(case.file);
            let statuses: Vec<_> = alerts.iter().map(|a| a.status).collect();
            assert_eq!(statuses, case.statuses, "{}", case.file);
            let ends: Vec<_> = alerts.iter().map(|a| a.ends_at.is_some()).collect();
            assert_eq!(ends, case.ends_at_set, "{}", case.file);
        }
    }

    #[test]
    fn firing_fixture_keeps_labels_fingerprint_and_nanosecond_start() {
        let alerts = parse(&fixture("firing.json")).unwrap();
        let a = &alerts[0];
        assert_eq!(a.name(), "HighMemoryUsage");
        assert_eq!(a.labels["container"], "k2-bronze-binance-stream");
        assert_eq!(a.fingerprint, "1c976b71cca1647c");
        assert_eq!(a.starts_at.nanosecond(), 872_062_218);
        assert_eq!(a.generator_url.as_deref(), Some("http://prom/graph"));
    }

    #[test]
    fn firing_and_resolved_of_one_instance_have_distinct_dedup_keys() {
        let firing = &parse(&fixture("firing.json")).unwrap()[0];
        let resolved = &parse(&fixture("resolved.json")).unwrap()[0];
        assert_ne!(firing.dedup_key(), resolved.dedup_key());
        let again = &parse(&fixture("firing.json")).unwrap()[0];
        assert_eq!(firing.dedup_key(), again.dedup_key());
    }

    #[test]
    fn bad_bodies_get_one_line_reasons() {
        let cases: &[(&[u8], &str)] = &[
            (b"{not json", "not an Alertmanager v4 payload"),
            (b"[]", "not an Alertmanager v4 payload"),
            (br#"{"version":"3","alerts":[]}"#, "unsupported Alertmanager payload version"),
            (br#"{"version":"4"}"#, "missing field `alerts`"),
            (
                br#"{"version":"4","alerts":[{"status":"firing","startsAt":"2026-01-01T00:00:00Z"}]}"#,
                "missing field `fingerprint`",
            ),
            (
                br#"{"version":"4","alerts":[{"status":"burning","fingerprint":"x","startsAt":"2026-01-01T00:00:00Z"}]}"#,
                "unknown variant `burning`",
            ),
            (
                br#"{"version":"4","alerts":[{"status":"firing","fingerprint":"","startsAt":"2026-01-01T00:00:00Z"}]}"#,
                "without a fingerprint",
            ),
        ];
        for (body, expected) in cases {
            let err = parse(body).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
            assert!(!err.contains('\n'), "one line: {err:?}");
        }
    }
}
