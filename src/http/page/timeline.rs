//! Turns an [`IncidentDetail`] into what the detail template shows: one list of events in time
//! order (alerts, run start and end, steps, decisions, approvals, messages).

use serde::Serialize;
use time::OffsetDateTime;

use crate::store::{ApprovalRow, ApprovalState, IncidentDetail, RunRow};

/// A string longer than this is cut in the compact key/value list (the JSON has it whole).
const SHORT_VALUE: usize = 160;

/// One line of the timeline.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Event {
    /// RFC 3339 as recorded, or empty when the event has no time yet.
    pub at: String,
    /// `alert`, `run`, `step`, `decision`, `approval` or `message`: the CSS class.
    pub kind: &'static str,
    /// The headline.
    pub title: String,
    /// A state shown as a badge.
    pub state: Option<String>,
    /// One line under the headline.
    pub summary: Option<String>,
    /// Error text, shown in red.
    pub error: Option<String>,
    /// Compact key/value pairs.
    pub fields: Vec<(String, String)>,
    /// Longer text or pretty JSON, folded in `<details>`.
    pub details: Option<String>,
    /// What the `<details>` summary says.
    pub details_label: &'static str,
    /// Highlighted: an approval still waiting for a human.
    pub pending: bool,
    #[serde(skip)]
    sort: Option<OffsetDateTime>,
}

impl Event {
    fn new(at: Option<&str>, kind: &'static str, title: String) -> Self {
        let at = at.unwrap_or_default().to_owned();
        Self {
            sort: parse(&at),
            at,
            kind,
            title,
            state: None,
            summary: None,
            error: None,
            fields: Vec::new(),
            details: None,
            details_label: "details",
            pending: false,
        }
    }
}

fn parse(at: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
}

/// `2026-11-27 06:17:03 UTC` from RFC 3339 text; the text itself when it does not parse.
pub(super) fn display_time(at: &str) -> String {
    match parse(at) {
        Some(t) => {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        }
        None => at.to_owned(),
    }
}

/// Scalar outputs as short `key = value` pairs; nested values are left to the JSON.
fn compact(value: &serde_json::Value) -> Vec<(String, String)> {
    let Some(map) = value.as_object() else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(items) => format!("[{} items]", items.len()),
                serde_json::Value::Object(fields) => format!("{{{} fields}}", fields.len()),
                other => other.to_string(),
            };
            (!text.is_empty()).then(|| (k.clone(), shorten(&text)))
        })
        .collect()
}

fn shorten(text: &str) -> String {
    crate::text::first_line(text, SHORT_VALUE)
}

fn pretty(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::Object(m) if m.is_empty() => None,
        v => serde_json::to_string_pretty(v).ok(),
    }
}

fn run_events(run: &RunRow, events: &mut Vec<Event>) {
    let mut start = Event::new(
        run.started_at.as_deref(),
        "run",
        format!(
            "Run #{} {}: {} on {}",
            run.id,
            if run.started_at.is_some() {
                "started"
            } else {
                "planned"
            },
            run.responder,
            run.target
        ),
    );
    // Once finished, the outcome shows on the end event; the start shows a live state only.
    if run.finished_at.is_none() {
        start.state = Some(run.state.as_str().to_owned());
    }
    start
        .fields
        .push(("mode".to_owned(), run.mode.as_str().to_owned()));
    events.push(start);
    for step in &run.steps {
        let mut e = Event::new(
            Some(&step.started_at),
            "step",
            format!(
                "Step {} ({}{})",
                step.step_id,
                step.action,
                if step.destructive {
                    ", destructive"
                } else {
                    ""
                }
            ),
        );
        e.state = Some(step.state.as_str().to_owned());
        e.summary = step.summary.clone();
        e.error = step.error.clone();
        if let Some(outputs) = &step.outputs {
            e.fields = compact(outputs);
            e.details = pretty(outputs);
            e.details_label = "outputs (JSON)";
        }
        if let (Some(a), Some(b)) = (
            parse(&step.started_at),
            step.finished_at.as_deref().and_then(parse),
        ) {
            let ms = (b - a).whole_milliseconds();
            e.fields.insert(
                0,
                ("took".to_owned(), format!("{:.1} s", ms as f64 / 1000.0)),
            );
        }
        events.push(e);
    }
    if let Some(finished) = run.finished_at.as_deref() {
        let mut end = Event::new(Some(finished), "run", format!("Run #{} finished", run.id));
        end.state = Some(
            run.outcome
                .map_or(run.state.as_str(), |o| o.as_str())
                .to_owned(),
        );
        end.summary = run.summary.clone();
        events.push(end);
    }
}

fn approval_events(a: &ApprovalRow, events: &mut Vec<Event>) {
    let mut asked = Event::new(
        Some(&a.requested_at),
        "approval",
        format!(
            "Approval requested for step {} (run #{})",
            a.step_id, a.run_id
        ),
    );
    asked.summary = Some(a.plan.clone());
    asked.state = Some(a.state.as_str().to_owned());
    asked.pending = a.state == ApprovalState::Pending;
    if asked.pending {
        if let Ok(expires) = OffsetDateTime::from_unix_timestamp(a.expires_at_unix) {
            asked.fields.push((
                "expires".to_owned(),
                display_time(&crate::store::format_time(expires)),
            ));
        }
    }
    events.push(asked);
    if let Some(decided) = a.decided_at.as_deref() {
        let mut e = Event::new(
            Some(decided),
            "approval",
            format!("Approval for step {} {}", a.step_id, a.state),
        );
        e.state = Some(a.state.as_str().to_owned());
        if let Some(by) = &a.decided_by {
            e.fields.push(("by".to_owned(), by.clone()));
        }
        events.push(e);
    }
}

/// Every event of the incident, oldest first; events without a time (a run not yet started)
/// come last. Ties keep the order they were recorded in.
pub(super) fn build(detail: &IncidentDetail) -> Vec<Event> {
    let mut events = Vec::new();
    for alert in &detail.alerts {
        let mut e = Event::new(
            Some(&alert.received_at),
            "alert",
            format!("Alert {} received", alert.status.as_str()),
        );
        e.state = Some(alert.status.as_str().to_owned());
        e.summary = alert
            .annotations
            .get("summary")
            .and_then(|s| s.as_str())
            .map(str::to_owned);
        e.fields = compact(&alert.labels);
        e.fields
            .push(("starts".to_owned(), display_time(&alert.starts_at)));
        e.details = pretty(&serde_json::json!({
            "labels": alert.labels,
            "annotations": alert.annotations,
            "startsAt": alert.starts_at,
            "endsAt": alert.ends_at,
        }));
        e.details_label = "labels and annotations";
        events.push(e);
    }
    for run in &detail.runs {
        run_events(run, &mut events);
    }
    for d in &detail.decisions {
        let mut e = Event::new(Some(&d.at), "decision", format!("Decision: {}", d.kind));
        e.summary = Some(d.detail.clone());
        if let Some(run) = d.run_id {
            e.fields.push(("run".to_owned(), format!("#{run}")));
        }
        events.push(e);
    }
    for a in &detail.approvals {
        approval_events(a, &mut events);
    }
    for m in &detail.messages {
        let mut e = Event::new(
            Some(m.sent_at.as_deref().unwrap_or(&m.created_at)),
            "message",
            format!("Slack {} message", m.kind),
        );
        e.state = Some(m.state.as_str().to_owned());
        e.summary = m.text.lines().next().map(shorten);
        e.error = m.last_error.clone();
        e.fields
            .push(("attempts".to_owned(), m.attempts.to_string()));
        if m.sent_at.is_some() {
            e.fields
                .push(("queued".to_owned(), display_time(&m.created_at)));
        }
        e.details = Some(m.text.clone());
        e.details_label = "full text";
        events.push(e);
    }
    // Stable: equal times keep insertion order (a run's start before its first step).
    events.sort_by_key(|e| (e.sort.is_none(), e.sort));
    events
}

/// The badge colour of a state or outcome.
pub(super) fn tone(state: &str) -> &'static str {
    match state {
        "succeeded" | "sent" | "approved" | "resolved" | "finished" => "ok",
        "failed" | "denied" | "refused" | "interrupted" | "unknown" | "escalated" => "bad",
        "pending" | "running" | "started" | "firing" | "open" => "warn",
        _ => "muted",
    }
}
