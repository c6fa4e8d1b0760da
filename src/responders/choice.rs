//! Steps sharing a `choice:` group: options of which a human approves at most one.
//!
//! When the run reaches the group's first step, every option whose `when` holds is offered at
//! once (one message, one Approve button per option, one Deny). The approved option runs as
//! if it had been approved alone; every other one is refused ("another option was chosen").
//! The store, not this module, guarantees that two people clicking two options at once cannot
//! both win (see `Store::decide_approval_by_id`). A denial, an expiry or a resolve ends the run
//! as a denied, expired or cancelled single approval does. In dry-run no choice is asked: each
//! option is planned like any approval step.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use super::engine::{end, not_reached, stop, RunInput, RunObserver, RunResult};
use super::outcome::{RunOutcome, StepState};
use super::Step;
use crate::actions::StepEnv;

/// What a human decided about a choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChoiceOutcome {
    /// One option was approved (its index among those offered).
    Chosen {
        /// Which option.
        index: usize,
        /// Who approved it.
        by: String,
    },
    /// The whole choice was denied: none of the options runs.
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

/// What became of one group once its first option was reached.
#[derive(Debug, Default)]
pub(super) struct Decided {
    /// The approved option's step id.
    chosen: String,
    /// Options not offered, with why (their `when` was false).
    not_offered: BTreeMap<String, String>,
}

/// What the engine does with a step of a choice group.
pub(super) enum Offer {
    /// It is the approved option: run it (its approval is given).
    Run,
    /// It was not chosen or not offered (already reported): go on with the next step.
    Skip,
    /// The choice was denied, expired or cancelled: the run ends so.
    Stop(RunResult),
}

/// Decides `step`'s `group` when it is the group's first step (asking the human), then says
/// what to do with `step`.
pub(super) async fn offer(
    step: &Step,
    group: &str,
    groups: &mut BTreeMap<String, Decided>,
    input: &RunInput<'_>,
    outputs: &Map<String, Json>,
    observer: &dyn RunObserver,
    done: &[String],
) -> Offer {
    if !groups.contains_key(group) {
        // Step ids are unique: this is where the group starts.
        let index = input
            .responder
            .steps
            .iter()
            .position(|s| s.id == step.id)
            .unwrap_or_default();
        match ask(group, index, input, outputs, observer, done).await {
            Ok(decided) => {
                groups.insert(group.to_owned(), decided);
            }
            Err(stopped) => return stopped,
        }
    }
    let Some(decided) = groups.get(group) else {
        return Offer::Skip;
    };
    if decided.chosen == step.id {
        return Offer::Run;
    }
    let report = match decided.not_offered.get(&step.id) {
        Some(why) => end(StepState::Skipped, why.clone(), None, None),
        None => end(
            StepState::Refused,
            format!("refused: another option was chosen ({})", decided.chosen),
            None,
            None,
        ),
    };
    observer.not_run(step, &report).await;
    Offer::Skip
}

/// Offers the group that starts at `index` and waits for the answer.
async fn ask(
    group: &str,
    index: usize,
    input: &RunInput<'_>,
    outputs: &Map<String, Json>,
    observer: &dyn RunObserver,
    done: &[String],
) -> Result<Decided, Offer> {
    let steps = &input.responder.steps;
    let members: Vec<&Step> = steps[index..]
        .iter()
        .take_while(|s| s.choice.as_deref() == Some(group))
        .collect();
    let vars = input.scope().vars(outputs);
    let env = StepEnv {
        templates: input.templates,
        vars: &vars,
        allow: &input.responder.allow,
    };
    let mut decided = Decided::default();
    let mut offered: Vec<(&Step, String)> = Vec::new();
    for member in &members {
        let holds = match &member.when {
            None => Ok(true),
            Some(when) => input
                .templates
                .eval(when, &vars)
                .map_err(|e| format!("not offered: condition `{}` failed: {e}", when.source)),
        };
        match holds {
            Ok(true) => {
                offered.push((member, member.plan(&env)));
            }
            Ok(false) => {
                let source = member.when.as_ref().map(|w| w.source.as_str());
                let why = format!("not offered: `{}` is false", source.unwrap_or_default());
                decided.not_offered.insert(member.id.clone(), why);
            }
            Err(why) => {
                decided.not_offered.insert(member.id.clone(), why);
            }
        }
    }
    if offered.is_empty() {
        // Nothing to choose from: every option reports why it was not offered.
        return Ok(decided);
    }
    let after = index + members.len();
    let (summary, outcome, escalation) = match observer.choose(group, &offered, input.cancel).await
    {
        ChoiceOutcome::Chosen { index: i, .. } => {
            decided.chosen = offered
                .get(i)
                .map(|(s, _)| s.id.clone())
                .unwrap_or_default();
            return Ok(decided);
        }
        ChoiceOutcome::Cancelled => {
            let resolved = "cancelled: the alert resolved while waiting for a choice";
            return Err(Offer::Stop(
                stop(input, &steps[index..], resolved, observer, done).await,
            ));
        }
        ChoiceOutcome::Denied { by } => (
            format!("choice {group} denied by {by}"),
            RunOutcome::Cancelled,
            None,
        ),
        ChoiceOutcome::Expired { waited } => {
            let why = format!("choice {group} expired after {waited} without a decision");
            (why.clone(), RunOutcome::Escalated, Some(why))
        }
    };
    for member in &members {
        let report = match decided.not_offered.get(&member.id) {
            Some(why) => end(StepState::Skipped, why.clone(), None, None),
            None => end(StepState::Refused, summary.clone(), None, None),
        };
        observer.not_run(member, &report).await;
    }
    not_reached(
        &steps[after..],
        "not reached: no option was approved",
        observer,
    )
    .await;
    Err(Offer::Stop(RunResult {
        outcome,
        summary: format!("{summary}; nothing changed by it"),
        escalation,
    }))
}
