//! The variables templates and conditions read during a run.
//!
//! `alert`, `target`, `responder`, `mode`, `config` (the service's settings for playbooks,
//! e.g. `config.kafka_container`), `previous` (each step's outputs in this responder's previous
//! run on the same target), `steps` (outputs of the steps that ran so far), `failed` (the error
//! of each step that failed so far, for a report to say why a check could not run) and, in
//! `expect`, `output` (the step's own outputs).

use std::collections::BTreeMap;

use minijinja::Value;
use serde_json::{Map, Value as Json};

use super::Mode;
use crate::alert::format_time;
use crate::alert::Alert;

/// Everything a run's templates read that does not change from step to step.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The triggering alert.
    pub alert: &'a Alert,
    /// The rendered target ("" while the target itself is being rendered).
    pub target: &'a str,
    /// Responder name.
    pub responder: &'a str,
    /// Live or dry-run.
    pub mode: Mode,
    /// Settings exposed to playbooks.
    pub config: &'a BTreeMap<String, String>,
    /// Step outputs of the previous run of this responder on this target.
    pub previous: &'a Map<String, Json>,
}

impl Scope<'_> {
    /// The template context with the outputs of the steps that ran so far.
    pub fn vars(&self, steps: &Map<String, Json>) -> Value {
        self.context(steps, &Map::new(), None)
    }

    /// As [`Scope::vars`], plus `failed`: the error of each step that failed so far.
    pub fn vars_with_failures(
        &self,
        steps: &Map<String, Json>,
        failed: &Map<String, Json>,
    ) -> Value {
        self.context(steps, failed, None)
    }

    /// As [`Scope::vars`], plus `output`: the current step's own outputs, for `expect`.
    pub fn vars_with_output(
        &self,
        steps: &Map<String, Json>,
        output: Option<&Map<String, Json>>,
    ) -> Value {
        self.context(steps, &Map::new(), output)
    }

    fn context(
        &self,
        steps: &Map<String, Json>,
        failed: &Map<String, Json>,
        output: Option<&Map<String, Json>>,
    ) -> Value {
        let alert = self.alert;
        let alert_json = serde_json::json!({
            "labels": alert.labels,
            "annotations": alert.annotations,
            "name": alert.name(),
            "status": alert.status.as_str(),
            "fingerprint": alert.fingerprint,
            "starts_at": format_time(alert.starts_at),
            "ends_at": alert.ends_at.map(format_time),
            "source": alert.source.as_str(),
            "generator_url": alert.generator_url,
        });
        Value::from_serialize(serde_json::json!({
            "alert": alert_json,
            "target": self.target,
            "responder": self.responder,
            "mode": self.mode.as_str(),
            "config": self.config,
            "previous": self.previous,
            "steps": steps,
            "failed": failed,
            "output": output,
        }))
    }
}
