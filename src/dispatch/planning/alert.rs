//! The whole plan of one alert: a manual request, a scheduled slot, or every matching route
//! decided in turn. Dispatch records it; `replay` compares it with what was recorded then.

use std::collections::BTreeMap;

use super::{plan_manual, plan_route, slot_plan, RouteDecision};
use crate::alert::{Alert, Status};
use crate::config::Catalog;
use crate::responders::overrides::ModeOverrides;
use crate::store::{AlertPlan, DecisionKind};

/// Decides what to do with an alert. Pure apart from reading the catalog and the modes.
pub fn plan_alert(
    catalog: &Catalog,
    modes: &ModeOverrides,
    config: &BTreeMap<String, String>,
    alert: &Alert,
) -> AlertPlan {
    match alert.status {
        Status::Resolved => return AlertPlan::Resolve,
        Status::Update => return AlertPlan::Update,
        Status::Firing => {}
    }
    if let Some((responder, target)) = alert.manual_request() {
        return manual(catalog, modes, alert, responder, target);
    }
    if let Some(slot) = alert.slot() {
        let responder = catalog.responders.get(slot.responder);
        let mode = responder.map_or(modes.global(), |r| modes.effective(r));
        let responder = responder.map(|r| &**r);
        let templates = &catalog.templates;
        return slot_plan(responder, slot.responder, alert, templates, mode, config);
    }
    let mut runs = Vec::new();
    let mut declines = Vec::new();
    let mut first_target = None;
    let routes = catalog.routes.matching(&alert.labels);
    if routes.is_empty() {
        declines.push((
            DecisionKind::NoRoute,
            format!("no route matches {} {:?}", alert.name(), alert.labels),
        ));
    }
    for route in routes {
        let responder = &catalog.responders[&route.responder];
        let decision = plan_route(responder, alert, &catalog.templates, modes.global(), config);
        match decision {
            RouteDecision::Run(mut run) => {
                run.mode = modes.effective(responder);
                first_target.get_or_insert_with(|| run.target.clone());
                runs.push(run);
            }
            RouteDecision::Declined {
                kind,
                detail,
                target,
            } => {
                if let Some(target) = target {
                    first_target.get_or_insert(target);
                }
                declines.push((kind, detail));
            }
        }
    }
    if runs.is_empty() && first_target.is_none() {
        first_target = alert.target_hint().map(str::to_owned);
    }
    AlertPlan::Firing {
        runs,
        declines,
        target: first_target,
    }
}

/// A person asked for `responder` on `target` (a manual trigger): no routes, same checks.
fn manual(
    catalog: &Catalog,
    modes: &ModeOverrides,
    alert: &Alert,
    responder: &str,
    target: &str,
) -> AlertPlan {
    let Some(responder) = catalog.responders.get(responder) else {
        return AlertPlan::Firing {
            runs: Vec::new(),
            declines: vec![(
                DecisionKind::NoRoute,
                format!("no responder named {responder}"),
            )],
            target: Some(target.to_owned()),
        };
    };
    let mode = modes.effective(responder);
    match plan_manual(responder, alert, target, mode) {
        RouteDecision::Run(run) => AlertPlan::Firing {
            target: Some(run.target.clone()),
            runs: vec![run],
            declines: Vec::new(),
        },
        RouteDecision::Declined { kind, detail, .. } => AlertPlan::Firing {
            runs: Vec::new(),
            declines: vec![(kind, detail)],
            target: Some(target.to_owned()),
        },
    }
}
