//! `simulate`: what the responder would do with a webhook payload, computed with the same
//! planning code dispatch uses, without running anything, writing anything or posting to Slack.
//!
//! Steps are planned with each kind's `plan()` against the alert; conditions that read other
//! steps' outputs can only be known during a run, and are reported as such. Budgets are read
//! (never consumed) from the store, when it exists.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;
use serde_json::Map;
use time::OffsetDateTime;

use crate::actions::StepEnv;
use crate::alert::{Alert, Source, Status, PD_EVENT};
use crate::config::Catalog;
use crate::dispatch::enrich::{enrich, PagerDutyLookup};
use crate::dispatch::planning::{self, RouteDecision};
use crate::limits::{admit, Admission, Budget};
use crate::responders::context::Scope;
use crate::responders::{Mode, Responder, Step};
use crate::routing::extract::LabelReport;
use crate::routing::{Explanation, Verdict};
use crate::store::Store;

pub use super::simulate_text::render_text;

/// Everything `simulate` needs besides the alerts.
#[derive(Debug)]
pub struct SimInput<'a> {
    /// The compiled catalog.
    pub catalog: &'a Catalog,
    /// The global mode from the settings.
    pub mode: Mode,
    /// `config.*` values for templates.
    pub config: &'a BTreeMap<String, String>,
    /// The store, opened read-only; `None` when the database does not exist.
    pub store: Option<&'a dyn Store>,
    /// How long an approval would wait.
    pub approval_ttl: std::time::Duration,
    /// Whether approvals can be decided at all (an admin token is configured).
    pub approvals_possible: bool,
    /// "now", for budget admission.
    pub now: OffsetDateTime,
    /// Reads PagerDuty incidents' first alerts, as dispatch would (`PAGERDUTY_API_TOKEN`).
    pub lookup: Option<&'a PagerDutyLookup>,
}

/// The simulation of one alert.
#[derive(Debug, Clone, Serialize)]
pub struct AlertSim {
    /// Alert name.
    pub alertname: String,
    /// firing / resolved.
    pub status: String,
    /// Fingerprint (the incident key).
    pub fingerprint: String,
    /// Labels, those taken from PagerDuty included.
    pub labels: BTreeMap<String, String>,
    /// Labels taken from a PagerDuty incident's details and title, and from where.
    pub label_sources: LabelReport,
    /// Every route's verdict, in evaluation order.
    pub routes: Vec<Explanation>,
    /// One entry per matching route.
    pub responders: Vec<ResponderSim>,
    /// What the service would do with this alert, in one line.
    pub outcome: String,
}

/// A pass/fail check with its explanation.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Whether it passes.
    pub ok: bool,
    /// Why.
    pub detail: String,
}

/// What one matching route's responder would do.
#[derive(Debug, Clone, Serialize)]
pub struct ResponderSim {
    /// Responder name.
    pub responder: String,
    /// Its file.
    pub file: String,
    /// The route that chose it.
    pub route: String,
    /// Required labels.
    pub required_labels: Check,
    /// The rendered target, or why it could not be rendered.
    pub target: Result<String, String>,
    /// The allow-list (`None` when there is no target to check).
    pub allow_list: Option<Check>,
    /// The mode it would run in (global mode made stricter by the responder's).
    pub mode: Mode,
    /// Whether a run would be created, or why not (exactly what dispatch would record).
    pub decision: Check,
    /// The budget its destructive steps use, each step counted separately.
    pub budget: Budget,
    /// Whether the responder leaves `budget` unset (the default applies).
    pub default_budget: bool,
    /// What an escalation of its runs would say and do: its priority, and whether it pages.
    pub escalation: String,
    /// Its steps, planned.
    pub steps: Vec<StepSim>,
}

/// One step, planned.
#[derive(Debug, Clone, Serialize)]
pub struct StepSim {
    /// Step id.
    pub id: String,
    /// Action kind.
    pub action: String,
    /// Whether it changes the system.
    pub destructive: bool,
    /// The rendered plan, e.g. `restart container k2-x (stop timeout 10s)`, or why not.
    pub plan: Result<String, String>,
    /// Its `when`, and what is known of it now.
    pub when: Option<WhenSim>,
    /// Wait before starting.
    pub after: Option<String>,
    /// Needs a human's approval.
    pub approval: bool,
    /// Budget state right now (destructive steps only).
    pub budget_now: Option<String>,
    /// What live mode would do with it.
    pub live: String,
    /// What dry-run would do with it.
    pub dry_run: String,
}

/// A `when` condition as far as it can be known before the run.
#[derive(Debug, Clone, Serialize)]
pub struct WhenSim {
    /// As written.
    pub source: String,
    /// `true`, `false`, `depends on steps.mem.memory_percent at run time`, or an error.
    pub known: String,
}

static STEP_REF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\bsteps\.[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?")
        .expect("a constant, valid regex")
});

/// Simulates every alert of a payload.
pub async fn simulate(input: &SimInput<'_>, alerts: &[Alert]) -> Vec<AlertSim> {
    let mut out = Vec::new();
    for alert in alerts {
        // The same enrichment dispatch does before planning.
        let mut alert = alert.clone();
        let sources = enrich(&mut alert, &input.catalog.extract, input.lookup).await;
        let mut sim = simulate_alert(input, &alert).await;
        sim.label_sources = sources;
        out.push(sim);
    }
    out
}

async fn simulate_alert(input: &SimInput<'_>, alert: &Alert) -> AlertSim {
    // An update is never routed: explaining routes for it would suggest it could run.
    let routes = match alert.status {
        Status::Update => Vec::new(),
        _ => input.catalog.routes.explain(&alert.labels),
    };
    let mut responders = Vec::new();
    let outcome = if alert.status == Status::Resolved {
        "resolved: would close the open incident with this fingerprint (if any) and cancel its steps not yet started; nothing runs".to_owned()
    } else if alert.status == Status::Update {
        let what = alert
            .annotations
            .get(PD_EVENT)
            .map_or("update", String::as_str);
        format!("PagerDuty {what}: would be shown in the Slack thread of the incident with this fingerprint; never routed, nothing runs")
    } else {
        for route in routes.iter().filter(|r| r.verdict == Verdict::Matched) {
            let Some(responder) = input.catalog.responders.get(&route.responder) else {
                continue;
            };
            responders.push(simulate_responder(input, alert, responder, &route.origin).await);
        }
        let runs: Vec<String> = responders
            .iter()
            .filter(|r| r.decision.ok)
            .map(|r| {
                format!(
                    "{} on {} ({})",
                    r.responder,
                    r.target.as_deref().unwrap_or("?"),
                    r.mode
                )
            })
            .collect();
        if responders.is_empty() {
            "no route matches: would open an incident, record `no route` and run nothing".to_owned()
        } else if runs.is_empty() {
            "would open an incident and record why nothing runs (see each responder)".to_owned()
        } else if alert.source == Source::PagerDuty {
            format!(
                "would open an incident and run {}, then add a note with the outcome to PagerDuty incident {} (when PAGERDUTY_API_TOKEN and PAGERDUTY_FROM are set)",
                runs.join(", "),
                alert.fingerprint
            )
        } else {
            format!("would open an incident and run {}", runs.join(", "))
        }
    };
    AlertSim {
        alertname: alert.name().to_owned(),
        status: alert.status.as_str().to_owned(),
        fingerprint: alert.fingerprint.clone(),
        labels: alert.labels.clone(),
        label_sources: LabelReport::default(),
        routes,
        responders,
        outcome,
    }
}

async fn simulate_responder(
    input: &SimInput<'_>,
    alert: &Alert,
    responder: &Responder,
    route: &str,
) -> ResponderSim {
    let templates = &input.catalog.templates;
    let required_labels = match planning::refused_label(responder, alert) {
        Some(detail) => Check { ok: false, detail },
        None if responder.require_labels.is_empty() => Check {
            ok: true,
            detail: "none required".to_owned(),
        },
        None => Check {
            ok: true,
            detail: responder
                .require_labels
                .iter()
                .map(|(l, re)| format!("{l} matches {}", re.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
        },
    };
    let target = planning::render_target(responder, alert, templates, input.mode, input.config);
    let allow_list = target.as_ref().ok().map(|t| Check {
        ok: responder.allow.permits(t),
        detail: format!(
            "`{t}` {} {}",
            if responder.allow.permits(t) {
                "matches"
            } else {
                "matches none of"
            },
            responder.allow_patterns.join(", ")
        ),
    });
    let decision = match planning::plan_route(responder, alert, templates, input.mode, input.config)
    {
        RouteDecision::Run(run) => Check {
            ok: true,
            detail: format!("a {} run of {} on {}", run.mode, run.responder, run.target),
        },
        RouteDecision::Declined { kind, detail, .. } => Check {
            ok: false,
            detail: format!("{}: {detail}", kind.as_str()),
        },
    };
    let mode = planning::effective_mode(responder, input.mode);
    let mut steps = Vec::new();
    if let Ok(target) = &target {
        for step in &responder.steps {
            steps.push(simulate_step(input, alert, responder, target, mode, step).await);
        }
    }
    ResponderSim {
        responder: responder.name.clone(),
        file: responder.file.clone(),
        route: route.to_owned(),
        required_labels,
        target,
        allow_list,
        mode,
        decision,
        budget: responder.budget,
        default_budget: responder.default_budget,
        escalation: format!(
            "{} ({}){}",
            responder.priority,
            responder.priority.meaning(),
            if responder.priority.pages() {
                ", pages PagerDuty"
            } else {
                ", Slack only"
            }
        ),
        steps,
    }
}

async fn simulate_step(
    input: &SimInput<'_>,
    alert: &Alert,
    responder: &Responder,
    target: &str,
    mode: Mode,
    step: &Step,
) -> StepSim {
    let no_outputs = Map::new();
    let scope = Scope {
        alert,
        target,
        responder: &responder.name,
        mode,
        config: input.config,
        previous: &no_outputs,
    };
    let vars = scope.vars(&no_outputs);
    let env = StepEnv {
        templates: &input.catalog.templates,
        vars: &vars,
        allow: &responder.allow,
    };
    let kind = step.action.kind();
    let plan = kind
        .plan(&env)
        .map_err(|e| format!("cannot be planned before the run: {e}"));
    let when = step.when.as_ref().map(|expr| {
        let refs: Vec<&str> = STEP_REF
            .find_iter(&expr.source)
            .map(|m| m.as_str())
            .collect();
        let known = if refs.is_empty() {
            match input.catalog.templates.eval(expr, &vars) {
                Ok(b) => b.to_string(),
                Err(e) => format!("cannot be evaluated: {e}"),
            }
        } else {
            format!("depends on {} at run time", refs.join(", "))
        };
        WhenSim {
            source: expr.source.clone(),
            known,
        }
    });
    let planned = plan.clone().unwrap_or_else(|_| kind.name().to_owned());
    let (budget_now, live, dry_run) = if kind.destructive() {
        let budget_now =
            budget_state(input, &responder.name, target, &step.id, &responder.budget).await;
        let approval = if step.approval {
            if input.approvals_possible {
                format!(
                    "ask for approval (expires after {}), then ",
                    humantime::format_duration(input.approval_ttl)
                )
            } else {
                "ask for approval, which can only expire (no RESPONDER_ADMIN_TOKEN), then "
                    .to_owned()
            }
        } else {
            String::new()
        };
        (
            Some(budget_now),
            format!("{approval}{planned}, if the {} budget admits it", step.id),
            format!("record \"would {planned}\"; touches nothing"),
        )
    } else {
        (
            None,
            "runs (read-only)".to_owned(),
            "runs too: read-only steps run in dry-run".to_owned(),
        )
    };
    StepSim {
        id: step.id.clone(),
        action: kind.name().to_owned(),
        destructive: kind.destructive(),
        plan,
        when,
        after: step
            .after
            .map(|d| humantime::format_duration(d).to_string()),
        approval: step.approval,
        budget_now,
        live,
        dry_run,
    }
}

/// The budget of (responder, target, step) right now, read from the store without using it.
async fn budget_state(
    input: &SimInput<'_>,
    responder: &str,
    target: &str,
    step: &str,
    budget: &Budget,
) -> String {
    let Some(store) = input.store else {
        return "no history (no database): the first use would be allowed".to_owned();
    };
    let now = input.now.unix_timestamp();
    let horizon = i64::try_from(budget.per.max(budget.cooldown).as_secs()).unwrap_or(i64::MAX / 2);
    match store
        .budget_uses(responder, target, step, now - horizon)
        .await
    {
        Err(e) => format!("unknown: could not read the store: {e}"),
        Ok(uses) => match admit(budget, &uses, now) {
            Admission::Refused { reason } => format!("would be refused: {reason}"),
            Admission::Allowed if uses.is_empty() => {
                "allowed: no use recorded in the window".to_owned()
            }
            Admission::Allowed => format!(
                "allowed: {} use(s) in the last {} (max {})",
                uses.len(),
                humantime::format_duration(budget.per),
                budget.max
            ),
        },
    }
}
