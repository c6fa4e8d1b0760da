//! How steps, runs and approvals end: the engine decides these, the store keeps them as their
//! names, messages and the API show them. They live with the engine so the store depends on
//! it, never the reverse.

use serde::Serialize;

/// `as_str` and `parse` from one table of stored names, so the two cannot disagree; the
/// serde names (snake_case) are the same, as a test checks.
macro_rules! stored_names {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The stored name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            /// The value a stored name stands for; `None` for a name this version never writes.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $($name => Some($ty::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use stored_names;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Created, not yet claimed (waiting for its target's lock or a slot).
    Pending,
    /// A replica runs it now.
    Running,
    /// It ended; see its [`RunOutcome`].
    Finished,
    /// A crash stopped it; reported at the next start.
    Interrupted,
}

stored_names!(RunState {
    Pending => "pending",
    Running => "running",
    Finished => "finished",
    Interrupted => "interrupted",
});

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

stored_names!(StepState {
    Started => "started",
    Succeeded => "succeeded",
    Failed => "failed",
    Skipped => "skipped",
    Refused => "refused",
    Cancelled => "cancelled",
    Planned => "planned",
    Unknown => "unknown",
});

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

stored_names!(RunOutcome {
    Succeeded => "succeeded",
    Failed => "failed",
    Escalated => "escalated",
    Cancelled => "cancelled",
    Interrupted => "interrupted",
    Preempted => "preempted",
});

/// Where a step's request for a human decision stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// Waiting for a decision.
    Pending,
    /// An allowed approver said yes: the step runs.
    Approved,
    /// An allowed approver said no: the step does not run.
    Denied,
    /// Nobody decided in time: the step does not run.
    Expired,
    /// The alert resolved (or the run stopped) first.
    Cancelled,
    /// The target died and another incident's run took it.
    Preempted,
    /// An option of a choice that was not chosen.
    Refused,
}

stored_names!(ApprovalState {
    Pending => "pending",
    Approved => "approved",
    Denied => "denied",
    Expired => "expired",
    Cancelled => "cancelled",
    Preempted => "preempted",
    Refused => "refused",
});

impl ApprovalState {
    /// Whether a human decided it (approved or denied).
    pub fn decided(self) -> bool {
        matches!(self, ApprovalState::Approved | ApprovalState::Denied)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The stored names, the JSON names and `parse` agree, so the API and the pages show
    /// what the database holds.
    pub(crate) fn agree<T: Serialize + Copy + PartialEq + std::fmt::Debug>(
        all: &[T],
        as_str: fn(T) -> &'static str,
        parse: fn(&str) -> Option<T>,
    ) {
        for &value in all {
            let json = serde_json::to_value(value).expect("a name serializes");
            assert_eq!(json, serde_json::json!(as_str(value)), "{value:?}");
            assert_eq!(parse(as_str(value)), Some(value));
        }
        assert_eq!(parse("no-such-state"), None);
    }

    #[test]
    fn stored_json_and_parsed_names_agree() {
        agree(StepState::ALL, StepState::as_str, StepState::parse);
        agree(RunOutcome::ALL, RunOutcome::as_str, RunOutcome::parse);
        agree(
            ApprovalState::ALL,
            ApprovalState::as_str,
            ApprovalState::parse,
        );
        agree(RunState::ALL, RunState::as_str, RunState::parse);
    }
}
