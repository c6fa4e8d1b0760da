//! Message text (Slack mrkdwn): the incident's parent message and its thread replies.

use crate::alert::{slot, Alert, PD_AGENT, PD_EVENT, PD_NOTE};
use crate::store::{
    DecisionKind, IncidentStatus, IncidentView, RunOutcome, RunState, StepEnd, StepRow, StepState,
};

/// Decisions that follow an incident's first alert without saying why it was not acted on.
const FOLLOWERS: [DecisionKind; 2] = [DecisionKind::Folded, DecisionKind::Joined];

/// Escapes Slack's three control characters so text stays text: alert data such as
/// `<!channel>` or `<https://example.com|approve>` would otherwise ping a whole channel or
/// dress up a link (Slack: "escape &, < and > in text").
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The parent message: alert, target, severity, status, then what was found and done.
pub fn parent(view: &IncidentView) -> String {
    let i = &view.incident;
    // A missed scheduled slot is routine news, not an incident: one line says so.
    let missed = (view.decisions.iter()).find(|d| d.kind == DecisionKind::SlotMissed);
    if let (None, Some(missed)) = (&view.run, missed) {
        return format!(":calendar: {}", missed.detail);
    }
    let resolved = i.status == IncidentStatus::Resolved;
    // A scheduled run is routine work, not an alarm.
    let scheduled = i.fingerprint.starts_with(slot::FINGERPRINT_PREFIX);
    if let Some(closing) = scheduled.then(|| closing_report(view)).flatten() {
        return closing;
    }
    let (icon, state) = match (scheduled, resolved) {
        (true, true) => (":calendar:", "DONE"),
        (true, false) => (":calendar:", "RUNNING"),
        (false, true) => (":white_check_mark:", "RESOLVED"),
        (false, false) => (":rotating_light:", "FIRING"),
    };
    let mut lines = vec![format!(
        "{icon} *{}* {state} · target `{}` · severity *{}*",
        i.alertname,
        i.target.as_deref().unwrap_or("-"),
        i.severity.as_deref().unwrap_or("none"),
    )];
    match &view.run {
        None => {
            // Why the first alert was not acted on: folds and joins say nothing new.
            let why = view
                .decisions
                .iter()
                .rev()
                .find(|d| !FOLLOWERS.contains(&d.kind))
                .map(|d| d.detail.as_str())
                .unwrap_or("no responder ran");
            lines.push(format!("Not acted on: {why}"));
        }
        Some(run) => {
            let progress = match (run.state, run.outcome) {
                (_, Some(outcome)) => {
                    format!("*{outcome}*: {}", run.summary.as_deref().unwrap_or(""))
                }
                (RunState::Pending, _) => "waiting for its turn".to_owned(),
                _ => "running…".to_owned(),
            };
            lines.push(format!(
                "Responder *{}* ({}): {progress}",
                run.responder, run.mode
            ));
            let found = summaries(&run.steps, |s| {
                s.state == StepState::Succeeded && !is_destructive_row(s)
            });
            if !found.is_empty() {
                lines.push(format!("Found: {found}"));
            }
            let done = summaries(&run.steps, |s| {
                is_destructive_row(s) && s.state != StepState::Skipped
            });
            if !done.is_empty() {
                lines.push(format!("Done: {done}"));
            }
        }
    }
    if view.firing > 1 {
        // Counted in place: a storm edits this line instead of adding a reply per alert.
        lines.push(format!(
            "{} firing alerts of this name and target folded into this thread",
            view.firing
        ));
    }
    if let Some(at) = &i.resolved_at {
        let closed = if scheduled { "Done" } else { "Resolved" };
        lines.push(format!("{closed} at {at}"));
    }
    lines.join("\n")
}

/// A finished scheduled run that posted a report (the daily health check, say): the
/// channel's one message becomes that report, its last, followed by one line on the run, so
/// people read the report without opening the thread (each step stays there). `None` while
/// the run goes on, or when it posted no report.
fn closing_report(view: &IncidentView) -> Option<String> {
    let run = view.run.as_ref()?;
    let outcome = run.outcome?;
    let report = (run.steps.iter().rev())
        .filter(|s| s.action == "report" && s.state == StepState::Succeeded)
        .find_map(|s| {
            let text = s.outputs.as_ref().and_then(|o| o.get("text"));
            (text.and_then(|t| t.as_str()).map(str::to_owned)).or_else(|| s.summary.clone())
        })?;
    // To the second: the parent is read by people, not parsed.
    let at = (view.incident.resolved_at.as_deref()).map_or(String::new(), |at| {
        format!(" · done at {}Z", at.get(..19).unwrap_or(at))
    });
    let note = match outcome {
        RunOutcome::Succeeded => String::new(),
        other => format!(": {}", run.summary.as_deref().unwrap_or(other.as_str())),
    };
    Some(format!(
        "{report}\n:calendar: _{} · responder {} ({}) *{outcome}*{note}{at} · every step in the thread_",
        view.incident.alertname, run.responder, run.mode
    ))
}

fn is_destructive_row(step: &StepRow) -> bool {
    // The flag recorded with the step, so a `find_files` delete or a `docker_exec` that
    // changes things counts as done; planned (dry-run) and refused rows only exist for
    // destructive steps.
    step.destructive || matches!(step.state, StepState::Planned | StepState::Refused)
}

fn summaries(steps: &[StepRow], keep: impl Fn(&StepRow) -> bool) -> String {
    steps
        .iter()
        .filter(|s| keep(s))
        .map(|s| {
            format!(
                "{}: {}",
                s.step_id,
                s.summary.as_deref().unwrap_or(s.state.as_str())
            )
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// One thread reply per step.
/// `at` is when the step ended: every number in the reply was read then.
pub fn step_reply(
    step_id: &str,
    action: &str,
    mode: &str,
    end: &StepEnd,
    at: time::OffsetDateTime,
) -> String {
    let icon = match end.state {
        StepState::Succeeded => ":white_check_mark:",
        StepState::Failed => ":x:",
        StepState::Skipped => ":fast_forward:",
        StepState::Refused => ":no_entry:",
        StepState::Cancelled => ":heavy_minus_sign:",
        StepState::Planned => ":memo:",
        StepState::Started | StepState::Unknown => ":grey_question:",
    };
    // Every reply says whether it acted for real: people read threads out of context.
    let tag = format!(" [{mode}]");
    let clock = format!("{:02}:{:02}:{:02}Z", at.hour(), at.minute(), at.second());
    format!(
        "{icon} *{step_id}* (`{action}`){tag} {clock}: {}",
        end.summary
    )
}

/// A PagerDuty acknowledgement or note, as a thread reply. Names and notes are PagerDuty
/// data, so Slack's control characters in them are escaped (no mentions, no links).
pub fn pagerduty_update(update: &Alert) -> String {
    let field = |name: &str| escape(update.annotations.get(name).map_or("", String::as_str));
    let who = field(PD_AGENT);
    match update.annotations.get(PD_EVENT).map(String::as_str) {
        Some("acknowledged") => format!(":eyes: Acknowledged in PagerDuty by *{who}*"),
        Some("annotated") => format!(
            ":memo: Note in PagerDuty by *{who}*:\n>{}",
            field(PD_NOTE).replace('\n', "\n>")
        ),
        other => format!(
            ":information_source: PagerDuty: {} by *{who}*",
            escape(other.unwrap_or("update"))
        ),
    }
}

/// `seconds` as people write it: `4m12s`, `30m`, `1h5m`, `45s`.
pub fn compact_duration(seconds: i64) -> String {
    let d = std::time::Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    let (h, m, s) = (d.as_secs() / 3600, d.as_secs() / 60 % 60, d.as_secs() % 60);
    let parts = [(h, "h"), (m, "m"), (s, "s")];
    let text: String = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if text.is_empty() {
        "0s".to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::responders::Mode;
    use crate::store::{DecisionRow, IncidentRow, RunRow};

    fn decision(kind: DecisionKind, detail: &str) -> DecisionRow {
        DecisionRow {
            kind,
            detail: detail.to_owned(),
            run_id: None,
            at: "2026-11-27T05:00:00Z".to_owned(),
        }
    }

    fn view(firing: i64, decisions: Vec<DecisionRow>) -> IncidentView {
        IncidentView {
            incident: IncidentRow {
                id: 1,
                fingerprint: "f".into(),
                alertname: "Noise".into(),
                severity: None,
                target: Some("web-1".into()),
                status: IncidentStatus::Open,
                summary: None,
                opened_at: "2026-11-27T05:00:00Z".into(),
                resolved_at: None,
                run_state: None,
                run_outcome: None,
            },
            run: None,
            decisions,
            firing,
            posted: true,
        }
    }

    fn step(id: &str, action: &str, state: &str, text: &str) -> StepRow {
        StepRow {
            step_id: id.into(),
            action: action.into(),
            destructive: false,
            state: StepState::parse(state).expect("a step state"),
            summary: Some(text.into()),
            outputs: Some(serde_json::json!({ "text": text })),
            error: None,
            started_at: "2026-12-04T08:00:01Z".into(),
            finished_at: None,
        }
    }

    #[test]
    fn a_finished_scheduled_run_shows_its_last_report_as_the_parent() {
        let mut v = view(1, Vec::new());
        v.incident.fingerprint = format!("{}daily-health:1", slot::FINGERPRINT_PREFIX);
        v.incident.alertname = "daily-health (scheduled)".into();
        v.incident.status = IncidentStatus::Resolved;
        v.incident.resolved_at = Some("2026-12-04T08:00:09Z".into());
        let mut run = crate::store::RunRow {
            id: 1,
            responder: "daily-health".into(),
            target: "daily-health".into(),
            mode: Mode::Live,
            state: RunState::Finished,
            outcome: Some(RunOutcome::Succeeded),
            summary: Some("no change needed".into()),
            started_at: None,
            finished_at: None,
            steps: vec![
                step("early", "report", "succeeded", "not this one"),
                step(
                    "report",
                    "report",
                    "succeeded",
                    "*Daily health* :red_circle: red\nline",
                ),
                step("late", "report", "skipped", "skipped: false"),
            ],
        };
        v.run = Some(run.clone());
        let text = parent(&v);
        assert!(
            text.starts_with("*Daily health* :red_circle: red\nline\n"),
            "{text}"
        );
        assert!(
            text.contains("responder daily-health (live) *succeeded*"),
            "{text}"
        );
        assert!(text.contains("done at 2026-12-04T08:00:09Z"), "{text}");
        // Still running: the usual parent.
        run.outcome = None;
        v.run = Some(run.clone());
        assert!(parent(&v).starts_with(":calendar: *daily-health (scheduled)*"));
        // An alert's incident keeps the usual parent whatever it reported.
        run.outcome = Some(RunOutcome::Succeeded);
        v.run = Some(run);
        v.incident.fingerprint = "f".into();
        assert!(parent(&v).starts_with(":white_check_mark:"));
    }

    #[test]
    fn a_parent_counts_folded_alerts_and_keeps_the_first_reason() {
        let one = parent(&view(1, vec![decision(DecisionKind::NoRoute, "no route")]));
        assert!(one.contains("Not acted on: no route"), "{one}");
        assert!(!one.contains("folded"), "one alert, no count: {one}");
        let storm = parent(&view(
            1000,
            vec![
                decision(
                    DecisionKind::TargetRefused,
                    "web-1 is outside the allow-list",
                ),
                decision(DecisionKind::Folded, "Noise for web-1 folded"),
            ],
        ));
        assert!(
            storm.contains("Not acted on: web-1 is outside the allow-list"),
            "the reason, not the last fold: {storm}"
        );
        assert!(
            storm.contains("1000 firing alerts of this name and target folded into this thread"),
            "{storm}"
        );
    }

    fn recorded(step_id: &str, action: &str, destructive: bool, summary: &str) -> StepRow {
        StepRow {
            destructive,
            ..step(step_id, action, "succeeded", summary)
        }
    }

    #[test]
    fn what_was_done_is_decided_by_the_recorded_flag_not_the_action_name() {
        let mut v = view(1, vec![]);
        v.run = Some(RunRow {
            id: 1,
            responder: "checkpoint-disk".into(),
            target: "k2-spark-master".into(),
            mode: Mode::Live,
            state: RunState::Finished,
            outcome: Some(RunOutcome::Succeeded),
            summary: Some("deleted 3 files".into()),
            started_at: None,
            finished_at: None,
            steps: vec![
                recorded("old_metadata", "find_files", false, "3 files match"),
                recorded("cleanup", "find_files", true, "deleted 3 files"),
            ],
        });
        let text = parent(&v);
        assert!(
            text.contains("Found: old_metadata: 3 files match"),
            "{text}"
        );
        assert!(text.contains("Done: cleanup: deleted 3 files"), "{text}");
        assert!(!text.contains("cleanup: deleted 3 files ·"), "{text}");
    }

    #[test]
    fn durations_read_as_people_write_them() {
        let cases = [
            (0, "0s"),
            (45, "45s"),
            (252, "4m12s"),
            (1800, "30m"),
            (3900, "1h5m"),
            (-3, "0s"),
        ];
        for (seconds, text) in cases {
            assert_eq!(compact_duration(seconds), text);
        }
    }
}
