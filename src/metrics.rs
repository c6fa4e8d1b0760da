//! Prometheus metrics: the counters and the histogram the service updates as it works, and their
//! rendering, with gauges read from the store at scrape time, in the text exposition format
//! 0.0.4 for `GET /metrics`.
//!
//! `/metrics` is unauthenticated, like `/healthz`, so it carries counts only: no secrets, no
//! alert text, no targets. Every label value comes from a closed set (source, HTTP status,
//! outcome, failure kind) or from the catalog (responder name, step kind), so the number of
//! series is bounded by the catalog, never by what alerts contain.
//!
//! One handle is built in `app.rs` and passed to what records (sources, dispatcher, outbox);
//! there are no global statics, so every test app has its own counts.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};

use crate::alert::Source;
use crate::store::{RunOutcome, StoreGauges};

/// Upper bounds of the step duration buckets, in seconds: a Docker inspect to a slow restart.
const STEP_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Why a delivery attempt failed; `rejected` is not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryFailure {
    /// The channel asked us to slow down.
    RateLimited,
    /// The channel could not be reached or failed transiently.
    Unavailable,
    /// The channel refused the message for good.
    Rejected,
}

impl DeliveryFailure {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryFailure::RateLimited => "rate_limited",
            DeliveryFailure::Unavailable => "unavailable",
            DeliveryFailure::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    source: &'static str,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    responder: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResponderLabels {
    responder: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    channel: String,
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    kind: String,
}

/// Registers `metric` under `name` and returns the handle that updates it.
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

fn step_histogram() -> Histogram {
    Histogram::new(STEP_BUCKETS.iter().copied())
}

/// The service's counters and histogram (prometheus-client, lock-free per series); share it as
/// `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    webhooks: Family<WebhookLabels, Counter>,
    duplicates: Family<SourceLabels, Counter>,
    runs: Family<RunLabels, Counter>,
    budget_refusals: Family<ResponderLabels, Counter>,
    ineffective_runs: Family<ResponderLabels, Counter>,
    delivery_failures: Family<DeliveryLabels, Counter>,
    step_duration: Family<StepLabels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        // Counter names lose `_total` here: the encoder adds it. Help texts lose their final
        // period: the encoder adds one.
        let webhooks = registered(
            &mut registry,
            "alert_responder_webhooks",
            "Webhook requests answered, by source and HTTP status code",
            Family::default(),
        );
        let duplicates = registered(
            &mut registry,
            "alert_responder_alerts_duplicate",
            "Alerts received again (same fingerprint, start and status): acknowledged, not acted on",
            Family::default(),
        );
        let runs = registered(
            &mut registry,
            "alert_responder_runs",
            "Responder runs finished, by responder and outcome",
            Family::default(),
        );
        let budget_refusals = registered(
            &mut registry,
            "alert_responder_budget_refusals",
            "Destructive steps refused by a responder's budget (cooldown or N per window)",
            Family::default(),
        );
        let ineffective_runs = registered(
            &mut registry,
            "alert_responder_ineffective_runs",
            "Runs whose fix did not hold: their alert fired again on the same target within the responder's watch",
            Family::default(),
        );
        let delivery_failures = registered(
            &mut registry,
            "alert_responder_outbox_delivery_failures",
            "Failed attempts to deliver an outbox message, by channel and kind of failure",
            Family::default(),
        );
        let step_duration = registered(
            &mut registry,
            "alert_responder_step_duration_seconds",
            "Time from a step's start to its end, by step kind",
            Family::new_with_constructor(step_histogram as fn() -> Histogram),
        );
        Self {
            registry,
            webhooks,
            duplicates,
            runs,
            budget_refusals,
            ineffective_runs,
            delivery_failures,
            step_duration,
        }
    }

    /// A webhook request answered with `status`.
    pub fn webhook(&self, source: Source, status: u16) {
        let labels = WebhookLabels {
            source: source.as_str(),
            status: status.to_string(),
        };
        self.webhooks.get_or_create(&labels).inc();
    }

    /// `count` duplicates in an accepted webhook (0 still creates the series).
    pub fn duplicates(&self, source: Source, count: usize) {
        let labels = SourceLabels {
            source: source.as_str(),
        };
        self.duplicates.get_or_create(&labels).inc_by(count as u64);
    }

    /// A run of `responder` (a catalog name) ended with `outcome`.
    pub fn run_finished(&self, responder: &str, outcome: RunOutcome) {
        let labels = RunLabels {
            responder: responder.to_owned(),
            outcome: outcome.as_str(),
        };
        self.runs.get_or_create(&labels).inc();
    }

    /// A run of `responder` did not hold: its alert fired again within the watch.
    pub fn run_ineffective(&self, responder: &str) {
        let labels = ResponderLabels {
            responder: responder.to_owned(),
        };
        self.ineffective_runs.get_or_create(&labels).inc();
    }

    /// A destructive step of `responder` was refused by its budget.
    pub fn budget_refused(&self, responder: &str) {
        let labels = ResponderLabels {
            responder: responder.to_owned(),
        };
        self.budget_refusals.get_or_create(&labels).inc();
    }

    /// A Slack delivery attempt failed.
    pub fn slack_delivery_failed(&self, kind: DeliveryFailure) {
        self.delivery_failed("slack", kind);
    }

    /// A delivery attempt to `channel` (`slack`, `pagerduty`, `grafana`) failed.
    pub fn delivery_failed(&self, channel: &str, kind: DeliveryFailure) {
        let labels = DeliveryLabels {
            channel: channel.to_owned(),
            kind: kind.as_str(),
        };
        self.delivery_failures.get_or_create(&labels).inc();
    }

    /// A started step of `kind` (a step kind name) ended after `elapsed`.
    pub fn step_finished(&self, kind: &str, elapsed: Duration) {
        let labels = StepLabels {
            kind: kind.to_owned(),
        };
        self.step_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// The exposition text; the store's gauges are left out when they could not be read.
    pub fn render(&self, gauges: Option<&StoreGauges>) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        if let Some(g) = gauges {
            let _ = prometheus_text::encode(&mut out, &store_gauges(g));
        }
        out
    }
}

/// The store's gauges, read at scrape time: a registry of their own, built per scrape, so a
/// store that cannot answer leaves them out instead of showing stale values.
fn store_gauges(g: &StoreGauges) -> Registry {
    let gauges: [(&str, &str, f64); 5] = [
        (
            "alert_responder_journal_pending",
            "Alerts in the intake journal not yet processed by the dispatcher",
            g.journal_pending as f64,
        ),
        (
            "alert_responder_journal_oldest_pending_age_seconds",
            "Age of the oldest unprocessed journal entry (0 when none)",
            g.journal_oldest_pending_age.as_secs_f64(),
        ),
        (
            "alert_responder_outbox_pending",
            "Messages waiting in the outbox for delivery (retries included)",
            g.outbox_pending as f64,
        ),
        (
            "alert_responder_approvals_pending",
            "Steps waiting for a human's approval, not yet expired",
            g.approvals_pending as f64,
        ),
        (
            "alert_responder_incidents_open",
            "Incidents not yet resolved",
            g.incidents_open as f64,
        ),
    ];
    let mut registry = Registry::default();
    for (name, help, value) in gauges {
        let gauge = Gauge::<f64, AtomicU64>::default();
        gauge.set(value);
        registry.register(name, help, gauge);
    }
    registry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_renders_every_family_and_the_gauges() {
        let m = Metrics::new();
        m.webhook(Source::Alertmanager, 200);
        m.webhook(Source::Alertmanager, 200);
        m.webhook(Source::Alertmanager, 400);
        m.duplicates(Source::Alertmanager, 1);
        m.run_finished("high-memory", RunOutcome::Escalated);
        m.budget_refused("high-memory");
        m.slack_delivery_failed(DeliveryFailure::RateLimited);
        m.step_finished("docker_restart", Duration::from_millis(1500));
        let gauges = StoreGauges {
            journal_pending: 3,
            journal_oldest_pending_age: Duration::from_millis(2500),
            outbox_pending: 4,
            approvals_pending: 1,
            incidents_open: 2,
        };
        let text = m.render(Some(&gauges));
        for line in [
            "# HELP alert_responder_webhooks_total Webhook requests answered, by source and HTTP status code.",
            "# TYPE alert_responder_webhooks_total counter",
            "alert_responder_webhooks_total{source=\"alertmanager\",status=\"200\"} 2",
            "alert_responder_webhooks_total{source=\"alertmanager\",status=\"400\"} 1",
            "alert_responder_alerts_duplicate_total{source=\"alertmanager\"} 1",
            "alert_responder_runs_total{responder=\"high-memory\",outcome=\"escalated\"} 1",
            "alert_responder_budget_refusals_total{responder=\"high-memory\"} 1",
            "alert_responder_outbox_delivery_failures_total{channel=\"slack\",kind=\"rate_limited\"} 1",
            "# TYPE alert_responder_step_duration_seconds histogram",
            "alert_responder_step_duration_seconds_bucket{kind=\"docker_restart\",le=\"1\"} 0",
            "alert_responder_step_duration_seconds_bucket{kind=\"docker_restart\",le=\"2.5\"} 1",
            "alert_responder_step_duration_seconds_bucket{kind=\"docker_restart\",le=\"+Inf\"} 1",
            "alert_responder_step_duration_seconds_sum{kind=\"docker_restart\"} 1.5",
            "alert_responder_step_duration_seconds_count{kind=\"docker_restart\"} 1",
            "# TYPE alert_responder_journal_pending gauge",
            "alert_responder_journal_pending 3.0",
            "alert_responder_journal_oldest_pending_age_seconds 2.5",
            "alert_responder_outbox_pending 4.0",
            "alert_responder_approvals_pending 1.0",
            "alert_responder_incidents_open 2.0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }
        assert!(!text.contains(".."), "one period per help text:\n{text}");
        assert!(!m.render(None).contains("journal_pending"));
    }

    #[test]
    fn catalog_label_values_are_escaped() {
        let m = Metrics::new();
        m.run_finished("back\\slash \"quoted\"\nline", RunOutcome::Succeeded);
        let text = m.render(None);
        assert!(
            text.contains(r#"responder="back\\slash \"quoted\"\nline""#),
            "{text}"
        );
    }
}
