//! `replay`: the alerts recorded in a window, planned again against a catalog (routes, target,
//! allow-list, mode: [`crate::dispatch::planning::plan_alert`], what dispatch itself calls)
//! and their runs' steps replayed against the outputs recorded then ([`steps`]), with budgets
//! weighed against the uses of that time ([`ledger`]). Nothing runs, nothing is written, nothing
//! is sent: the database is opened read-only.

mod ledger;
pub mod report;
mod steps;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde_json::Map;
use time::OffsetDateTime;

use crate::alert::Status;
use crate::config::{lints, Catalog, Settings, Severity};
use crate::dispatch::planning::plan_alert;
use crate::responders::context::Scope;
use crate::responders::overrides::ModeOverrides;
use crate::store::{self, AlertPlan, IncidentDetail, PastAlert, RunPlan, RunRow, RunState, Store};
use ledger::Ledger;
use report::{AlertReplay, Fate, FateKind, IncidentReplay, Report, RunReplay, RunSide, StepReplay};
use steps::{fate_then, replay_steps, unix, RunContext};

/// Decline kinds of a route (why a responder was not run), as opposed to what a run did.
const DECLINES: [&str; 5] = [
    "no_route",
    "label_refused",
    "target_refused",
    "target_unresolved",
    "slot_missed",
];

/// Refusals of a destructive step that `replay` does not decide again: the cluster-wide action
/// rate and a lost lease depend on everything else running then, not on the catalog.
const HELD: [&str; 2] = ["rate_limited", "fenced"];

/// Replays the alerts recorded in the last `since` against the settings' catalog.
///
/// # Errors
/// A one-line reason when the catalog fails `check` or the database cannot be read.
pub async fn replay(settings: &Settings, since: Duration) -> Result<Report, String> {
    let catalog = Catalog::load(&settings.routes_dir, &settings.responders_dir)
        .map_err(|e| format!("the catalog does not load:\n{e}"))?;
    let config = catalog
        .playbook_config(&settings.playbook_config)
        .map_err(|e| format!("the catalog fails `check`:\n{e}"))?;
    let errors: Vec<String> = lints(&catalog, settings)
        .iter()
        .filter(|l| l.severity == Severity::Error)
        .map(ToString::to_string)
        .collect();
    if !errors.is_empty() {
        return Err(format!("the catalog fails `check`:\n{}", errors.join("\n")));
    }
    let url = store::redact_url(&settings.database_url);
    let store = super::open_store(settings)
        .await
        .map_err(|e| format!("database {url}: {e}"))?
        .ok_or_else(|| format!("database {url} does not exist: there is nothing to replay"))?;
    let read = |e: store::StoreError| format!("database {url}: {e}");
    let from = OffsetDateTime::now_utc() - since;
    let alerts = store.alerts_since(from).await.map_err(read)?;
    let (replayable, skipped): (Vec<PastAlert>, Vec<PastAlert>) = alerts
        .into_iter()
        .partition(|a| a.alert.status == Status::Firing && (a.opened || !a.run_ids.is_empty()));
    let replayed: BTreeSet<i64> = replayable.iter().flat_map(|a| a.run_ids.clone()).collect();
    let horizon = catalog
        .responders
        .values()
        .map(|r| r.budget.per.max(r.budget.cooldown))
        .max()
        .unwrap_or_default();
    let horizon = i64::try_from(horizon.as_secs()).unwrap_or(i64::MAX / 4);
    let uses = store
        .budget_uses_since(from.unix_timestamp().saturating_sub(horizon))
        .await
        .map_err(read)?;
    let overrides = store.mode_overrides().await.map_err(read)?;
    let mut replay = Replay {
        catalog: &catalog,
        config: &config,
        store: &*store,
        modes: ModeOverrides::new(settings.mode, &overrides),
        ledger: Ledger::new(uses, &replayed),
        details: HashMap::new(),
    };
    let mut incidents: Vec<IncidentReplay> = Vec::new();
    let mut in_progress = 0;
    for past in &replayable {
        let Some(alert) = replay.alert(past).await.map_err(read)? else {
            in_progress += 1;
            continue;
        };
        let interesting =
            alert.declines_differ || alert.runs.iter().any(|r| r.differs() || r.unknown());
        if !interesting {
            continue;
        }
        match incidents
            .iter_mut()
            .find(|i| i.incident_id == past.incident_id)
        {
            Some(incident) => incident.alerts.push(alert),
            None => incidents.push(IncidentReplay {
                incident_id: past.incident_id,
                alertname: past.alert.name().to_owned(),
                alerts: vec![alert],
            }),
        }
    }
    store.close().await;
    let all = || incidents.iter().flat_map(|i| &i.alerts);
    let differences = all()
        .map(|a| {
            usize::from(a.declines_differ)
                + a.runs
                    .iter()
                    .map(|r| r.notes.len() + r.steps.iter().filter(|s| s.differs).count())
                    .sum::<usize>()
        })
        .sum();
    let unknown = all()
        .flat_map(|a| &a.runs)
        .flat_map(|r| &r.steps)
        .filter(|s| s.now.kind == FateKind::Unknown)
        .count();
    Ok(Report {
        since: humantime::format_duration(since).to_string(),
        from: store::format_time(from.replace_nanosecond(0).unwrap_or(from)),
        routes: settings.routes_dir.display().to_string(),
        responders: settings.responders_dir.display().to_string(),
        alerts_replayed: replayable.len() - in_progress,
        alerts_not_replayed: skipped.len() + in_progress,
        differences,
        unknown,
        incidents,
    })
}

/// What replaying every alert shares.
struct Replay<'a> {
    catalog: &'a Catalog,
    /// The playbook settings runs see, `config.<name>`.
    config: &'a BTreeMap<String, String>,
    store: &'a dyn Store,
    modes: ModeOverrides,
    ledger: Ledger,
    details: HashMap<i64, IncidentDetail>,
}

impl Replay<'_> {
    /// The alert planned again; `None` while a run of it is still pending or running (its
    /// steps are not all recorded yet, so there is nothing to compare).
    async fn alert(&mut self, past: &PastAlert) -> Result<Option<AlertReplay>, store::StoreError> {
        if !self.details.contains_key(&past.incident_id) {
            let detail = self.store.incident_detail(past.incident_id).await?;
            let detail = detail.ok_or_else(|| {
                store::StoreError::Corrupt(format!("incident {} vanished", past.incident_id))
            })?;
            self.details.insert(past.incident_id, detail);
        }
        let detail = &self.details[&past.incident_id];
        let then_runs: Vec<RunRow> = detail
            .runs
            .iter()
            .filter(|r| past.run_ids.contains(&r.id))
            .cloned()
            .collect();
        if then_runs
            .iter()
            .any(|r| matches!(r.state, RunState::Pending | RunState::Running))
        {
            return Ok(None);
        }
        let approvals = detail.approvals.clone();
        let declined_then: Vec<String> = detail
            .decisions
            .iter()
            .filter(|d| d.run_id.is_none() && DECLINES.contains(&d.kind.as_str()))
            .filter(|d| unix(&d.at) == Some(past.received_at.unix_timestamp()))
            .map(|d| format!("{}: {}", d.kind, d.detail))
            .collect();
        let config = self.config;
        let (runs_now, declined_now) =
            match plan_alert(self.catalog, &self.modes, config, &past.alert) {
                AlertPlan::Firing { runs, declines, .. } => (
                    runs,
                    declines
                        .into_iter()
                        .map(|(kind, detail)| format!("{}: {detail}", kind.as_str()))
                        .collect::<Vec<_>>(),
                ),
                AlertPlan::Resolve | AlertPlan::Update => (Vec::new(), Vec::new()),
            };
        let kinds = |list: &[String]| -> Vec<String> {
            let mut k: Vec<String> = list
                .iter()
                .map(|d| d.split(':').next().unwrap_or_default().to_owned())
                .collect();
            k.sort();
            k
        };
        let declines_differ = kinds(&declined_then) != kinds(&declined_now);
        let mut runs = Vec::new();
        for then in &then_runs {
            let now = runs_now.iter().find(|r| r.responder == then.responder);
            let own: Vec<_> = approvals
                .iter()
                .filter(|a| a.run_id == then.id)
                .cloned()
                .collect();
            runs.push(self.run(past, Some(then), now, &own, &declined_now).await?);
        }
        for now in runs_now
            .iter()
            .filter(|n| !then_runs.iter().any(|t| t.responder == n.responder))
        {
            runs.push(self.run(past, None, Some(now), &[], &declined_now).await?);
        }
        Ok(Some(AlertReplay {
            alert_id: past.id,
            received_at: store::format_time(past.received_at),
            fingerprint: past.alert.fingerprint.clone(),
            declined_then,
            declined_now,
            declines_differ,
            runs,
        }))
    }

    async fn run(
        &mut self,
        past: &PastAlert,
        then: Option<&RunRow>,
        now: Option<&RunPlan>,
        approvals: &[store::ApprovalRow],
        declined_now: &[String],
    ) -> Result<RunReplay, store::StoreError> {
        let responder_name = then.map_or_else(
            || now.map(|n| n.responder.clone()).unwrap_or_default(),
            |t| t.responder.clone(),
        );
        let then_side = then.map(|t| RunSide {
            run_id: Some(t.id),
            target: t.target.clone(),
            mode: t.mode,
            outcome: t.outcome,
        });
        let now_side = now.map(|n| RunSide {
            run_id: None,
            target: n.target.clone(),
            mode: n.mode,
            outcome: None,
        });
        let notes = run_notes(then_side.as_ref(), now_side.as_ref(), declined_now);
        let recorded = then.map_or(&[][..], |t| &t.steps[..]);
        let steps = match (now, self.catalog.responders.get(&responder_name)) {
            (Some(plan), Some(responder)) => {
                let previous = match then {
                    Some(t) => {
                        self.store
                            .previous_outputs(&t.responder, &t.target, t.id)
                            .await?
                    }
                    None => Map::new(),
                };
                let held = then.and_then(|t| {
                    let detail = &self.details[&past.incident_id];
                    detail
                        .decisions
                        .iter()
                        .find(|d| d.run_id == Some(t.id) && HELD.contains(&d.kind.as_str()))
                        .map(|d| format!("{}: {}", d.kind, d.detail))
                });
                let started = then
                    .and_then(|t| t.started_at.as_deref())
                    .and_then(unix)
                    .unwrap_or_else(|| past.received_at.unix_timestamp());
                let ctx = RunContext {
                    responder,
                    templates: &self.catalog.templates,
                    scope: Scope {
                        alert: &past.alert,
                        target: &plan.target,
                        responder: &responder.name,
                        mode: plan.mode,
                        config: self.config,
                        previous: &previous,
                    },
                    recorded,
                    approvals,
                    started,
                    held,
                };
                replay_steps(&ctx, &mut self.ledger)
            }
            _ => not_run_now(recorded),
        };
        Ok(RunReplay {
            responder: responder_name,
            then: then_side,
            now: now_side,
            notes,
            steps,
        })
    }
}

/// What changes about the run itself: it would now run, no longer run (and why), or run on
/// another target or in another mode.
fn run_notes(
    then: Option<&RunSide>,
    now: Option<&RunSide>,
    declined_now: &[String],
) -> Vec<String> {
    match (then, now) {
        (Some(t), Some(n)) => {
            let mut notes = Vec::new();
            if t.target != n.target {
                notes.push(format!("target: {} then, {} now", t.target, n.target));
            }
            if t.mode != n.mode {
                notes.push(format!("mode: {} then, {} now", t.mode, n.mode));
            }
            notes
        }
        (Some(_), None) if declined_now.is_empty() => {
            vec!["would no longer run: no route sends the alert to it now".to_owned()]
        }
        (Some(_), None) => vec![format!("would no longer run: {}", declined_now.join("; "))],
        (None, Some(_)) => vec!["would now run (no run of it then)".to_owned()],
        (None, None) => Vec::new(),
    }
}

/// The recorded steps of a run that would not happen now.
fn not_run_now(recorded: &[store::StepRow]) -> Vec<StepReplay> {
    recorded
        .iter()
        .map(|row| {
            let then = fate_then(Some(row));
            let acted = matches!(
                then.kind,
                FateKind::Ran | FateKind::Failed | FateKind::Refused | FateKind::Planned
            );
            StepReplay {
                id: row.step_id.clone(),
                action: row.action.clone(),
                destructive: row.destructive,
                then,
                now: Fate::new(FateKind::Absent, "the run would not happen"),
                differs: acted,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(target: &str, mode: &str) -> RunSide {
        RunSide {
            run_id: None,
            target: target.into(),
            mode: crate::responders::Mode::parse(mode).expect("a mode"),
            outcome: None,
        }
    }

    #[test]
    fn run_notes_name_what_changed_about_the_run() {
        let (a, b) = (side("k2-a", "live"), side("k2-b", "dry-run"));
        assert!(run_notes(Some(&a), Some(&a), &[]).is_empty());
        assert_eq!(
            run_notes(Some(&a), Some(&b), &[]),
            [
                "target: k2-a then, k2-b now",
                "mode: live then, dry-run now"
            ]
        );
        let refused = ["target_refused: outside the allow-list".to_owned()];
        assert_eq!(
            run_notes(Some(&a), None, &refused),
            ["would no longer run: target_refused: outside the allow-list"]
        );
        assert_eq!(
            run_notes(None, Some(&a), &[]),
            ["would now run (no run of it then)"]
        );
    }
}
