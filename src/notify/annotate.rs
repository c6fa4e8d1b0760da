//! The reporter's Grafana side: a run's annotation opens when the run starts and closes, as a
//! region tagged with the outcome, when it ends. Queued in the outbox like every report.

use serde_json::json;
use time::OffsetDateTime;

use super::grafana::{fields, RunLabel};
use super::Reporter;
use crate::store::{AnnotationKind, NewAnnotation};

/// Milliseconds since the epoch, Grafana's time unit.
fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl Reporter {
    /// A run started at `at`: its annotation opens, saying `text`.
    pub async fn annotation_started(
        &self,
        incident: i64,
        run: i64,
        label: RunLabel<'_>,
        text: &str,
        at: OffsetDateTime,
    ) {
        let mut body = fields(&label, None, text);
        body["time"] = json!(millis(at));
        self.annotate(incident, run, AnnotationKind::Create, body)
            .await;
    }

    /// A run ended at `at` with `outcome`: its annotation becomes a region, saying `text`.
    pub async fn annotation_ended(
        &self,
        incident: i64,
        run: i64,
        label: RunLabel<'_>,
        outcome: &str,
        text: &str,
        at: OffsetDateTime,
    ) {
        let mut body = fields(&label, Some(outcome), text);
        body["timeEnd"] = json!(millis(at));
        self.annotate(incident, run, AnnotationKind::Complete, body)
            .await;
    }

    /// Queues the delivery when annotations are on.
    async fn annotate(
        &self,
        incident: i64,
        run: i64,
        kind: AnnotationKind,
        body: serde_json::Value,
    ) {
        let Some(wake) = &self.grafana else {
            return;
        };
        let annotation = NewAnnotation {
            incident_id: incident,
            run_id: run,
            kind,
            body,
        };
        match self
            .store
            .enqueue_annotation(&annotation, OffsetDateTime::now_utc())
            .await
        {
            Ok(Some(_)) => wake.notify_one(),
            Ok(None) => tracing::debug!(
                incident,
                run,
                kind = kind.as_str(),
                "Annotation already queued."
            ),
            Err(e) => {
                tracing::error!(incident, run, error.message = %e, "Could not queue a Grafana annotation.")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_milliseconds() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_764_219_300_123_456_789)
            .expect("a valid time");
        assert_eq!(millis(at), 1_764_219_300_123);
    }
}
