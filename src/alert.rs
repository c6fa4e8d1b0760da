//! The canonical alert model every source produces and everything downstream consumes.
//!
//! A source turns its wire format into [`Alert`]s; from then on nothing in the service knows
//! whether an alert came from Alertmanager, PagerDuty or Docker.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Label or annotation names to values, sorted so rendering and hashing are stable.
pub type Labels = BTreeMap<String, String>;

/// Whether an alert is firing, has resolved, or only brings news about an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The condition holds: responders may act.
    Firing,
    /// The condition cleared: report and cancel, never act.
    Resolved,
    /// News about an existing incident (a PagerDuty acknowledgement or note): shown in its
    /// thread, never routed, never acted on.
    Update,
}

impl Status {
    /// The lowercase wire name (`firing` / `resolved`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
            Status::Update => "update",
        }
    }
}

/// Where an alert came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Prometheus Alertmanager webhook (payload version 4).
    Alertmanager,
    /// The Docker engine's event stream (OOM kills, deaths).
    Docker,
    /// PagerDuty Webhooks V3 (`incident.triggered` / `incident.resolved`).
    #[serde(rename = "pagerduty")]
    PagerDuty,
}

impl Source {
    /// The snake_case name used in the store and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Alertmanager => "alertmanager",
            Source::Docker => "docker",
            Source::PagerDuty => "pagerduty",
        }
    }
}

/// One alert instance, as every source reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The source that reported it.
    pub source: Source,
    /// Stable identity of the alert across notifications (Alertmanager's fingerprint).
    pub fingerprint: String,
    /// Firing or resolved.
    pub status: Status,
    /// Identifying labels (`alertname`, `container`, `severity`, ...).
    pub labels: Labels,
    /// Descriptive annotations (`summary`, `description`, `runbook_url`, ...).
    pub annotations: Labels,
    /// When the alert started firing.
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    /// When it resolved; `None` while firing (Alertmanager sends Go's zero time then).
    #[serde(with = "time::serde::rfc3339::option")]
    pub ends_at: Option<OffsetDateTime>,
    /// Link back to the expression that produced it, when the source has one.
    pub generator_url: Option<String>,
}

/// The annotation that marks an alert nothing will ever resolve (e.g. a container's death):
/// its incident closes once its runs are done.
pub const ONE_SHOT: &str = "one_shot";

/// The annotation carrying the source's id of an update event, part of its dedup key.
pub const EVENT_ID: &str = "event_id";
/// The annotation naming the PagerDuty event of an update (`acknowledged`, `annotated`).
pub const PD_EVENT: &str = "pd_event";
/// The annotation naming who caused an update (PagerDuty's agent summary).
pub const PD_AGENT: &str = "pd_agent";
/// The annotation carrying a PagerDuty note's text.
pub const PD_NOTE: &str = "pd_note";

impl Alert {
    /// Whether nothing will ever send this alert's resolution (see [`ONE_SHOT`]).
    pub fn is_one_shot(&self) -> bool {
        self.annotations.get(ONE_SHOT).map(String::as_str) == Some("true")
    }

    /// The `alertname` label, or `"unnamed"` when a source sent none.
    pub fn name(&self) -> &str {
        self.labels
            .get("alertname")
            .map(String::as_str)
            .unwrap_or("unnamed")
    }

    /// The key that makes redeliveries of this alert instance no-ops: the same fingerprint,
    /// start and status means the same notification, whichever HA peer or retry sent it.
    /// Updates are many per incident, so theirs adds the source's event id ([`EVENT_ID`]).
    pub fn dedup_key(&self) -> String {
        let key = format!(
            "{}:{}:{}:{}",
            self.source.as_str(),
            self.fingerprint,
            self.starts_at.unix_timestamp_nanos(),
            self.status.as_str()
        );
        match (self.status, self.annotations.get(EVENT_ID)) {
            (Status::Update, Some(event)) => format!("{key}:{event}"),
            _ => key,
        }
    }
}
