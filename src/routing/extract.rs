//! Labels taken from a PagerDuty incident before routing: from its first alert's details
//! (Alertmanager's integration lists the firing alerts' labels there), then from the
//! catalog's `extract:` rules, regexes with named groups over the incident's fields.
//!
//! Pure: the details are fetched by dispatch (see `dispatch::enrich`) and handed in.
//!
//! Precedence, first wins: labels the webhook itself carries, then the details, then the
//! rules in catalog order. The one exception is the placeholder `alertname` the source gives
//! a title it does not recognise ([`PD_DEFAULT_ALERTNAME`]): it only says "unknown", so a real
//! name replaces it. Every value passes a shape check first (a container must be a Docker
//! container name); a refused value is dropped and said so, never used.

mod details;

use std::fmt;

use regex::Regex;
use serde::Serialize;

use crate::alert::PD_DEFAULT_ALERTNAME;
use crate::alert::{Alert, Labels, Source, Status};

pub use details::details_labels;

/// The annotation listing what was extracted and from where, one `label=value (from)` each.
pub const PD_LABELS: &str = "pd_labels";
/// The annotation saying what could not be used (a failed lookup, a refused value).
pub const PD_LABELS_NOTE: &str = "pd_labels_note";

/// Longest value taken; longer ones are refused rather than cut.
const MAX_VALUE: usize = 256;

/// A PagerDuty incident field a rule can read: the labels the PagerDuty source sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PdField {
    /// The incident title.
    PdTitle,
    /// The service's name.
    PdService,
    /// `high` or `low`.
    PdUrgency,
    /// The priority's name, e.g. `P1`.
    PdPriority,
}

impl PdField {
    /// Every field, in the order error messages list them.
    pub const ALL: [Self; 4] = [
        Self::PdTitle,
        Self::PdService,
        Self::PdUrgency,
        Self::PdPriority,
    ];

    /// The field as written in the catalog, which is also the label it is read from.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PdTitle => "pd_title",
            Self::PdService => "pd_service",
            Self::PdUrgency => "pd_urgency",
            Self::PdPriority => "pd_priority",
        }
    }

    /// The field named `name`, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl fmt::Display for PdField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One compiled `extract:` rule.
#[derive(Debug, Clone)]
pub struct Extraction {
    /// The field it reads.
    pub field: PdField,
    /// The pattern, anchored at both ends; its named groups are the labels it sets.
    pub regex: Regex,
    /// Where it was written, e.g. `routes/pagerduty.yaml: extract[0]`.
    pub origin: String,
}

/// One label taken, and where from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Taken {
    /// The label.
    pub label: String,
    /// Its value.
    pub value: String,
    /// Where it came from, for people.
    pub from: String,
}

/// What enrichment did to one alert.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LabelReport {
    /// Labels set, in the order they were taken.
    pub taken: Vec<Taken>,
    /// What could not be used, and why.
    pub notes: Vec<String>,
}

impl LabelReport {
    /// Whether there is anything to tell.
    pub fn is_empty(&self) -> bool {
        self.taken.is_empty() && self.notes.is_empty()
    }
}

/// Where details labels are said to come from.
pub const FROM_DETAILS: &str = "the PagerDuty API: the incident's first alert, body.details";

/// Whether extraction applies: a firing PagerDuty incident (resolves and updates join the
/// incident by fingerprint and are never routed).
pub fn applies(alert: &Alert) -> bool {
    alert.source == Source::PagerDuty && alert.status == Status::Firing
}

/// Takes labels into `alert` from `details` (already parsed), then from `rules`; returns
/// what it took (record it with [`annotate`]).
pub fn apply(alert: &mut Alert, details: Option<&Labels>, rules: &[Extraction]) -> LabelReport {
    let mut report = LabelReport::default();
    if !applies(alert) {
        return report;
    }
    if let Some(details) = details {
        for (label, value) in details {
            take(&mut alert.labels, label, value, FROM_DETAILS, &mut report);
        }
    }
    for rule in rules {
        let Some(text) = alert.labels.get(rule.field.as_str()) else {
            continue;
        };
        let Some(caps) = rule.regex.captures(text.trim()) else {
            continue;
        };
        let found: Vec<(String, String)> = rule
            .regex
            .capture_names()
            .flatten()
            .filter_map(|name| Some((name.to_owned(), caps.name(name)?.as_str().to_owned())))
            .collect();
        let from = format!("{} by {}", rule.field, rule.origin);
        for (label, value) in found {
            take(&mut alert.labels, &label, &value, &from, &mut report);
        }
    }
    report
}

/// Records `report` in the alert's [`PD_LABELS`] and [`PD_LABELS_NOTE`] annotations, which
/// travel with it into the record, the incident's thread and `simulate`.
pub fn annotate(alert: &mut Alert, report: &LabelReport) {
    if !report.taken.is_empty() {
        let line: Vec<String> = report
            .taken
            .iter()
            .map(|t| format!("{}={} ({})", t.label, t.value, t.from))
            .collect();
        alert.annotations.insert(PD_LABELS.into(), line.join("; "));
    }
    if !report.notes.is_empty() {
        alert
            .annotations
            .insert(PD_LABELS_NOTE.into(), report.notes.join(" "));
    }
}

/// What the incident's thread says about its labels, from the annotations [`annotate`] set.
pub fn thread_line(alert: &Alert) -> Option<String> {
    let taken = alert
        .annotations
        .get(PD_LABELS)
        .map(|t| format!("Labels taken from PagerDuty: {t}."));
    let note = alert.annotations.get(PD_LABELS_NOTE).cloned();
    let parts: Vec<String> = taken.into_iter().chain(note).collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Sets `label` unless already set (or set to the placeholder name), if its value passes.
fn take(labels: &mut Labels, label: &str, value: &str, from: &str, report: &mut LabelReport) {
    if !settable(label) {
        return;
    }
    let placeholder =
        label == "alertname" && labels.get(label).map(String::as_str) == Some(PD_DEFAULT_ALERTNAME);
    if labels.contains_key(label) && !placeholder {
        return;
    }
    let value = value.trim();
    if let Err(why) = value_shape(label, value) {
        report
            .notes
            .push(format!("{label} from {from} refused: {why}."));
        return;
    }
    labels.insert(label.to_owned(), value.to_owned());
    report.taken.push(Taken {
        label: label.to_owned(),
        value: value.to_owned(),
        from: from.to_owned(),
    });
}

/// Whether extraction may set `label`: a label name, not one of the source's own `pd_*`
/// facts, nor a manual trigger's.
pub fn settable(label: &str) -> bool {
    let mut chars = label.chars();
    let first = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !label.starts_with("pd_")
        && !label.starts_with("manual_")
}

/// Whether `value` may become `label`: short, printable and, for a container, a Docker
/// container name. Values are data everywhere (argv, never a shell), this keeps them tidy.
pub fn value_shape(label: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("empty value".to_owned());
    }
    if value.chars().count() > MAX_VALUE {
        return Err(format!("longer than {MAX_VALUE} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{value:?} holds control characters"));
    }
    if label == "container" && !container_name(value) {
        return Err(format!(
            "{value:?} is not a container name ([A-Za-z0-9][A-Za-z0-9_.-]*)"
        ));
    }
    Ok(())
}

/// Docker's container name shape.
fn container_name(value: &str) -> bool {
    let mut chars = value.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
pub(crate) mod tests;
