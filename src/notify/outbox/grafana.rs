//! Delivers runs' Grafana annotations from the outbox, oldest first within each incident, so
//! a run's completion never overtakes its creation. Grafana down, 429 or 5xx delays them; a
//! refusal (bad token, no permission, annotation deleted) is recorded and not retried.

use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{claimed, idle, leads, or_none, record_until_done, retry_delay};
use crate::metrics::{DeliveryFailure, Metrics};
use crate::notify::grafana::{call_for, AnnotationsApi, Call, GrafanaConfig, GrafanaError};
use crate::store::{DueAnnotation, Store};

/// The elected sender's role: with several replicas one sends the annotations.
const GRAFANA_SENDER: &str = "outbox-grafana";

/// Sends due annotation deliveries until `shutdown`; woken by `wake` when some are queued.
pub async fn deliver_grafana(
    store: Arc<dyn Store>,
    grafana: Arc<dyn AnnotationsApi>,
    config: GrafanaConfig,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    loop {
        let due = if leads(store.as_ref(), GRAFANA_SENDER).await {
            or_none(store.due_annotations(OffsetDateTime::now_utc(), 32).await)
        } else {
            Vec::new()
        };
        for delivery in &due {
            if let Err(failure) = send(store.as_ref(), grafana.as_ref(), &config, delivery).await {
                metrics.delivery_failed("grafana", failure);
            }
        }
        if due.is_empty() && !idle(&wake, &shutdown).await {
            let _ = store.resign(GRAFANA_SENDER).await;
            return;
        }
    }
}

/// Sends one delivery and records the result; says how it failed, if it did.
async fn send(
    store: &dyn Store,
    grafana: &dyn AnnotationsApi,
    config: &GrafanaConfig,
    d: &DueAnnotation,
) -> Result<(), DeliveryFailure> {
    let now = OffsetDateTime::now_utc();
    if !claimed(store, d.id, now).await {
        return Ok(());
    }
    let result = match call_for(d, config) {
        Call::Create(fields) => grafana.create(&fields).await.map(Some),
        Call::Update(id, fields) => grafana.update(id, &fields).await.map(|()| None),
    };
    let (kind, after) = match &result {
        Ok(created) => {
            tracing::info!(
                message = d.id,
                incident = d.incident_id,
                run = d.run_id,
                kind = d.kind.as_str(),
                "Grafana accepted an annotation."
            );
            let record = || store.annotation_sent(d.id, *created, now);
            if let Err(e) = record_until_done(record, d.id).await {
                tracing::error!(message = d.id, error.message = %e, "Could not record a delivery result.");
            }
            return Ok(());
        }
        Err(GrafanaError::RateLimited { retry_after }) => {
            (DeliveryFailure::RateLimited, *retry_after)
        }
        Err(GrafanaError::Unavailable(_)) => (DeliveryFailure::Unavailable, None),
        Err(GrafanaError::Rejected(_)) => (DeliveryFailure::Rejected, None),
    };
    let error = result.err().map(|e| e.to_string()).unwrap_or_default();
    let retry_at = retry_delay(kind, after, d.attempts).map(|wait| now + wait);
    if retry_at.is_some() {
        tracing::warn!(message = d.id, incident = d.incident_id, kind = d.kind.as_str(), error.message = %error, "Grafana annotation delivery failed; will retry.");
    } else {
        tracing::error!(message = d.id, incident = d.incident_id, kind = d.kind.as_str(), error.message = %error, "Grafana refused an annotation; giving up on it.");
    }
    if let Err(e) = store.message_failed(d.id, &error, retry_at).await {
        tracing::error!(message = d.id, error.message = %e, "Could not record a delivery result.");
    }
    Err(kind)
}
