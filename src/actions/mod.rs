//! The closed set of step kinds a playbook can use, and the one `match` that dispatches them.
//!
//! Each system gets one file (`docker.rs`, ...) holding its step kinds: their YAML fields,
//! their typed outputs and how they run. Actions know nothing of the store, Slack or the
//! dispatcher: they get a client context and a [`StepEnv`] to render their fields, and return a
//! [`StepOutput`] (or an [`ActionError`]) that the engine records.

mod api;
pub mod disk_usage;
pub mod docker;
pub mod find_files;
pub mod iceberg;
pub mod kafka;
pub mod prometheus;
pub mod report;
pub mod schema_registry;
pub mod spark;
pub mod spark_sql;

#[cfg(test)]
mod reference;

use async_trait::async_trait;
use minijinja::Value;
use regex::Regex;
use serde::Deserialize;

use crate::template::{TemplateError, Templates, Tmpl};

/// One step's action, exactly as written in `responders/*.yaml` (`action: docker_restart`, ...).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Container state, restart count, OOMKilled.
    DockerInspect(docker::Inspect),
    /// Live memory use as `docker stats` computes it.
    DockerStats(docker::Stats),
    /// Every container matching a pattern: state, restarts, memory.
    DockerList(docker::List),
    /// The container's recent log lines, optionally filtered.
    DockerLogs(docker::Logs),
    /// A command (argv, never a shell string) inside the container.
    DockerExec(docker::Exec),
    /// Restart the container (destructive).
    DockerRestart(docker::Restart),
    /// Start a stopped container (destructive).
    DockerStart(docker::Start),
    /// Post a templated message to the thread.
    Report(report::Report),
    /// One query through the `spark-sql` CLI in a container; its rows.
    SparkSql(spark_sql::SparkSql),
    /// The versions registered under one Schema Registry subject.
    SchemaRegistryVersions(schema_registry::SchemaRegistryVersions),
    /// Sizes of the directories under a path, graded green/yellow/red.
    DiskUsage(disk_usage::DiskUsage),
    /// Old files under a path, listed and optionally deleted (destructive with `delete`).
    FindFiles(find_files::FindFiles),
    /// A consumer group's lag, sampled twice and classified.
    KafkaConsumerLag(kafka::ConsumerLag),
    /// The Spark standalone master's workers and one application's state.
    SparkMasterStatus(spark::MasterStatus),
    /// A Prometheus range query, summed across series, reduced to a trend.
    PrometheusRange(prometheus::Range),
    /// K2's Iceberg maintenance script, dry run or `--execute` (destructive), parsed.
    IcebergMaintenance(iceberg::IcebergMaintenance),
    /// Every consumer group's lag, sampled twice and graded (the weekly review).
    KafkaConsumerGroups(kafka::ConsumerGroups),
}

impl Action {
    /// The kind behind this action. The only `match` over action kinds in the crate.
    pub fn kind(&self) -> &dyn StepKind {
        match self {
            Action::DockerInspect(a) => a,
            Action::DockerStats(a) => a,
            Action::DockerList(a) => a,
            Action::DockerLogs(a) => a,
            Action::DockerExec(a) => a,
            Action::DockerRestart(a) => a,
            Action::DockerStart(a) => a,
            Action::Report(a) => a,
            Action::SparkSql(a) => a,
            Action::SchemaRegistryVersions(a) => a,
            Action::DiskUsage(a) => a,
            Action::FindFiles(a) => a,
            Action::KafkaConsumerLag(a) => a,
            Action::SparkMasterStatus(a) => a,
            Action::PrometheusRange(a) => a,
            Action::IcebergMaintenance(a) => a,
            Action::KafkaConsumerGroups(a) => a,
        }
    }

    /// Mutable access to the kind, so the catalog can compile its templates in place.
    pub fn kind_mut(&mut self) -> &mut dyn StepKind {
        match self {
            Action::DockerInspect(a) => a,
            Action::DockerStats(a) => a,
            Action::DockerList(a) => a,
            Action::DockerLogs(a) => a,
            Action::DockerExec(a) => a,
            Action::DockerRestart(a) => a,
            Action::DockerStart(a) => a,
            Action::Report(a) => a,
            Action::SparkSql(a) => a,
            Action::SchemaRegistryVersions(a) => a,
            Action::DiskUsage(a) => a,
            Action::FindFiles(a) => a,
            Action::KafkaConsumerLag(a) => a,
            Action::SparkMasterStatus(a) => a,
            Action::PrometheusRange(a) => a,
            Action::IcebergMaintenance(a) => a,
            Action::KafkaConsumerGroups(a) => a,
        }
    }
}

/// What every step kind provides: its name, its outputs, and how to plan and run it.
#[async_trait]
pub trait StepKind: Send + Sync + std::fmt::Debug {
    /// The YAML name, e.g. `docker_restart`.
    fn name(&self) -> &'static str;

    /// The output fields a successful run sets, checked against templates at load.
    fn outputs(&self) -> &'static [&'static str];

    /// Whether it changes the system: destructive steps need budget and do nothing in dry-run.
    fn destructive(&self) -> bool {
        false
    }

    /// Every templated field, with its YAML name, for the catalog to compile.
    fn templates_mut(&mut self) -> Vec<(&'static str, &mut Tmpl)>;

    /// A one-line plan such as `restart container k2-x`, used for dry-run and messages.
    fn plan(&self, env: &StepEnv<'_>) -> Result<String, ActionError>;

    /// Performs the step. The engine applies the step timeout around this future.
    async fn run(&self, ctx: &ActionCtx, env: &StepEnv<'_>) -> Result<StepOutput, ActionError>;
}

/// Clients the actions use, built once by the app.
#[derive(Debug, Clone)]
pub struct ActionCtx {
    /// The Docker engine (local socket or `DOCKER_HOST`).
    pub docker: bollard::Docker,
    /// HTTP client for status APIs (Spark master, Schema Registry, Prometheus).
    pub http: reqwest::Client,
}

impl ActionCtx {
    /// Clients with the service's defaults: Docker at `docker_host` (`unix://…`, `tcp://…`)
    /// or the local socket, HTTP with a 10 s timeout so a hung API cannot outlive its step.
    ///
    /// # Errors
    /// When `docker_host` is malformed or the HTTP client cannot be built.
    pub fn connect(docker_host: Option<&str>) -> Result<Self, String> {
        let docker = match docker_host {
            Some(host) => bollard::Docker::connect_with_host(host),
            None => bollard::Docker::connect_with_defaults(),
        }
        .map_err(|e| format!("Docker client (DOCKER_HOST): {e}"))?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .user_agent(concat!("alert-responder/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self { docker, http })
    }
}

/// Anchored patterns a container name must match before any step may touch it; the default
/// (no patterns) permits nothing.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    patterns: Vec<Regex>,
}

impl AllowList {
    /// Compiles patterns such as `k2-.*`, anchored at both ends like Alertmanager's `=~`.
    ///
    /// # Errors
    /// The index of the first invalid pattern, with the regex error.
    pub fn new(patterns: &[String]) -> Result<Self, (usize, regex::Error)> {
        let patterns = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| crate::pattern::anchored(p).map_err(|e| (i, e)))
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    /// Whether `name` matches one of the patterns.
    pub fn permits(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| p.is_match(name))
    }
}

/// What a step sees while it runs: the compiled templates, the run's variables, the allow-list.
#[derive(Debug)]
pub struct StepEnv<'a> {
    /// The catalog's compiled templates.
    pub templates: &'a Templates,
    /// `alert`, `target`, `steps`, ...: the context templates render against.
    pub vars: &'a Value,
    /// The responder's allowed targets.
    pub allow: &'a AllowList,
}

impl StepEnv<'_> {
    /// Renders a templated field.
    pub fn render(&self, tmpl: &Tmpl) -> Result<String, ActionError> {
        Ok(self.templates.render(tmpl, self.vars)?)
    }

    /// Renders a container field and checks it is one Docker container name inside the
    /// allow-list. The name becomes part of an Engine API URL path, so a value like
    /// `k2-x/../../images/...` that a loose pattern (`k2-.*`) permits must never reach it.
    pub fn container(&self, tmpl: &Tmpl) -> Result<String, ActionError> {
        let name = self.render(tmpl)?;
        if !is_container_name(&name) {
            return Err(ActionError::NotAContainerName(shorten(&name)));
        }
        if self.allow.permits(&name) {
            Ok(name)
        } else {
            Err(ActionError::NotAllowed(shorten(&name)))
        }
    }
}

/// Docker's grammar for container names, `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 255 bytes.
pub fn is_container_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.len() <= 255
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The first 64 characters of untrusted text, for an error message.
fn shorten(text: &str) -> String {
    crate::text::cut(text, 64)
}

/// A successful step's typed outputs (as a JSON object) and a one-line summary for people.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutput {
    /// Output fields, readable by later steps as `steps.<id>.<field>`.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// E.g. `memory 93.8% (60.0 MiB of 64.0 MiB)`.
    pub summary: String,
    /// Series to chart in the thread (a `prometheus_range` step with `chart: true`); kept
    /// out of `fields` so a run's stored outputs stay small.
    pub chart: Option<crate::chart::Plot>,
}

impl StepOutput {
    /// Builds an output from a typed struct; its field names must match [`StepKind::outputs`].
    pub fn from_typed<T: serde::Serialize>(typed: &T, summary: String) -> Self {
        let fields = match serde_json::to_value(typed) {
            Ok(serde_json::Value::Object(map)) => map,
            // Output types are plain structs of numbers, strings and lists, so this is unreachable;
            // an empty map keeps the run going and the summary still says what happened.
            _ => serde_json::Map::new(),
        };
        Self {
            fields,
            summary,
            chart: None,
        }
    }
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The rendered container is outside the responder's allow-list; nothing was touched.
    #[error("container {0:?} is not in the responder's allow-list; not touched")]
    NotAllowed(String),
    /// The rendered container is not a Docker container name (shown shortened); nothing was
    /// touched.
    #[error("{0:?} is not a Docker container name; not touched")]
    NotAContainerName(String),
    /// A field's template failed to render (e.g. a label the alert does not carry).
    #[error("template: {0}")]
    Template(#[from] TemplateError),
    /// The container does not exist.
    #[error("container {0:?} not found")]
    NotFound(String),
    /// The Docker engine refused or failed the call.
    #[error("docker: {0}")]
    Docker(String),
    /// The step ran but could not produce its result.
    #[error("{0}")]
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_docker_container_names_pass() {
        for ok in ["k2-bronze-binance-stream", "a", "K2_x.1", &"k".repeat(255)] {
            assert!(is_container_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-k2",
            "k2-x/../../images/create",
            "k2-x; touch /tmp/pwned",
            "k2-$(id)",
            "k2-`id`",
            "k2-x\nk2-y",
            "k2-'x'",
            "k2-x?force=true",
            "k2-é",
            &"k".repeat(256),
        ] {
            assert!(!is_container_name(bad), "{bad:?}");
        }
        assert_eq!(shorten(&"x".repeat(100)).chars().count(), 65);
    }
}
