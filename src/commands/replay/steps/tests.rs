//! The step replay on a small catalog: what a threshold, a budget, an approval or a removed
//! step change, and what stays unknown because it did not run then.

use std::collections::BTreeSet;

use serde_json::json;

use super::*;
use crate::alert::Alert;
use crate::config::Catalog;
use crate::store::BudgetUse;

const RESPONDER: &str = r#"name: hm
target: "{{ alert.labels.container }}"
allow_targets: ['k2-.*']
budget: { cooldown: 15m, max: 3, per: 6h }
steps:
  - id: mem
    action: docker_stats
    container: "{{ target }}"
  - id: restart
    when: "steps.mem.memory_percent >= THRESHOLD"
    action: docker_restart
    container: "{{ target }}"
    APPROVAL
  - id: verify
    when: "steps.restart is defined"
    action: docker_stats
    container: "{{ target }}"
    expect: "output.memory_percent < steps.mem.memory_percent"
"#;

fn catalog(threshold: u32, approval: bool) -> Catalog {
    let dir = tempfile::tempdir().unwrap();
    let (routes, responders) = (dir.path().join("routes"), dir.path().join("responders"));
    std::fs::create_dir_all(&routes).unwrap();
    std::fs::create_dir_all(&responders).unwrap();
    std::fs::write(
        routes.join("r.yaml"),
        "routes:\n  - matchers: ['alertname=\"HighMemoryUsage\"']\n    responder: hm\n",
    )
    .unwrap();
    let text = RESPONDER
        .replace("THRESHOLD", &threshold.to_string())
        .replace("APPROVAL", if approval { "approval: required" } else { "" });
    std::fs::write(responders.join("hm.yaml"), text).unwrap();
    Catalog::load(&routes, &responders).unwrap()
}

fn alert() -> Alert {
    serde_json::from_value(json!({
        "source": "alertmanager", "fingerprint": "f1", "status": "firing",
        "labels": {"alertname": "HighMemoryUsage", "container": "k2-a"},
        "annotations": {}, "starts_at": "2026-11-27T05:00:00Z", "ends_at": null,
        "generator_url": null,
    }))
    .unwrap()
}

fn row(id: &str, state: &str, outputs: Option<serde_json::Value>, at: &str) -> StepRow {
    StepRow {
        step_id: id.into(),
        action: if id == "restart" {
            "docker_restart"
        } else {
            "docker_stats"
        }
        .into(),
        destructive: id == "restart",
        state: StepState::parse(state).expect("a step state"),
        summary: Some(format!("{id} {state}")),
        outputs,
        error: None,
        started_at: at.into(),
        finished_at: None,
    }
}

/// A run that restarted k2-a at 96% (then 2%), at 05:10.
fn restarted() -> Vec<StepRow> {
    let at = "2026-11-27T05:10:00Z";
    vec![
        row(
            "mem",
            "succeeded",
            Some(json!({"memory_percent": 96.0})),
            at,
        ),
        row(
            "restart",
            "succeeded",
            Some(json!({"container": "k2-a"})),
            at,
        ),
        row(
            "verify",
            "succeeded",
            Some(json!({"memory_percent": 2.0})),
            at,
        ),
    ]
}

/// A run that left k2-a alone at 12%.
fn left_alone() -> Vec<StepRow> {
    let at = "2026-11-27T05:10:00Z";
    vec![
        row(
            "mem",
            "succeeded",
            Some(json!({"memory_percent": 12.0})),
            at,
        ),
        row("restart", "skipped", None, at),
        row("verify", "skipped", None, at),
    ]
}

fn replay(
    catalog: &Catalog,
    recorded: &[StepRow],
    approvals: &[ApprovalRow],
    ledger: &mut Ledger,
) -> Vec<StepReplay> {
    replay_held(catalog, recorded, approvals, ledger, None)
}

fn replay_held(
    catalog: &Catalog,
    recorded: &[StepRow],
    approvals: &[ApprovalRow],
    ledger: &mut Ledger,
    held: Option<String>,
) -> Vec<StepReplay> {
    let alert = alert();
    let (config, previous) = (Default::default(), Map::new());
    let ctx = RunContext {
        responder: &catalog.responders["hm"],
        templates: &catalog.templates,
        scope: Scope {
            alert: &alert,
            target: "k2-a",
            responder: "hm",
            mode: Mode::Live,
            config: &config,
            previous: &previous,
        },
        recorded,
        approvals,
        started: 0,
        held,
    };
    replay_steps(&ctx, ledger)
}

fn kinds(steps: &[StepReplay]) -> Vec<(&str, FateKind, bool)> {
    steps
        .iter()
        .map(|s| (s.id.as_str(), s.now.kind, s.differs))
        .collect()
}

#[test]
fn the_same_catalog_on_the_same_outputs_changes_nothing() {
    let c = catalog(90, false);
    for recorded in [restarted(), left_alone()] {
        let steps = replay(&c, &recorded, &[], &mut Ledger::default());
        assert!(steps.iter().all(|s| !s.differs), "{steps:#?}");
    }
}

#[test]
fn a_raised_threshold_skips_the_restart_and_what_reads_it() {
    let steps = replay(
        &catalog(99, false),
        &restarted(),
        &[],
        &mut Ledger::default(),
    );
    assert_eq!(
        kinds(&steps),
        [
            ("mem", FateKind::Ran, false),
            ("restart", FateKind::Skipped, true),
            ("verify", FateKind::Skipped, true),
        ]
    );
    assert_eq!(steps[1].then.kind, FateKind::Ran);
    assert!(
        steps[1].now.detail.contains(">= 99` is false"),
        "{steps:#?}"
    );
}

#[test]
fn a_step_not_run_then_makes_what_reads_it_unknown() {
    let steps = replay(
        &catalog(10, false),
        &left_alone(),
        &[],
        &mut Ledger::default(),
    );
    assert_eq!(
        kinds(&steps),
        [
            ("mem", FateKind::Ran, false),
            ("restart", FateKind::Ran, true),
            ("verify", FateKind::Unknown, false),
        ]
    );
    assert!(steps[1].now.detail.contains("unknown: not run then"));
    assert!(
        steps[2].now.detail.starts_with("unknown: not run then")
            && steps[2].now.detail.contains("reads steps.restart"),
        "{steps:#?}"
    );
}

#[test]
fn budgets_are_weighed_against_the_uses_of_that_time() {
    // Another run restarted k2-a five minutes before: the 15 min cooldown refuses this one.
    let earlier = BudgetUse {
        responder: "hm".into(),
        target: "k2-a".into(),
        step: "restart".into(),
        at_unix: time::macros::datetime!(2026-11-27 05:05 UTC).unix_timestamp(),
        run_id: Some(1),
    };
    let mut ledger = Ledger::new(vec![earlier], &BTreeSet::from([2]));
    let steps = replay(&catalog(90, false), &restarted(), &[], &mut ledger);
    assert_eq!(
        kinds(&steps),
        [
            ("mem", FateKind::Ran, false),
            ("restart", FateKind::Refused, true),
            ("verify", FateKind::NotReached, true),
        ]
    );
    assert!(
        steps[1]
            .now
            .detail
            .contains("restart budget exhausted (cooldown"),
        "{steps:#?}"
    );
}

#[test]
fn a_new_approval_is_a_difference_and_a_decided_one_stands() {
    let steps = replay(
        &catalog(90, true),
        &restarted(),
        &[],
        &mut Ledger::default(),
    );
    assert!(
        steps[1].differs
            && steps[1]
                .now
                .detail
                .starts_with("would ask a human's approval")
    );
    let denied = ApprovalRow {
        id: 1,
        run_id: 2,
        step_id: "restart".into(),
        plan: "restart k2-a".into(),
        state: ApprovalState::Denied,
        requested_at: "2026-11-27T05:10:00Z".into(),
        expires_at_unix: 0,
        decided_by: Some("U1".into()),
        decided_at: None,
        choice: None,
    };
    let mut recorded = restarted();
    recorded[1] = row("restart", "refused", None, "2026-11-27T05:10:00Z");
    recorded[2] = row("verify", "skipped", None, "2026-11-27T05:10:00Z");
    recorded[2].summary = Some("not reached: the step before was not approved".into());
    let steps = replay(
        &catalog(90, true),
        &recorded,
        &[denied],
        &mut Ledger::default(),
    );
    assert!(steps.iter().all(|s| !s.differs), "{steps:#?}");
}

#[test]
fn a_run_cut_short_then_is_compared_up_to_that_point_only() {
    let mut recorded = restarted();
    recorded[2] = row("verify", "cancelled", None, "2026-11-27T05:10:00Z");
    let steps = replay(&catalog(90, false), &recorded, &[], &mut Ledger::default());
    assert_eq!(steps[2].now.kind, FateKind::Stopped);
    assert!(steps.iter().all(|s| !s.differs), "{steps:#?}");
}

#[test]
fn a_step_refused_then_by_its_budget_would_now_be_allowed_by_a_looser_one() {
    let at = "2026-11-27T05:10:00Z";
    let mut recorded = restarted();
    recorded[1] = row("restart", "refused", None, at);
    recorded[1].summary = Some("refused: restart budget exhausted for k2-a (cooldown)".into());
    recorded[2] = row("verify", "skipped", None, at);
    recorded[2].summary = Some("not reached: the run was escalated".into());
    let steps = replay(&catalog(90, false), &recorded, &[], &mut Ledger::default());
    assert_eq!(
        kinds(&steps),
        [
            ("mem", FateKind::Ran, false),
            ("restart", FateKind::Ran, true),
            ("verify", FateKind::Unknown, false),
        ]
    );
    assert_eq!(steps[1].then.kind, FateKind::Refused);
    assert!(super::super::report::step_line(&steps[1]).contains("would now be allowed"));
}

#[test]
fn a_refusal_by_the_action_rate_stands_as_it_was() {
    let at = "2026-11-27T05:10:00Z";
    let mut recorded = restarted();
    recorded[1] = row("restart", "refused", None, at);
    recorded[2] = row("verify", "skipped", None, at);
    recorded[2].summary = Some("not reached: the run was escalated".into());
    let held = Some("rate_limited: the cluster-wide action rate is spent".to_owned());
    let steps = replay_held(
        &catalog(90, false),
        &recorded,
        &[],
        &mut Ledger::default(),
        held,
    );
    assert!(steps.iter().all(|s| !s.differs), "{steps:#?}");
    assert!(
        steps[1].now.detail.starts_with("as then: rate_limited"),
        "{steps:#?}"
    );
}
