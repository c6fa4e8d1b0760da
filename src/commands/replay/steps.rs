//! One run's steps replayed against the outputs recorded then, in the engine's order and with
//! its readings of `when` and `expect` ([`crate::responders::conditions`]): nothing runs; a
//! step that would run takes the result it had then, and one that did not run then has no
//! result, so whatever reads it is "unknown: not run then".

use std::collections::BTreeSet;

use serde_json::{Map, Value as Json};

use super::ledger::Ledger;
use super::report::{Fate, FateKind, StepReplay};
use crate::limits::Admission;
use crate::responders::conditions::{expectation, gate, Gate};
use crate::responders::context::Scope;
use crate::responders::{Mode, OnFailure, Responder, Step};
use crate::store::{ApprovalRow, ApprovalState, StepRow, StepState};
use crate::template::Templates;

/// What a run's replay needs.
#[derive(Debug)]
pub(super) struct RunContext<'a> {
    /// The responder as the catalog has it now.
    pub(super) responder: &'a Responder,
    /// Templates of that catalog.
    pub(super) templates: &'a Templates,
    /// The alert, target, mode and config the steps see.
    pub(super) scope: Scope<'a>,
    /// The recorded run's steps (empty when it did not run then).
    pub(super) recorded: &'a [StepRow],
    /// Approvals the recorded run asked for.
    pub(super) approvals: &'a [ApprovalRow],
    /// When the run started then (unix seconds), for steps with no time of their own.
    pub(super) started: i64,
    /// Why the recorded run's destructive step was refused by what `replay` does not weigh
    /// again (the cluster-wide action rate, a lost lease), if it was.
    pub(super) held: Option<String>,
}

/// What happened to a recorded step.
pub(super) fn fate_then(row: Option<&StepRow>) -> Fate {
    let Some(row) = row else {
        return Fate::new(FateKind::Absent, "not in the run then");
    };
    let summary = row
        .summary
        .clone()
        .unwrap_or_else(|| row.state.as_str().to_owned());
    let kind = match row.state {
        StepState::Succeeded => FateKind::Ran,
        StepState::Failed => FateKind::Failed,
        StepState::Skipped if summary.starts_with("not reached") => FateKind::NotReached,
        StepState::Skipped => FateKind::Skipped,
        StepState::Refused => FateKind::Refused,
        StepState::Planned => FateKind::Planned,
        // A resolve or a preemption cancelled it, or a crash left it started or unknown.
        StepState::Cancelled | StepState::Started | StepState::Unknown => FateKind::Stopped,
    };
    Fate::new(kind, summary)
}

/// Replays the steps of `ctx.responder`, spending budgets in `ledger`.
pub(super) fn replay_steps(ctx: &RunContext<'_>, ledger: &mut Ledger) -> Vec<StepReplay> {
    let mut outputs: Map<String, Json> = Map::new();
    let mut unknown: BTreeSet<String> = BTreeSet::new();
    let mut stopped: Option<Fate> = None;
    let mut out = Vec::new();
    for step in &ctx.responder.steps {
        let row = ctx.recorded.iter().find(|r| r.step_id == step.id);
        let then = fate_then(row);
        let mut approval_changed = false;
        let now = match &stopped {
            Some(fate) => fate.clone(),
            None => {
                let now = replay_step(ctx, step, row, &outputs, &unknown, ledger);
                if let Some(own) = now.outputs {
                    outputs.insert(step.id.clone(), Json::Object(own));
                } else if matches!(now.fate.kind, FateKind::Ran | FateKind::Unknown) {
                    unknown.insert(step.id.clone());
                }
                stopped = now.stops;
                approval_changed = now.approval_changed;
                now.fate
            }
        };
        let kind = step.action.kind();
        out.push(StepReplay {
            id: step.id.clone(),
            action: kind.name().to_owned(),
            destructive: kind.destructive(),
            differs: approval_changed || differs(&then, &now),
            then,
            now,
        });
    }
    // Steps the run had then that the responder no longer has.
    for row in ctx.recorded {
        if !ctx.responder.steps.iter().any(|s| s.id == row.step_id) {
            out.push(StepReplay {
                id: row.step_id.clone(),
                action: row.action.clone(),
                destructive: row.destructive,
                then: fate_then(Some(row)),
                now: Fate::new(FateKind::Absent, "no such step in the responder now"),
                differs: row.state != StepState::Skipped,
            });
        }
    }
    out
}

/// Whether a step's fate changed. A run cut short then is compared no further, and an
/// unknown fate is reported apart: it follows from a difference reported before it.
fn differs(then: &Fate, now: &Fate) -> bool {
    match (then.kind, now.kind) {
        (FateKind::Stopped, _) | (_, FateKind::Unknown) => false,
        (FateKind::Refused, FateKind::Refused) => false,
        (a, b) => a != b,
    }
}

/// One step's replay: its fate, its outputs (as recorded then) and whether it stops the run.
struct Replayed {
    fate: Fate,
    outputs: Option<Map<String, Json>>,
    stops: Option<Fate>,
    /// It would now ask for approval and did not then, or the other way round.
    approval_changed: bool,
}

impl Replayed {
    fn only(fate: Fate) -> Self {
        Self {
            fate,
            outputs: None,
            stops: None,
            approval_changed: false,
        }
    }

    fn stopping(fate: Fate, why: &str) -> Self {
        Self {
            fate,
            outputs: None,
            stops: Some(Fate::new(FateKind::NotReached, why)),
            approval_changed: false,
        }
    }
}

fn replay_step(
    ctx: &RunContext<'_>,
    step: &Step,
    row: Option<&StepRow>,
    outputs: &Map<String, Json>,
    unknown: &BTreeSet<String>,
    ledger: &mut Ledger,
) -> Replayed {
    let then = fate_then(row);
    if then.kind == FateKind::Stopped {
        // What the run would have done past this point was never seen.
        let fate = Fate::new(FateKind::Stopped, then.detail.clone());
        return Replayed {
            stops: Some(fate.clone()),
            ..Replayed::only(fate)
        };
    }
    if let Some(fate) = reads_unknown(ctx.templates, step.when.as_ref(), unknown, "when") {
        return Replayed::only(fate);
    }
    match gate(step, ctx.templates, &ctx.scope.vars(outputs)) {
        Gate::Open => {}
        Gate::Closed(why) => return Replayed::only(Fate::new(FateKind::Skipped, why)),
        Gate::Broken { failure, .. } => {
            let fate = Fate::new(FateKind::Failed, failure);
            return Replayed::stopping(fate, "not reached: the run stopped");
        }
    }
    let kind = step.action.kind();
    let mut ask = String::new();
    if kind.destructive() {
        if ctx.scope.mode == Mode::DryRun {
            let fate = Fate::new(
                FateKind::Planned,
                "dry-run: would plan it, touching nothing",
            );
            return Replayed::only(fate);
        }
        let asked = ctx.approvals.iter().find(|a| a.step_id == step.id);
        match (step.approval, asked.map(|a| a.state)) {
            (true, Some(ApprovalState::Approved)) | (false, None) => {}
            (true, Some(state)) => {
                let fate = Fate::new(FateKind::Refused, format!("approval {state} then"));
                let why = "not reached: the step before was not approved";
                return Replayed::stopping(fate, why);
            }
            (true, None) => {
                ask = "would ask a human's approval first (not asked then), then ".into()
            }
            (false, Some(_)) => {
                ask = "would no longer ask a human's approval (asked then); ".into()
            }
        }
        if let Some(held) = ctx.held.as_ref().filter(|_| then.kind == FateKind::Refused) {
            let fate = Fate::new(FateKind::Refused, format!("as then: {held}"));
            return Replayed::stopping(fate, "not reached: the run was escalated");
        }
        let at = row.and_then(|r| unix(&r.started_at)).unwrap_or(ctx.started);
        let name = &ctx.responder.name;
        let budget = &ctx.responder.budget;
        if let Admission::Refused { reason } =
            ledger.spend(name, ctx.scope.target, &step.id, budget, at)
        {
            let why = format!("{ask}refused: {} budget exhausted ({reason})", step.id);
            return Replayed::stopping(
                Fate::new(FateKind::Refused, why),
                "not reached: the run was escalated",
            );
        }
    }
    let mut replayed = ran(ctx, step, row, outputs, unknown, &ask);
    replayed.approval_changed = !ask.is_empty();
    replayed
}

/// A step that would run: the result it had then, its `expect` read again.
fn ran(
    ctx: &RunContext<'_>,
    step: &Step,
    row: Option<&StepRow>,
    outputs: &Map<String, Json>,
    unknown: &BTreeSet<String>,
    ask: &str,
) -> Replayed {
    let ran_then = row.filter(|r| matches!(r.state, StepState::Succeeded | StepState::Failed));
    let Some(row) = ran_then else {
        let fate = Fate::new(
            FateKind::Ran,
            format!("{ask}would run; its result is unknown: not run then"),
        );
        return Replayed::only(fate);
    };
    let summary = row.summary.clone().unwrap_or_default();
    let Some(Json::Object(own)) = row.outputs.clone() else {
        // The action itself failed then: it would fail the same way.
        let fate = Fate::new(FateKind::Failed, format!("{ask}{summary}"));
        return stop_if(step, Replayed::only(fate));
    };
    if let Some(fate) = reads_unknown(ctx.templates, step.expect.as_ref(), unknown, "expect") {
        return Replayed {
            outputs: Some(own),
            ..Replayed::only(fate)
        };
    }
    let fate = match expectation(step, ctx.templates, &ctx.scope, outputs, &own) {
        Ok(()) => Fate::new(FateKind::Ran, format!("{ask}{}", ran_summary(&summary))),
        Err(e) => Fate::new(
            FateKind::Failed,
            format!("{ask}{e} (outputs as recorded then)"),
        ),
    };
    stop_if(
        step,
        Replayed {
            outputs: Some(own),
            ..Replayed::only(fate)
        },
    )
}

/// A step's summary without the expectation failure it may have had then.
fn ran_summary(summary: &str) -> String {
    summary
        .split("; expectation")
        .next()
        .unwrap_or(summary)
        .to_owned()
}

fn stop_if(step: &Step, mut replayed: Replayed) -> Replayed {
    if replayed.fate.kind == FateKind::Failed && step.on_failure == OnFailure::Stop {
        replayed.stops = Some(Fate::new(
            FateKind::NotReached,
            "not reached: the run stopped",
        ));
    }
    replayed
}

/// "unknown: not run then" when `expr` reads a step whose result is unknown.
fn reads_unknown(
    templates: &Templates,
    expr: Option<&crate::template::Expr>,
    unknown: &BTreeSet<String>,
    what: &str,
) -> Option<Fate> {
    let expr = expr?;
    let read = templates.step_reads(expr);
    let missing: Vec<&String> = read.iter().filter(|id| unknown.contains(*id)).collect();
    (!missing.is_empty()).then(|| {
        let names: Vec<String> = missing.iter().map(|id| format!("steps.{id}")).collect();
        Fate::new(
            FateKind::Unknown,
            format!(
                "unknown: not run then ({what} `{}` reads {})",
                expr.source,
                names.join(", ")
            ),
        )
    })
}

/// Unix seconds of a stored RFC 3339 time.
pub(super) fn unix(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

#[cfg(test)]
mod tests;
