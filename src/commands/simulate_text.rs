//! The readable form of a simulation, for people at a terminal.

use std::fmt::Write as _;

use super::simulate::{AlertSim, ResponderSim};
use crate::routing::Verdict;

fn mark(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "NO"
    }
}

/// Renders the simulation of every alert as text.
pub fn render_text(sims: &[AlertSim], store_note: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Simulation: nothing was run, written or posted. Budgets: {store_note}."
    );
    for (i, sim) in sims.iter().enumerate() {
        let labels: Vec<String> = sim.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            out,
            "\nAlert {}/{}: {} ({}, fingerprint {})\n  labels: {}",
            i + 1,
            sims.len(),
            sim.alertname,
            sim.status,
            sim.fingerprint,
            labels.join(", ")
        );
        for taken in &sim.label_sources.taken {
            let _ = writeln!(
                out,
                "  label {}={} taken from {}",
                taken.label, taken.value, taken.from
            );
        }
        for note in &sim.label_sources.notes {
            let _ = writeln!(out, "  labels: {note}");
        }
        let _ = writeln!(
            out,
            "  Routes:{}",
            if sim.routes.is_empty() {
                " none evaluated"
            } else {
                ""
            }
        );
        for route in &sim.routes {
            let sign = match route.verdict {
                Verdict::Matched => "+",
                Verdict::NoMatch { .. } => "-",
                Verdict::Shadowed { .. } => ".",
            };
            let _ = writeln!(out, "    {sign} {}", route.line());
        }
        for r in &sim.responders {
            render_responder(&mut out, r);
        }
        let _ = writeln!(out, "  Outcome: {}", sim.outcome);
    }
    out
}

fn render_responder(out: &mut String, r: &ResponderSim) {
    let _ = writeln!(
        out,
        "  Responder {} ({}), chosen by {}:",
        r.responder, r.file, r.route
    );
    let _ = writeln!(
        out,
        "    required labels: {} ({})",
        mark(r.required_labels.ok),
        r.required_labels.detail
    );
    match &r.target {
        Ok(t) => {
            let _ = writeln!(out, "    target: {t}");
        }
        Err(e) => {
            let _ = writeln!(out, "    target: NOT RENDERED ({e})");
        }
    }
    if let Some(allow) = &r.allow_list {
        let _ = writeln!(out, "    allow-list: {} ({})", mark(allow.ok), allow.detail);
    }
    let _ = writeln!(
        out,
        "    budget per destructive step: cooldown {}, max {} per {}{}",
        humantime::format_duration(r.budget.cooldown),
        r.budget.max,
        humantime::format_duration(r.budget.per),
        if r.default_budget { " (default)" } else { "" }
    );
    let _ = writeln!(out, "    escalation: {}", r.escalation);
    let _ = writeln!(out, "    mode: {}", r.mode);
    if r.decision.ok {
        let _ = writeln!(out, "    would create {}", r.decision.detail);
    } else {
        let _ = writeln!(out, "    would NOT run: {}", r.decision.detail);
    }
    if r.steps.is_empty() {
        return;
    }
    let _ = writeln!(out, "    Steps:");
    for (i, s) in r.steps.iter().enumerate() {
        let destructive = if s.destructive {
            " [DESTRUCTIVE, budgeted]"
        } else {
            ""
        };
        let approval = if s.approval {
            " [approval required]"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "      {}. {} ({}){destructive}{approval}",
            i + 1,
            s.id,
            s.action
        );
        match &s.plan {
            Ok(p) => {
                let _ = writeln!(out, "         plan: {p}");
            }
            Err(e) => {
                let _ = writeln!(out, "         plan: {e}");
            }
        }
        if let Some(when) = &s.when {
            let _ = writeln!(out, "         when: {} -> {}", when.source, when.known);
        }
        if let Some(after) = &s.after {
            let _ = writeln!(out, "         after: waits {after}");
        }
        if let Some(budget) = &s.budget_now {
            let _ = writeln!(out, "         budget now: {budget}");
        }
        let _ = writeln!(out, "         live: {}", s.live);
        let _ = writeln!(out, "         dry-run: {}", s.dry_run);
    }
}
