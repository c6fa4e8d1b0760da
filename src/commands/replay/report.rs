//! What `replay` found, as data (the `--json` form) and as text for people: per incident,
//! only what would differ, each step's fate then and now side by side.

use std::fmt::Write as _;

use serde::Serialize;

/// The whole replay.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The window, as asked (`24h`).
    pub since: String,
    /// Its start (RFC 3339).
    pub from: String,
    /// The routes directory replayed against.
    pub routes: String,
    /// The responders directory replayed against.
    pub responders: String,
    /// Firing alerts re-planned.
    pub alerts_replayed: usize,
    /// Alerts recorded in the window but not re-planned (resolves, updates, alerts folded
    /// into or joining an incident that already had its run, runs still in progress).
    pub alerts_not_replayed: usize,
    /// Differences found (steps, runs and refusals that would change).
    pub differences: usize,
    /// Steps whose fate cannot be known: they read a step not run then.
    pub unknown: usize,
    /// The incidents with something that would differ or is unknown.
    pub incidents: Vec<IncidentReplay>,
}

/// One incident's alerts that would fare differently.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentReplay {
    /// Incident id.
    pub incident_id: i64,
    /// Alert name.
    pub alertname: String,
    /// Alerts of it, re-planned.
    pub alerts: Vec<AlertReplay>,
}

/// One alert, planned again.
#[derive(Debug, Clone, Serialize)]
pub struct AlertReplay {
    /// Alert row id.
    pub alert_id: i64,
    /// When it was recorded (RFC 3339).
    pub received_at: String,
    /// Its fingerprint.
    pub fingerprint: String,
    /// Why no run was made then (route declines), one line each.
    pub declined_then: Vec<String>,
    /// Why no run would be made now.
    pub declined_now: Vec<String>,
    /// Whether the declines differ in kind.
    pub declines_differ: bool,
    /// Each responder it ran then or would run now.
    pub runs: Vec<RunReplay>,
}

/// One responder's run for the alert, then and now.
#[derive(Debug, Clone, Serialize)]
pub struct RunReplay {
    /// Responder name.
    pub responder: String,
    /// The recorded run: id, target, mode and outcome (`None`: it did not run then).
    pub then: Option<RunSide>,
    /// The run it would be now (`None`: it would not run now).
    pub now: Option<RunSide>,
    /// Changes of the run itself (it would now run, no longer run, another target or mode).
    pub notes: Vec<String>,
    /// Its steps, those that differ or are unknown first-class, the others for context.
    pub steps: Vec<StepReplay>,
}

/// A run as recorded or as replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunSide {
    /// Run id (recorded runs only).
    pub run_id: Option<i64>,
    /// Target.
    pub target: String,
    /// live / dry-run.
    pub mode: crate::responders::Mode,
    /// How it ended (recorded runs only).
    pub outcome: Option<crate::responders::outcome::RunOutcome>,
}

/// What happened, or would happen, to a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FateKind {
    /// It ran (and succeeded).
    Ran,
    /// It ran and failed, or its condition could not be evaluated.
    Failed,
    /// Its `when` was false.
    Skipped,
    /// Destructive in dry-run: planned, not done.
    Planned,
    /// Its budget, or a human, refused it.
    Refused,
    /// An earlier step stopped the run.
    NotReached,
    /// The run was cut short there then (the alert resolved, a preemption, a crash): what
    /// follows is not compared.
    Stopped,
    /// It reads a step not run then: its fate cannot be known.
    Unknown,
    /// No such step (then: added since; now: removed since).
    Absent,
}

/// A step's fate with its explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fate {
    /// What.
    pub kind: FateKind,
    /// Why, for people.
    pub detail: String,
}

impl Fate {
    /// A fate with its explanation.
    pub fn new(kind: FateKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

/// One step, then and now.
#[derive(Debug, Clone, Serialize)]
pub struct StepReplay {
    /// Step id.
    pub id: String,
    /// Action kind.
    pub action: String,
    /// Whether it changes the system.
    pub destructive: bool,
    /// What happened then.
    pub then: Fate,
    /// What would happen now.
    pub now: Fate,
    /// Whether that differs.
    pub differs: bool,
}

impl RunReplay {
    /// Whether anything of this run would differ.
    pub fn differs(&self) -> bool {
        !self.notes.is_empty() || self.steps.iter().any(|s| s.differs)
    }

    /// Whether any step's fate is unknown.
    pub fn unknown(&self) -> bool {
        self.steps.iter().any(|s| s.now.kind == FateKind::Unknown)
    }
}

/// Renders the report for people.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Replay of {} alert(s) recorded since {} (the last {}) against routes {} and responders {}: nothing was run, written or sent.",
        report.alerts_replayed, report.from, report.since, report.routes, report.responders
    );
    if report.alerts_not_replayed > 0 {
        let _ = writeln!(
            out,
            "{} other alert(s) in the window were not re-planned (resolves, updates, alerts folded into or joining an incident's run, runs still in progress).",
            report.alerts_not_replayed
        );
    }
    for incident in &report.incidents {
        let _ = writeln!(
            out,
            "\nIncident {} ({}):",
            incident.incident_id, incident.alertname
        );
        for alert in &incident.alerts {
            render_alert(&mut out, alert);
        }
    }
    let _ = writeln!(
        out,
        "\n{}",
        match (report.differences, report.unknown) {
            (0, 0) =>
                "No difference: this catalog would have done the same with every alert replayed."
                    .to_owned(),
            (d, u) => format!(
                "{d} difference(s) in {} incident(s); {u} step(s) unknown: not run then.",
                report.incidents.len()
            ),
        }
    );
    out
}

fn render_alert(out: &mut String, alert: &AlertReplay) {
    let _ = writeln!(
        out,
        "  alert {} recorded {} (fingerprint {}):",
        alert.alert_id, alert.received_at, alert.fingerprint
    );
    if alert.declines_differ {
        let _ = writeln!(
            out,
            "    refusals: then {}; now {}",
            list_or_none(&alert.declined_then),
            list_or_none(&alert.declined_now)
        );
    }
    for run in alert.runs.iter().filter(|r| r.differs() || r.unknown()) {
        let side = |s: &Option<RunSide>| match s {
            Some(s) => format!(
                "{} on {} ({}{})",
                s.run_id
                    .map_or("would run".to_owned(), |id| format!("run {id}")),
                s.target,
                s.mode.as_str(),
                s.outcome
                    .map_or(String::new(), |o| format!(", {}", o.as_str()))
            ),
            None => "no run".to_owned(),
        };
        let _ = writeln!(
            out,
            "    {}: then {}; now {}",
            run.responder,
            side(&run.then),
            side(&run.now)
        );
        for note in &run.notes {
            let _ = writeln!(out, "      ! {note}");
        }
        for step in run
            .steps
            .iter()
            .filter(|s| s.differs || s.now.kind == FateKind::Unknown)
        {
            let _ = writeln!(out, "      {}", step_line(step));
        }
    }
}

/// One step's change as a sentence, destructive ones marked.
pub fn step_line(step: &StepReplay) -> String {
    let mark = if step.destructive { " DESTRUCTIVE" } else { "" };
    let headline = match (step.then.kind, step.now.kind) {
        (_, FateKind::Unknown) => "unknown: not run then".to_owned(),
        (FateKind::Ran, FateKind::Refused) => "would have been refused".to_owned(),
        (FateKind::Refused, FateKind::Ran) => "would now be allowed".to_owned(),
        (FateKind::Ran, now) if step.destructive && now != FateKind::Ran => {
            "would NOT have happened".to_owned()
        }
        (then, FateKind::Ran) if step.destructive && then != FateKind::Ran => {
            "would now happen".to_owned()
        }
        (then, now) => format!("{} then, {} now", word(then), word(now)),
    };
    format!(
        "- {} ({}{mark}): {headline}; then: {}; now: {}",
        step.id, step.action, step.then.detail, step.now.detail
    )
}

fn word(kind: FateKind) -> &'static str {
    match kind {
        FateKind::Ran => "ran",
        FateKind::Failed => "failed",
        FateKind::Skipped => "skipped",
        FateKind::Planned => "planned (dry-run)",
        FateKind::Refused => "refused",
        FateKind::NotReached => "not reached",
        FateKind::Stopped => "cut short",
        FateKind::Unknown => "unknown",
        FateKind::Absent => "absent",
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(then: FateKind, now: FateKind, destructive: bool) -> StepReplay {
        StepReplay {
            id: "restart".into(),
            action: "docker_restart".into(),
            destructive,
            then: Fate::new(then, "as then"),
            now: Fate::new(now, "as now"),
            differs: then != now,
        }
    }

    #[test]
    fn each_change_reads_as_what_it_means() {
        use FateKind::*;
        for (then, now, destructive, headline) in [
            (
                Ran,
                Skipped,
                true,
                "(docker_restart DESTRUCTIVE): would NOT have happened",
            ),
            (
                Skipped,
                Ran,
                true,
                "(docker_restart DESTRUCTIVE): would now happen",
            ),
            (Ran, Refused, true, "would have been refused"),
            (Refused, Ran, true, "would now be allowed"),
            (
                Skipped,
                Unknown,
                false,
                "(docker_restart): unknown: not run then",
            ),
            (Ran, Skipped, false, "ran then, skipped now"),
            (Ran, Absent, true, "would NOT have happened"),
        ] {
            let line = step_line(&step(then, now, destructive));
            assert!(line.contains(headline), "{line}");
            assert!(line.ends_with("then: as then; now: as now"), "{line}");
        }
    }
}
