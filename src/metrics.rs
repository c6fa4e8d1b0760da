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

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::alert::Source;
use crate::store::{RunOutcome, StoreGauges};

/// Upper bounds of the step duration buckets, in seconds: a Docker inspect to a slow restart.
const STEP_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// One metric family: name, help text and label names, in render order.
#[derive(Debug)]
struct Family {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
}

const WEBHOOKS: Family = Family {
    name: "alert_responder_webhooks_total",
    help: "Webhook requests answered, by source and HTTP status code.",
    labels: &["source", "status"],
};
const DUPLICATES: Family = Family {
    name: "alert_responder_alerts_duplicate_total",
    help: "Alerts received again (same fingerprint, start and status): acknowledged, not acted on.",
    labels: &["source"],
};
const RUNS: Family = Family {
    name: "alert_responder_runs_total",
    help: "Responder runs finished, by responder and outcome.",
    labels: &["responder", "outcome"],
};
const BUDGET_REFUSALS: Family = Family {
    name: "alert_responder_budget_refusals_total",
    help: "Destructive steps refused by a responder's budget (cooldown or N per window).",
    labels: &["responder"],
};
const DELIVERY_FAILURES: Family = Family {
    name: "alert_responder_outbox_delivery_failures_total",
    help: "Failed attempts to deliver an outbox message, by channel and kind of failure.",
    labels: &["channel", "kind"],
};
const STEP_DURATION: Family = Family {
    name: "alert_responder_step_duration_seconds",
    help: "Time from a step's start to its end, by step kind.",
    labels: &["kind"],
};

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

/// Label values, in the family's label order.
type Key = Vec<String>;

#[derive(Debug, Clone, PartialEq)]
struct Histogram {
    /// Observations per bucket (not cumulative), one more than the bounds for `+Inf`.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    fn new(bounds: &[f64]) -> Self {
        Self {
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    fn observe(&mut self, bounds: &[f64], value: f64) {
        let index = bounds.partition_point(|b| *b < value);
        self.counts[index] += 1;
        self.sum += value;
    }
}

#[derive(Debug, Default)]
struct Families {
    webhooks: BTreeMap<Key, u64>,
    duplicates: BTreeMap<Key, u64>,
    runs: BTreeMap<Key, u64>,
    budget_refusals: BTreeMap<Key, u64>,
    delivery_failures: BTreeMap<Key, u64>,
    step_duration: BTreeMap<Key, Histogram>,
}

/// The service's counters and histogram; share it as `Arc<Metrics>`.
#[derive(Debug, Default)]
pub struct Metrics {
    families: Mutex<Families>,
}

fn key(values: &[&str]) -> Key {
    values.iter().map(|v| (*v).to_owned()).collect()
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Families> {
        // Counters stay meaningful after a panic elsewhere; never poison the scrape.
        self.families.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A webhook request answered with `status`.
    pub fn webhook(&self, source: Source, status: u16) {
        let status = status.to_string();
        *self
            .lock()
            .webhooks
            .entry(key(&[source.as_str(), &status]))
            .or_default() += 1;
    }

    /// `count` duplicates in an accepted webhook (0 still creates the series).
    pub fn duplicates(&self, source: Source, count: usize) {
        *self
            .lock()
            .duplicates
            .entry(key(&[source.as_str()]))
            .or_default() += count as u64;
    }

    /// A run of `responder` (a catalog name) ended with `outcome`.
    pub fn run_finished(&self, responder: &str, outcome: RunOutcome) {
        *self
            .lock()
            .runs
            .entry(key(&[responder, outcome.as_str()]))
            .or_default() += 1;
    }

    /// A destructive step of `responder` was refused by its budget.
    pub fn budget_refused(&self, responder: &str) {
        *self
            .lock()
            .budget_refusals
            .entry(key(&[responder]))
            .or_default() += 1;
    }

    /// A Slack delivery attempt failed.
    pub fn slack_delivery_failed(&self, kind: DeliveryFailure) {
        self.delivery_failed("slack", kind);
    }

    /// A delivery attempt to `channel` (`slack`, `pagerduty`) failed.
    pub fn delivery_failed(&self, channel: &str, kind: DeliveryFailure) {
        *self
            .lock()
            .delivery_failures
            .entry(key(&[channel, kind.as_str()]))
            .or_default() += 1;
    }

    /// A started step of `kind` (a step kind name) ended after `elapsed`.
    pub fn step_finished(&self, kind: &str, elapsed: Duration) {
        self.lock()
            .step_duration
            .entry(key(&[kind]))
            .or_insert_with(|| Histogram::new(STEP_BUCKETS))
            .observe(STEP_BUCKETS, elapsed.as_secs_f64());
    }

    /// The exposition text; the store's gauges are left out when they could not be read.
    pub fn render(&self, gauges: Option<&StoreGauges>) -> String {
        let mut out = String::new();
        {
            let f = self.lock();
            counters(&mut out, &WEBHOOKS, &f.webhooks);
            counters(&mut out, &DUPLICATES, &f.duplicates);
            counters(&mut out, &RUNS, &f.runs);
            counters(&mut out, &BUDGET_REFUSALS, &f.budget_refusals);
            counters(&mut out, &DELIVERY_FAILURES, &f.delivery_failures);
            histograms(&mut out, &STEP_DURATION, STEP_BUCKETS, &f.step_duration);
        }
        if let Some(g) = gauges {
            store_gauges(&mut out, g);
        }
        out
    }
}

fn store_gauges(out: &mut String, g: &StoreGauges) {
    let gauges: [(&str, &str, f64); 5] = [
        (
            "alert_responder_journal_pending",
            "Alerts in the intake journal not yet processed by the dispatcher.",
            g.journal_pending as f64,
        ),
        (
            "alert_responder_journal_oldest_pending_age_seconds",
            "Age of the oldest unprocessed journal entry (0 when none).",
            g.journal_oldest_pending_age.as_secs_f64(),
        ),
        (
            "alert_responder_outbox_pending",
            "Messages waiting in the outbox for delivery (retries included).",
            g.outbox_pending as f64,
        ),
        (
            "alert_responder_approvals_pending",
            "Steps waiting for a human's approval, not yet expired.",
            g.approvals_pending as f64,
        ),
        (
            "alert_responder_incidents_open",
            "Incidents not yet resolved.",
            g.incidents_open as f64,
        ),
    ];
    for (name, help, value) in gauges {
        header(out, name, help, "gauge");
        let _ = writeln!(out, "{name} {value}");
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let help = help.replace('\\', r"\\").replace('\n', r"\n");
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// `{a="x",b="y"}` with values escaped as the format requires; `extra` is appended (`le`).
fn labels(names: &[&str], values: &[String], extra: Option<(&str, &str)>) -> String {
    let pairs: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| (*n, v.as_str()))
        .chain(extra)
        .map(|(n, v)| {
            let v = v
                .replace('\\', r"\\")
                .replace('"', r#"\""#)
                .replace('\n', r"\n");
            format!("{n}=\"{v}\"")
        })
        .collect();
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

fn counters(out: &mut String, family: &Family, series: &BTreeMap<Key, u64>) {
    header(out, family.name, family.help, "counter");
    for (values, count) in series {
        let labels = labels(family.labels, values, None);
        let _ = writeln!(out, "{}{labels} {count}", family.name);
    }
}

fn histograms(
    out: &mut String,
    family: &Family,
    bounds: &[f64],
    series: &BTreeMap<Key, Histogram>,
) {
    header(out, family.name, family.help, "histogram");
    let name = family.name;
    for (values, h) in series {
        let mut cumulative = 0;
        let les = bounds.iter().map(f64::to_string).chain(["+Inf".to_owned()]);
        for (le, count) in les.zip(&h.counts) {
            cumulative += count;
            let labels = labels(family.labels, values, Some(("le", &le)));
            let _ = writeln!(out, "{name}_bucket{labels} {cumulative}");
        }
        let labels = labels(family.labels, values, None);
        let _ = writeln!(out, "{name}_sum{labels} {}", h.sum);
        let _ = writeln!(out, "{name}_count{labels} {cumulative}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_help_type_and_escaped_labels() {
        let family = Family {
            name: "x_total",
            help: "Things\\done\nhere.",
            labels: &["a", "b"],
        };
        let mut series = BTreeMap::new();
        series.insert(key(&["plain", "q\"uote"]), 2);
        series.insert(key(&["back\\slash", "new\nline"]), 1);
        let mut out = String::new();
        counters(&mut out, &family, &series);
        assert_eq!(
            out,
            "# HELP x_total Things\\\\done\\nhere.\n\
             # TYPE x_total counter\n\
             x_total{a=\"back\\\\slash\",b=\"new\\nline\"} 1\n\
             x_total{a=\"plain\",b=\"q\\\"uote\"} 2\n"
        );
    }

    #[test]
    fn histograms_render_cumulative_buckets_sum_and_count() {
        let bounds = &[0.5, 2.0];
        let mut h = Histogram::new(bounds);
        for v in [0.25, 0.5, 1.0, 3.0] {
            h.observe(bounds, v);
        }
        let mut series = BTreeMap::new();
        series.insert(key(&["docker_stats"]), h);
        let mut out = String::new();
        histograms(&mut out, &STEP_DURATION, bounds, &series);
        let n = "alert_responder_step_duration_seconds";
        assert_eq!(
            out,
            format!(
                "# HELP {n} Time from a step's start to its end, by step kind.\n\
                 # TYPE {n} histogram\n\
                 {n}_bucket{{kind=\"docker_stats\",le=\"0.5\"}} 2\n\
                 {n}_bucket{{kind=\"docker_stats\",le=\"2\"}} 3\n\
                 {n}_bucket{{kind=\"docker_stats\",le=\"+Inf\"}} 4\n\
                 {n}_sum{{kind=\"docker_stats\"}} 4.75\n\
                 {n}_count{{kind=\"docker_stats\"}} 4\n"
            )
        );
    }

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
            "alert_responder_webhooks_total{source=\"alertmanager\",status=\"200\"} 2",
            "alert_responder_webhooks_total{source=\"alertmanager\",status=\"400\"} 1",
            "alert_responder_alerts_duplicate_total{source=\"alertmanager\"} 1",
            "alert_responder_runs_total{responder=\"high-memory\",outcome=\"escalated\"} 1",
            "alert_responder_budget_refusals_total{responder=\"high-memory\"} 1",
            "alert_responder_outbox_delivery_failures_total{channel=\"slack\",kind=\"rate_limited\"} 1",
            "alert_responder_step_duration_seconds_bucket{kind=\"docker_restart\",le=\"1\"} 0",
            "alert_responder_step_duration_seconds_bucket{kind=\"docker_restart\",le=\"2.5\"} 1",
            "alert_responder_step_duration_seconds_count{kind=\"docker_restart\"} 1",
            "# TYPE alert_responder_journal_pending gauge",
            "alert_responder_journal_pending 3",
            "alert_responder_journal_oldest_pending_age_seconds 2.5",
            "alert_responder_outbox_pending 4",
            "alert_responder_approvals_pending 1",
            "alert_responder_incidents_open 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }
        assert!(!m.render(None).contains("journal_pending"));
    }
}
