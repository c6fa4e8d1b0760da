//! Steps marked `approval: required`: the engine asks its observer and acts on the answer.

use super::engine::{end, not_reached, stop, RunInput, RunObserver, RunResult};
use super::outcome::{RunOutcome, StepState};
use super::Step;

/// What a human decided about a step that needs approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalOutcome {
    /// Go ahead.
    Approved {
        /// Who approved.
        by: String,
    },
    /// Do not.
    Denied {
        /// Who denied.
        by: String,
    },
    /// Nobody decided in time.
    Expired {
        /// How long it waited, e.g. `30m`.
        waited: String,
    },
    /// The alert resolved (or the service stopped) while waiting.
    Cancelled,
}

/// Asks for approval; `Err` carries the run's end when the answer is anything but yes.
/// `rest` starts with the step itself.
pub(super) async fn await_approval(
    step: &Step,
    plan: &str,
    rest: &[Step],
    input: &RunInput<'_>,
    observer: &dyn RunObserver,
    done: &[String],
) -> Result<(), RunResult> {
    let (summary, outcome, escalation) = match observer.approval(step, plan, input.cancel).await {
        ApprovalOutcome::Approved { .. } => return Ok(()),
        ApprovalOutcome::Cancelled => {
            let resolved = "cancelled: the alert resolved while waiting for approval";
            return Err(stop(input, rest, resolved, observer, done).await);
        }
        ApprovalOutcome::Denied { by } => (
            format!("denied by {by}: {plan}"),
            RunOutcome::Cancelled,
            None,
        ),
        ApprovalOutcome::Expired { waited } => {
            let why = format!("approval for {} expired after {waited}: {plan}", step.id);
            (why.clone(), RunOutcome::Escalated, Some(why))
        }
    };
    observer
        .not_run(step, &end(StepState::Refused, summary.clone(), None, None))
        .await;
    not_reached(
        &rest[1..],
        "not reached: the step before was not approved",
        observer,
    )
    .await;
    Err(RunResult {
        outcome,
        summary: format!("{summary}; nothing changed by it"),
        escalation,
    })
}
