//! Runs one responder for one alert: steps in order, each gated by its `when`, bounded by its
//! timeout, checked by its `expect`, and destructive ones admitted by budget or planned in
//! dry-run. Progress is reported to a [`RunObserver`]; the engine itself stores nothing.
//!
//! Cancellation (a resolve) is honoured between steps and during `after:` waits: a step that
//! has started is allowed to finish, so a container is never left half-restarted. Preemption
//! (the target died, [`Preemption`]) also cuts short an observing step in progress, and never
//! comes while a destructive step is in flight.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value as Json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use std::collections::BTreeMap;

use super::approval::await_approval;
pub use super::approval::ApprovalOutcome;
pub use super::choice::ChoiceOutcome;
use super::choice::{self, Offer};
use super::conditions::{expectation, gate, Gate};
use super::context::Scope;
use super::outcome::{RunOutcome, StepEnd, StepState};
use super::preemption::{self, Preemption};
use super::{Mode, OnFailure, Responder, Step};
use crate::actions::{ActionCtx, StepEnv};
use crate::alert::Alert;
use crate::limits::Admission;
use crate::template::Templates;

/// Receives a run's progress; dispatch implements it with the store and the outbox.
#[async_trait]
pub trait RunObserver: Send + Sync {
    /// A step is about to run; returns a handle passed back to [`RunObserver::finished`].
    async fn started(&self, step: &Step) -> i64;
    /// A started step ended.
    async fn finished(&self, step: &Step, handle: i64, end: &StepEnd);
    /// A step did not run (skipped, refused, cancelled, planned in dry-run).
    async fn not_run(&self, step: &Step, end: &StepEnd);
    /// May this destructive step act now? (budget, global rate limit)
    async fn admit(&self, step: &Step) -> Admission;
    /// Asks a human to approve `plan` and waits for the answer, the expiry or `cancel`.
    async fn approval(
        &self,
        step: &Step,
        plan: &str,
        cancel: &CancellationToken,
    ) -> ApprovalOutcome;
    /// A step that ended asked for a chart of its series in the thread (`chart: true`).
    async fn chart(&self, _step: &Step, _plot: crate::chart::Plot) {}
    /// Offers `options` (each step with its plan) of choice `group` together and waits for
    /// one to be approved, a denial, the expiry or `cancel`.
    async fn choose(
        &self,
        group: &str,
        options: &[(&Step, String)],
        cancel: &CancellationToken,
    ) -> ChoiceOutcome;
}

/// Everything one run needs.
#[derive(Debug)]
pub struct RunInput<'a> {
    /// The playbook.
    pub responder: &'a Responder,
    /// The alert that triggered it.
    pub alert: &'a Alert,
    /// The rendered, allow-listed target.
    pub target: &'a str,
    /// Live or dry-run (already the strictest of global and responder).
    pub mode: Mode,
    /// Compiled templates.
    pub templates: &'a Templates,
    /// Clients.
    pub actions: &'a ActionCtx,
    /// Fired by a resolve, a preemption or shutdown.
    pub cancel: &'a CancellationToken,
    /// Marks destructive steps in flight; says whether, and by what, the run was preempted.
    pub preemption: &'a Preemption,
    /// Settings exposed to playbooks as `config.*`.
    pub config: &'a BTreeMap<String, String>,
    /// Outputs of the previous run on this target, as `previous.*`.
    pub previous: &'a Map<String, Json>,
    /// Every destructive step waits for an approval, as if `approval: required`: this
    /// responder's fixes on this target did not hold too often (`ineffective_limit:`).
    pub approval_forced: bool,
}

impl RunInput<'_> {
    pub(super) fn scope(&self) -> Scope<'_> {
        Scope {
            alert: self.alert,
            target: self.target,
            responder: &self.responder.name,
            mode: self.mode,
            config: self.config,
            previous: self.previous,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// Outcome.
    pub outcome: RunOutcome,
    /// One line for people.
    pub summary: String,
    /// Why a human must look, when one must.
    pub escalation: Option<String>,
}

/// Runs the responder to completion, cancellation or the run timeout.
pub async fn run(input: RunInput<'_>, observer: &dyn RunObserver) -> RunResult {
    let deadline = Instant::now() + input.responder.timeout;
    let mut outputs: Map<String, Json> = Map::new();
    // Why each failed step failed, as `failed.<id>`: a report that goes on after a failed
    // check (`on_failure: continue`) can then say why it has no numbers for it.
    let mut errors: Map<String, Json> = Map::new();
    let mut done: Vec<String> = Vec::new();
    let mut choices = BTreeMap::new();
    let steps = &input.responder.steps;
    for (index, step) in steps.iter().enumerate() {
        const RESOLVED: &str = "cancelled: the alert resolved before this step started";
        if input.cancel.is_cancelled() {
            return stop(&input, &steps[index..], RESOLVED, observer, &done).await;
        }
        // A choice is asked when its first option is reached; dry-run plans every option.
        let chosen = match (&step.choice, input.mode) {
            (Some(group), Mode::Live) => {
                let offer =
                    choice::offer(step, group, &mut choices, &input, &outputs, observer, &done)
                        .await;
                match offer {
                    Offer::Run => true,
                    Offer::Skip => continue,
                    Offer::Stop(result) => return result,
                }
            }
            _ => false,
        };
        let vars = input.scope().vars_with_failures(&outputs, &errors);
        // The chosen option's `when` held when it was offered, and no step ran since.
        let gate = if chosen {
            Gate::Open
        } else {
            gate(step, input.templates, &vars)
        };
        match gate {
            Gate::Open => {}
            Gate::Closed(why) => {
                let end = end(StepState::Skipped, why, None, None);
                observer.not_run(step, &end).await;
                continue;
            }
            Gate::Broken { failure, error } => {
                let end = end(StepState::Failed, failure.clone(), None, Some(error));
                observer.not_run(step, &end).await;
                not_reached(
                    &steps[index + 1..],
                    "not reached: the run stopped",
                    observer,
                )
                .await;
                return failed(failure, &done);
            }
        }
        if let Some(after) = step.after {
            tokio::select! {
                _ = tokio::time::sleep(after) => {}
                _ = input.cancel.cancelled() => {
                    return stop(&input, &steps[index..], RESOLVED, observer, &done).await;
                }
            }
        }
        let env = StepEnv {
            templates: input.templates,
            vars: &vars,
            allow: &input.responder.allow,
        };
        let kind = step.action.kind();
        if kind.destructive() {
            let plan = step.plan(&env);
            if input.mode == Mode::DryRun {
                let ask = if step.approval || input.approval_forced {
                    "ask for approval, then "
                } else {
                    ""
                };
                let summary = format!("dry-run: would {ask}{plan}");
                observer
                    .not_run(step, &end(StepState::Planned, summary, None, None))
                    .await;
                done.push(format!("would {ask}{plan}"));
                continue;
            }
            if (step.approval || input.approval_forced) && !chosen {
                if let Err(stopped) =
                    await_approval(step, &plan, &steps[index..], &input, observer, &done).await
                {
                    return stopped;
                }
            }
            // From here to the step's end the run cannot be preempted; preempted before it,
            // the step never starts (and spends no budget).
            if input.preemption.begin_destructive(&step.id).is_err() {
                return stop(&input, &steps[index..], RESOLVED, observer, &done).await;
            }
            if let Admission::Refused { reason } = observer.admit(step).await {
                input.preemption.end_destructive(None);
                // Budgets are per step: "restart budget exhausted", "cleanup budget exhausted".
                let why = format!(
                    "{} budget exhausted for {} ({reason})",
                    step.id, input.target
                );
                observer
                    .not_run(
                        step,
                        &end(StepState::Refused, format!("refused: {why}"), None, None),
                    )
                    .await;
                not_reached(
                    &steps[index + 1..],
                    "not reached: the run was escalated",
                    observer,
                )
                .await;
                return RunResult {
                    outcome: RunOutcome::Escalated,
                    summary: format!("{why}: escalating to a human"),
                    escalation: Some(why),
                };
            }
        }
        let handle = observer.started(step).await;
        let limit = step
            .timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        let action = tokio::time::timeout(limit, kind.run(input.actions, &env));
        let result = tokio::select! {
            result = action => result,
            // Only an observing step is cut short: a destructive one holds off preemption.
            _ = input.preemption.preempted(), if !kind.destructive() => {
                let by = input.preemption.preempted_by().unwrap_or_default();
                let why = format!("cut short: {}", preemption::reason(by));
                let cut = end(StepState::Cancelled, why, None, None);
                observer.finished(step, handle, &cut).await;
                let rest = &steps[index + 1..];
                return stop(&input, rest, RESOLVED, observer, &done).await;
            }
        };
        let result = match result {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "timed out after {}",
                humantime::format_duration(round(limit))
            )),
        };
        let mut plot = None;
        let step_end = match result {
            Ok(mut out) => {
                plot = out.chart.take();
                let fields = Json::Object(out.fields.clone());
                outputs.insert(step.id.clone(), fields.clone());
                let scope = input.scope();
                match expectation(step, input.templates, &scope, &outputs, &out.fields) {
                    Ok(()) => end(StepState::Succeeded, out.summary, Some(fields), None),
                    Err(e) => end(
                        StepState::Failed,
                        format!("{}; {e}", out.summary),
                        Some(fields),
                        Some(e),
                    ),
                }
            }
            Err(e) => end(
                StepState::Failed,
                format!("{} failed: {e}", kind.name()),
                None,
                Some(e),
            ),
        };
        observer.finished(step, handle, &step_end).await;
        // After the step's own reply, so the chart follows what it illustrates.
        if let Some(plot) = plot.filter(|_| step_end.state == StepState::Succeeded) {
            observer.chart(step, plot).await;
        }
        if let (StepState::Failed, Some(error)) = (step_end.state, &step_end.error) {
            errors.insert(step.id.clone(), Json::String(error.clone()));
        }
        if kind.destructive() {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            input.preemption.end_destructive(Some(now));
        }
        if step_end.state == StepState::Failed && step.on_failure == OnFailure::Stop {
            not_reached(
                &steps[index + 1..],
                "not reached: the run stopped",
                observer,
            )
            .await;
            return failed(
                format!(
                    "step {} failed: {}",
                    step.id,
                    step_end.error.unwrap_or_default()
                ),
                &done,
            );
        }
        if kind.destructive() && step_end.state == StepState::Succeeded {
            done.push(step_end.summary);
        }
    }
    RunResult {
        outcome: RunOutcome::Succeeded,
        summary: if done.is_empty() {
            "no change needed".to_owned()
        } else {
            done.join("; ")
        },
        escalation: None,
    }
}

fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs().max(1))
}

pub(super) fn end(
    state: StepState,
    summary: String,
    outputs: Option<Json>,
    error: Option<String>,
) -> StepEnd {
    StepEnd {
        state,
        summary,
        outputs,
        error,
    }
}

pub(super) async fn not_reached(steps: &[Step], reason: &str, observer: &dyn RunObserver) {
    let state = if reason.starts_with("cancelled") {
        StepState::Cancelled
    } else {
        StepState::Skipped
    };
    for step in steps {
        observer
            .not_run(step, &end(state, reason.to_owned(), None, None))
            .await;
    }
}

/// Ends a run whose token fired: preempted when the target died (the rest says so), else
/// cancelled for `resolved` (a resolve, or shutdown).
pub(super) async fn stop(
    input: &RunInput<'_>,
    rest: &[Step],
    resolved: &str,
    observer: &dyn RunObserver,
    done: &[String],
) -> RunResult {
    let Some(by) = input.preemption.preempted_by() else {
        not_reached(rest, resolved, observer).await;
        return cancelled(done);
    };
    let why = preemption::reason(by);
    not_reached(rest, &format!("cancelled: {why}"), observer).await;
    let summary = if done.is_empty() {
        format!("{why}; no change made")
    } else {
        format!("{why} after: {}", done.join("; "))
    };
    RunResult {
        outcome: RunOutcome::Preempted,
        summary,
        escalation: None,
    }
}

pub(super) fn cancelled(done: &[String]) -> RunResult {
    let summary = if done.is_empty() {
        "cancelled: the alert resolved; no change made".to_owned()
    } else {
        format!("cancelled after: {}", done.join("; "))
    };
    RunResult {
        outcome: RunOutcome::Cancelled,
        summary,
        escalation: None,
    }
}

fn failed(failure: String, done: &[String]) -> RunResult {
    let summary = if done.is_empty() {
        failure.clone()
    } else {
        format!("{failure} (after: {})", done.join("; "))
    };
    RunResult {
        outcome: RunOutcome::Failed,
        summary,
        escalation: Some(failure),
    }
}

#[cfg(test)]
mod tests;
