//! The canonical alert model every source produces and everything downstream consumes.
//!
//! A source turns its wire format into [`Alert`]s; from then on nothing in the service knows
//! whether an alert came from Alertmanager, PagerDuty or Docker.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub mod slot;

/// RFC 3339 text, the one timestamp format the store and the API use.
pub fn format_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

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

    /// The status of a stored name; `None` for a name this version never writes.
    pub fn parse(name: &str) -> Option<Self> {
        [Status::Firing, Status::Resolved, Status::Update]
            .into_iter()
            .find(|s| s.as_str() == name)
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
    /// A person, through the Slack command (`run <responder> <target>`): a manual [`Trigger`].
    Slack,
    /// A responder's `schedule:`: one alert per slot ([`slot::Slot`]).
    Schedule,
}

impl Source {
    /// The snake_case name used in the store and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Alertmanager => "alertmanager",
            Source::Docker => "docker",
            Source::PagerDuty => "pagerduty",
            Source::Slack => "slack",
            Source::Schedule => "schedule",
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
/// The `alertname` of a PagerDuty incident whose title names no alert the routes know.
pub const PD_DEFAULT_ALERTNAME: &str = "PagerDutyIncident";

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

    /// What the alert is about when no responder rendered a target (no route matched, or
    /// the route refused it before its target): the first of [`TARGET_LABELS`] it carries.
    /// Alerts not acted on fold by their name and this, as acted-on ones do by theirs.
    pub fn target_hint(&self) -> Option<&str> {
        TARGET_LABELS
            .iter()
            .find_map(|label| self.labels.get(*label))
            .map(String::as_str)
            .filter(|value| !value.trim().is_empty())
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

/// Labels that name what an alert is about, in order: the container (the shipped responders'
/// target), else Prometheus's scrape instance.
pub const TARGET_LABELS: &[&str] = &["container", "instance"];

/// The label a manual trigger names its responder with.
pub const MANUAL_RESPONDER: &str = "manual_responder";
/// The label a manual trigger names its target with.
pub const MANUAL_TARGET: &str = "manual_target";

/// A person asking for one responder to run on one target, now: it travels the same journal,
/// budgets, allow-lists and locks as an alert, as an [`Alert`] from [`Source::Slack`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// Unique per request (Slack's `trigger_id`), so the journal keeps each request once.
    pub id: String,
    /// The responder to run.
    pub responder: String,
    /// What it acts on (a container name).
    pub target: String,
    /// Who asked, e.g. `@alice (U0123)`.
    pub requested_by: String,
}

impl Trigger {
    /// The fingerprint of this trigger's incident.
    pub fn fingerprint(&self) -> String {
        format!("manual:{}", self.id)
    }

    /// The alert the journal records: firing, one-shot (nothing will resolve it), labelled with
    /// the responder and target; `container` too, which playbooks read their target from.
    pub fn into_alert(self, now: OffsetDateTime) -> Alert {
        let fingerprint = self.fingerprint();
        let mut labels = Labels::new();
        labels.insert("alertname".into(), "ManualRun".into());
        labels.insert("container".into(), self.target.clone());
        labels.insert(MANUAL_RESPONDER.into(), self.responder.clone());
        labels.insert(MANUAL_TARGET.into(), self.target.clone());
        let mut annotations = Labels::new();
        annotations.insert(
            "summary".into(),
            format!(
                "{} on {} requested by {}",
                self.responder, self.target, self.requested_by
            ),
        );
        annotations.insert("requested_by".into(), self.requested_by);
        annotations.insert(ONE_SHOT.into(), "true".into());
        Alert {
            source: Source::Slack,
            fingerprint,
            status: Status::Firing,
            labels,
            annotations,
            starts_at: now,
            ends_at: None,
            generator_url: None,
        }
    }
}

impl Alert {
    /// The (responder, target) a manual trigger asks for; `None` for every other alert.
    pub fn manual_request(&self) -> Option<(&str, &str)> {
        if self.source != Source::Slack {
            return None;
        }
        let responder = self.labels.get(MANUAL_RESPONDER)?;
        let target = self.labels.get(MANUAL_TARGET)?;
        Some((responder, target))
    }
}

/// A firing Alertmanager alert with `labels`, for unit tests of what reads alerts.
#[cfg(test)]
pub(crate) fn firing_for_tests(labels: &[(&str, &str)]) -> Alert {
    Alert {
        source: Source::Alertmanager,
        fingerprint: "f".into(),
        status: Status::Firing,
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        annotations: Labels::new(),
        starts_at: time::OffsetDateTime::UNIX_EPOCH,
        ends_at: None,
        generator_url: None,
    }
}
