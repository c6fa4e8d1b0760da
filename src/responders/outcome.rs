//! How steps and runs end: the engine decides these, the store keeps them, messages and the
//! API show them. They live with the engine so the store depends on it, never the reverse.

use serde::Serialize;

/// How a step ended (or why it never ran).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Running now, or a crash left it so.
    Started,
    /// Ran and met its expectation.
    Succeeded,
    /// Errored, timed out, or its expectation failed.
    Failed,
    /// Its `when` condition was false.
    Skipped,
    /// A budget, rate limit or allow-list refused it.
    Refused,
    /// A resolve (or shutdown) stopped it before it started.
    Cancelled,
    /// Dry-run: what it would have done.
    Planned,
    /// A crash interrupted it: it may or may not have happened.
    Unknown,
}

impl StepState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Started => "started",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
            StepState::Refused => "refused",
            StepState::Cancelled => "cancelled",
            StepState::Planned => "planned",
            StepState::Unknown => "unknown",
        }
    }
}

/// A step's end state with what it produced.
#[derive(Debug, Clone)]
pub struct StepEnd {
    /// How it ended.
    pub state: StepState,
    /// One line for people.
    pub summary: String,
    /// Typed outputs, when it ran.
    pub outputs: Option<serde_json::Value>,
    /// The error, when it failed.
    pub error: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Every step that ran succeeded.
    Succeeded,
    /// A step failed.
    Failed,
    /// A budget or limit stopped a destructive step; a human was called.
    Escalated,
    /// A resolve stopped it.
    Cancelled,
    /// A crash stopped it.
    Interrupted,
    /// Its target died while it only observed: another incident's run took the target.
    Preempted,
}

impl RunOutcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
            RunOutcome::Escalated => "escalated",
            RunOutcome::Cancelled => "cancelled",
            RunOutcome::Interrupted => "interrupted",
            RunOutcome::Preempted => "preempted",
        }
    }
}
