//! Responders: YAML playbooks of typed steps, compiled at load, run by the [`engine`].

mod approval;
mod choice;
pub mod conditions;
pub mod context;
pub mod engine;
pub mod escalation;
pub mod outcome;
pub mod overrides;
pub mod preemption;
pub mod schedule;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::actions::{Action, AllowList};
use crate::limits::Budget;
use crate::template::{Expr, Tmpl};

/// Whether destructive steps really happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Act.
    #[serde(rename = "live")]
    Live,
    /// Plan and report destructive steps; run only read-only ones.
    #[serde(rename = "dry-run")]
    DryRun,
}

impl Mode {
    /// `live` or `dry-run`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::DryRun => "dry-run",
        }
    }

    /// Parses `live` / `dry-run` (also `dry_run`, `dryrun`).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "live" => Some(Mode::Live),
            "dry-run" | "dry_run" | "dryrun" => Some(Mode::DryRun),
            _ => None,
        }
    }

    /// The stricter of two modes: a global dry-run wins over a responder's live.
    pub fn strictest(self, other: Mode) -> Mode {
        if self == Mode::DryRun || other == Mode::DryRun {
            Mode::DryRun
        } else {
            Mode::Live
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compiled playbook.
#[derive(Debug, Clone)]
pub struct Responder {
    /// Unique name routes refer to.
    pub name: String,
    /// What it does, in the runbook's words.
    pub description: String,
    /// The file it came from.
    pub file: String,
    /// What budgets, locks and the allow-list key on, e.g. `{{ alert.labels.container }}`.
    pub target: Tmpl,
    /// Targets it may touch.
    pub allow: AllowList,
    /// The allow-list as written, for messages.
    pub allow_patterns: Vec<String>,
    /// Labels that must match before anything runs (e.g. a value that enters a query).
    pub require_labels: Vec<(String, regex::Regex)>,
    /// Budget for its destructive steps, per target.
    pub budget: Budget,
    /// Whether `budget` was left out of the file, so the default applies.
    pub default_budget: bool,
    /// Its own mode; the global mode can only make it stricter.
    pub mode: Option<Mode>,
    /// Bound on the whole run.
    pub timeout: Duration,
    /// Steps in order.
    pub steps: Vec<Step>,
    /// When it runs without an alert (`schedule:`), if ever.
    pub schedule: Option<schedule::Schedule>,
    /// Whether the file declares no `target:` (a scheduled report about no one container):
    /// its runs then take its own name as their target, for locks and budgets.
    pub targetless: bool,
    /// The Slack channel of its incidents (`channel:`); `SLACK_CHANNEL` when `None`.
    pub channel: Option<String>,
    /// The runbook priority its escalations carry (`priority:`, default P2).
    pub priority: escalation::Priority,
    /// How long after a destructive step succeeded its alert is watched for a recurrence
    /// (`watch:`; 30m when it has a destructive step, `None` when it has none or `watch: off`).
    pub watch: Option<Duration>,
    /// Recurrences within a day on one target after which its destructive steps there wait
    /// for an approval until `/responder trust` (`ineffective_limit:`, default 2).
    pub ineffective_limit: u32,
}

impl Responder {
    /// Why `target` may not be touched by this responder, if it may not: outside its allow-list.
    /// A responder without a target runs on its own name, which no allow-list needs to name.
    pub fn target_refusal(&self, target: &str) -> Option<String> {
        let own_name = self.targetless && target == self.name;
        (!own_name && !self.allow.permits(target)).then(|| {
            format!(
                "target `{target}` is outside {}'s allow-list ({}); not touched",
                self.name,
                self.allow_patterns.join(", ")
            )
        })
    }
}

/// What happens after a step fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Stop the run and escalate (default).
    #[default]
    Stop,
    /// Record the failure and go on (diagnostics that are nice to have).
    Continue,
}

/// One compiled step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Unique within the playbook; later steps read `steps.<id>.<output>`.
    pub id: String,
    /// What it does.
    pub action: Action,
    /// Runs only when this holds.
    pub when: Option<Expr>,
    /// Must hold after it ran (with `output` bound to its outputs), else it failed.
    pub expect: Option<Expr>,
    /// Wait this long before starting (e.g. let a restarted container settle).
    pub after: Option<Duration>,
    /// Bound on the step.
    pub timeout: Duration,
    /// Stop or continue when it fails.
    pub on_failure: OnFailure,
    /// A human must approve it before it runs (`approval: required`).
    pub approval: bool,
    /// The group of options it belongs to (`choice:`): consecutive steps sharing it are
    /// offered together and at most one of them is approved and run.
    pub choice: Option<String>,
    /// Said to whoever is asked to approve it, with its plan (`warning:`), e.g. a data-loss risk.
    pub warning: Option<String>,
}

impl Step {
    /// What the step will do, as the approval request and dry-run say it: its action's plan,
    /// then its warning if it has one.
    pub fn plan(&self, env: &crate::actions::StepEnv<'_>) -> String {
        let kind = self.action.kind();
        let plan = kind
            .plan(env)
            .unwrap_or_else(|e| format!("{} ({e})", kind.name()));
        match &self.warning {
            Some(warning) => format!("{plan}. :warning: {warning}"),
            None => plan,
        }
    }
}
