//! The pure part of dispatch: for one route's responder and one alert, whether the labels are
//! accepted, what the target renders to, whether it is allowed, and so which run to create.
//! Dispatch records these decisions; `simulate` prints them, so both say the same thing.

mod alert;

use std::collections::BTreeMap;

use serde_json::Map;

use crate::alert::Alert;
use crate::responders::context::Scope;
use crate::responders::{Mode, Responder};
use crate::store::{AlertPlan, DecisionKind, RunPlan};
use crate::template::Templates;
pub use alert::plan_alert;

/// Why a responder refuses the alert's labels, if it does: a label that is missing or does
/// not match the pattern the responder requires (values that enter queries, paths, ...).
pub fn refused_label(responder: &Responder, alert: &Alert) -> Option<String> {
    responder
        .require_labels
        .iter()
        .find_map(|(label, pattern)| {
            let value = alert.labels.get(label);
            match value {
                Some(v) if pattern.is_match(v) => None,
                Some(v) => Some(format!(
                    "{}: label {label}={v:?} refused: it must match {}; nothing was run",
                    responder.name,
                    pattern.as_str()
                )),
                None => Some(format!(
                    "{}: label {label} is missing; nothing was run",
                    responder.name
                )),
            }
        })
}

/// Renders the responder's target for the alert; a template error or an empty result is a
/// [`DecisionKind::TargetUnresolved`] decline.
pub fn render_target(
    responder: &Responder,
    alert: &Alert,
    templates: &Templates,
    mode: Mode,
    config: &BTreeMap<String, String>,
) -> Result<String, String> {
    let no_outputs = Map::new();
    let scope = Scope {
        alert,
        target: "",
        responder: &responder.name,
        mode,
        config,
        previous: &no_outputs,
    };
    let vars = scope.vars(&no_outputs);
    match templates.render(&responder.target, &vars) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_owned()),
        Ok(_) => Err(format!(
            "{}: target `{}` rendered empty",
            responder.name, responder.target.source
        )),
        Err(e) => Err(format!(
            "{}: target `{}` could not be rendered: {e}",
            responder.name, responder.target.source
        )),
    }
}

/// [`render_target`], its error as the [`DecisionKind::TargetUnresolved`] decline.
fn rendered(
    responder: &Responder,
    alert: &Alert,
    templates: &Templates,
    mode: Mode,
    config: &BTreeMap<String, String>,
) -> Result<String, RouteDecision> {
    render_target(responder, alert, templates, mode, config).map_err(|detail| {
        RouteDecision::Declined {
            kind: DecisionKind::TargetUnresolved,
            detail,
            target: None,
        }
    })
}

/// What one matching route leads to.
#[derive(Debug, Clone)]
pub enum RouteDecision {
    /// Create this run.
    Run(RunPlan),
    /// Act on nothing, for this reason (recorded as a decision).
    Declined {
        /// Which kind of decline.
        kind: DecisionKind,
        /// One line for people.
        detail: String,
        /// The rendered target, when it got that far.
        target: Option<String>,
    },
}

/// Decides one matching route: required labels, then target, then allow-list. Pure.
pub fn plan_route(
    responder: &Responder,
    alert: &Alert,
    templates: &Templates,
    global: Mode,
    config: &BTreeMap<String, String>,
) -> RouteDecision {
    if let Some(detail) = refused_label(responder, alert) {
        return RouteDecision::Declined {
            kind: DecisionKind::LabelRefused,
            detail,
            target: None,
        };
    }
    let target = match rendered(responder, alert, templates, global, config) {
        Ok(target) => target,
        Err(declined) => return declined,
    };
    if let Some(refused) = outside_allow_list(responder, &target) {
        return refused;
    }
    RouteDecision::Run(RunPlan {
        responder: responder.name.clone(),
        target,
        mode: effective_mode(responder, global),
        preempts: super::preempt::target_died(alert),
    })
}

/// The responder's own mode, made stricter by the global one.
pub fn effective_mode(responder: &Responder, global: Mode) -> Mode {
    responder.mode.unwrap_or(Mode::Live).strictest(global)
}

/// Decides a manual run (a [`crate::alert::Trigger`]): the person named the target, so it is
/// not rendered, but it must pass the allow-list like any other. Pure.
pub fn plan_manual(
    responder: &Responder,
    alert: &Alert,
    target: &str,
    mode: Mode,
) -> RouteDecision {
    if let Some(detail) = refused_label(responder, alert) {
        return RouteDecision::Declined {
            kind: DecisionKind::LabelRefused,
            detail,
            target: Some(target.to_owned()),
        };
    }
    if let Some(refused) = outside_allow_list(responder, target) {
        return refused;
    }
    RouteDecision::Run(RunPlan {
        responder: responder.name.clone(),
        target: target.to_owned(),
        mode,
        // A person's request waits its turn, whatever it is about.
        preempts: false,
    })
}

/// Decides a scheduled slot of `responder`: its declared target (rendered without alert
/// labels; its own name when it declares none) must pass the allow-list like any other; a
/// slot found beyond `catch_up:` only says it was missed. Pure.
pub fn plan_scheduled(
    responder: &Responder,
    alert: &Alert,
    templates: &Templates,
    mode: Mode,
    config: &BTreeMap<String, String>,
) -> RouteDecision {
    let target = match rendered(responder, alert, templates, mode, config) {
        Ok(target) => target,
        Err(declined) => return declined,
    };
    if let Some(facts) = alert.slot().filter(|facts| facts.missed) {
        let catch_up = responder.schedule.as_ref().map_or_else(String::new, |s| {
            format!(" ({})", humantime::format_duration(s.catch_up))
        });
        let late = facts.late_by.map_or_else(String::new, |secs| {
            let late = std::time::Duration::from_secs(secs);
            format!(", found {} late", humantime::format_duration(late))
        });
        return RouteDecision::Declined {
            kind: DecisionKind::SlotMissed,
            detail: format!(
                "{}: slot {} missed{late}, beyond its catch_up{catch_up}; not run",
                responder.name, facts.local
            ),
            target: Some(target),
        };
    }
    if let Some(refused) = outside_allow_list(responder, &target) {
        return refused;
    }
    RouteDecision::Run(RunPlan {
        responder: responder.name.clone(),
        target,
        mode,
        preempts: false,
    })
}

/// The plan of a scheduled slot's alert for `name`, which the catalog may no longer have
/// (its file was removed since the slot was journaled).
pub fn slot_plan(
    responder: Option<&Responder>,
    name: &str,
    alert: &Alert,
    templates: &Templates,
    mode: Mode,
    config: &BTreeMap<String, String>,
) -> AlertPlan {
    let Some(responder) = responder else {
        return AlertPlan::Firing {
            runs: Vec::new(),
            declines: vec![(
                DecisionKind::NoRoute,
                format!("no responder named {name} any more; its slot was not run"),
            )],
            target: None,
        };
    };
    match plan_scheduled(responder, alert, templates, mode, config) {
        RouteDecision::Run(run) => AlertPlan::Firing {
            target: Some(run.target.clone()),
            runs: vec![run],
            declines: Vec::new(),
        },
        RouteDecision::Declined {
            kind,
            detail,
            target,
        } => AlertPlan::Firing {
            runs: Vec::new(),
            declines: vec![(kind, detail)],
            target,
        },
    }
}

/// The decline of a target outside the responder's allow-list, if it is.
fn outside_allow_list(responder: &Responder, target: &str) -> Option<RouteDecision> {
    responder
        .target_refusal(target)
        .map(|detail| RouteDecision::Declined {
            kind: DecisionKind::TargetRefused,
            detail,
            target: Some(target.to_owned()),
        })
}

/// The Slack channel of the incident `alert` opens under `plan`: that of the responder it
/// runs (or, for a slot, whose slot it is) when the responder names one (`channel:`).
pub fn channel<'a>(
    responders: &'a BTreeMap<String, std::sync::Arc<Responder>>,
    alert: &Alert,
    plan: &AlertPlan,
) -> Option<&'a str> {
    let name = match (alert.slot(), alert.manual_request(), plan) {
        (Some(slot), _, _) => slot.responder,
        (None, Some((responder, _)), _) => responder,
        (None, None, AlertPlan::Firing { runs, .. }) => runs.first()?.responder.as_str(),
        _ => return None,
    };
    responders.get(name)?.channel.as_deref()
}

/// Whether `plan` is for an alert no route matched (a person's manual request never is):
/// such an incident is recorded but gets a Slack thread only when `SLACK_POST_UNROUTED` asks.
pub fn unrouted(alert: &Alert, plan: &AlertPlan) -> bool {
    match plan {
        AlertPlan::Firing { runs, declines, .. } => {
            alert.manual_request().is_none()
                && runs.is_empty()
                && declines
                    .iter()
                    .all(|(kind, _)| *kind == DecisionKind::NoRoute)
        }
        AlertPlan::Resolve | AlertPlan::Update => false,
    }
}

#[cfg(test)]
mod tests;
