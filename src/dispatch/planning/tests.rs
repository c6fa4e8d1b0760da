//! Planning against the shipped catalog: every way a route declines, and the run it plans.

use std::path::Path;

use super::*;
use crate::config::Catalog;

fn shipped() -> Catalog {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Catalog::load(&root.join("routes"), &root.join("responders")).expect("shipped catalog")
}

fn alert(labels: &[(&str, &str)]) -> Alert {
    crate::alert::firing_for_tests(labels)
}

/// `plan_route` for the shipped responder `name`, live, with no playbook settings.
fn plan(catalog: &Catalog, name: &str, labels: &[(&str, &str)]) -> RouteDecision {
    let responder = &catalog.responders[name];
    let config = BTreeMap::new();
    plan_route(
        responder,
        &alert(labels),
        &catalog.templates,
        Mode::Live,
        &config,
    )
}

fn declined(decision: RouteDecision) -> (DecisionKind, String, Option<String>) {
    match decision {
        RouteDecision::Declined {
            kind,
            detail,
            target,
        } => (kind, detail, target),
        RouteDecision::Run(run) => panic!("expected a decline, got a run on {}", run.target),
    }
}

#[test]
fn a_matching_alert_plans_one_live_run_on_its_rendered_target() {
    let catalog = shipped();
    let labels = [("alertname", "HighMemoryUsage"), ("container", "k2-bronze")];
    let RouteDecision::Run(run) = plan(&catalog, "high-memory", &labels) else {
        panic!("a run");
    };
    assert_eq!(
        (
            run.responder.as_str(),
            run.target.as_str(),
            run.mode,
            run.preempts
        ),
        ("high-memory", "k2-bronze", Mode::Live, false)
    );
    let responder = &catalog.responders["high-memory"];
    let config = BTreeMap::new();
    let dry = plan_route(
        responder,
        &alert(&labels),
        &catalog.templates,
        Mode::DryRun,
        &config,
    );
    let RouteDecision::Run(run) = dry else {
        panic!("a run");
    };
    assert_eq!(
        run.mode,
        Mode::DryRun,
        "the global dry-run wins over a live responder"
    );
}

#[test]
fn required_labels_missing_target_and_allow_list_each_decline_with_their_reason() {
    let catalog = shipped();
    let (kind, detail, target) = declined(plan(
        &catalog,
        "checkpoint-disk",
        &[("alertname", "CheckpointDiskFull"), ("container", "../etc")],
    ));
    assert_eq!(kind, DecisionKind::LabelRefused);
    assert!(
        detail.contains("label container=\"../etc\" refused"),
        "{detail}"
    );
    assert_eq!(target, None, "refused before the target is rendered");

    let (kind, detail, _) = declined(plan(
        &catalog,
        "checkpoint-disk",
        &[("alertname", "CheckpointDiskFull")],
    ));
    assert_eq!(kind, DecisionKind::LabelRefused);
    assert!(detail.contains("label container is missing"), "{detail}");

    let (kind, detail, _) = declined(plan(
        &catalog,
        "high-memory",
        &[("alertname", "HighMemoryUsage")],
    ));
    assert_eq!(kind, DecisionKind::TargetUnresolved, "{detail}");
    assert!(detail.starts_with("high-memory: target"), "{detail}");

    let (kind, detail, target) = declined(plan(
        &catalog,
        "high-memory",
        &[("alertname", "HighMemoryUsage"), ("container", "postgres")],
    ));
    assert_eq!(kind, DecisionKind::TargetRefused, "{detail}");
    assert_eq!(
        target.as_deref(),
        Some("postgres"),
        "the rendered target is kept"
    );
}

#[test]
fn a_manual_run_skips_rendering_but_not_the_allow_list() {
    let catalog = shipped();
    let responder = &catalog.responders["high-memory"];
    let request = alert(&[("alertname", "HighMemoryUsage")]);
    let RouteDecision::Run(run) = plan_manual(responder, &request, "k2-x", Mode::Live) else {
        panic!("a run");
    };
    assert!(!run.preempts, "a person's request waits its turn");
    let (kind, _, target) = declined(plan_manual(responder, &request, "postgres", Mode::Live));
    assert_eq!(kind, DecisionKind::TargetRefused);
    assert_eq!(target.as_deref(), Some("postgres"));
}

#[test]
fn an_alert_no_route_took_is_unrouted_and_a_refused_one_is_not() {
    let firing = alert(&[("alertname", "Noise")]);
    let no_route = AlertPlan::Firing {
        runs: Vec::new(),
        declines: vec![(DecisionKind::NoRoute, "no route".into())],
        target: None,
    };
    assert!(unrouted(&firing, &no_route));
    let refused = AlertPlan::Firing {
        runs: Vec::new(),
        declines: vec![(DecisionKind::TargetRefused, "outside".into())],
        target: Some("postgres".into()),
    };
    assert!(!unrouted(&firing, &refused));
    assert!(!unrouted(&firing, &AlertPlan::Resolve));
}
