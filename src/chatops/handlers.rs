//! `POST /slack/commands`: verify, parse, authorize, do, audit, and answer within 3 s.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use time::OffsetDateTime;

use super::command::{self, Command, Permission};
use super::{audit, ephemeral, follow_up, form, loggable, status, verified, who, SlackState};
use super::{runs, schedules};
use crate::http::ApiError;
use crate::responders::Mode;
use crate::store::AuditOutcome;
use crate::store::NewAudit;

/// How long a reply may wait for work before answering and following up via `response_url`;
/// with a group lookup (at most 1 s) it stays inside the 3 s Slack waits.
pub(super) const INLINE_BUDGET: Duration = Duration::from_millis(1800);

/// The fields of a slash command this service reads.
#[derive(Debug, Deserialize)]
pub(super) struct SlashForm {
    #[serde(default)]
    command: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    user_name: String,
    #[serde(default)]
    pub(super) response_url: String,
    #[serde(default)]
    pub(super) trigger_id: String,
}

/// How a command ended, for the audit.
pub(super) struct Done {
    outcome: AuditOutcome,
    detail: String,
    reply: String,
}

impl Done {
    pub(super) fn ok(detail: impl Into<String>, reply: impl Into<String>) -> Self {
        Self::new(AuditOutcome::Allowed, detail, reply)
    }

    pub(super) fn new(
        outcome: AuditOutcome,
        detail: impl Into<String>,
        reply: impl Into<String>,
    ) -> Self {
        Self {
            outcome,
            detail: detail.into(),
            reply: reply.into(),
        }
    }
}

/// `POST /slack/commands`.
pub(super) async fn command(
    State(state): State<SlackState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body = verified(&state, &headers, body)?;
    let slash: SlashForm = form(&body)?;
    if slash.user_id.is_empty() {
        return Err(ApiError::BadRequest("slash command without user_id".into()));
    }
    let (name, done) = answer(&state, &slash).await;
    audit(
        &state,
        NewAudit {
            user_id: slash.user_id.clone(),
            user_name: slash.user_name.clone(),
            command: name.to_owned(),
            args: slash.text.trim().chars().take(500).collect(),
            outcome: done.outcome,
            detail: done.detail,
        },
    )
    .await;
    Ok(ephemeral(done.reply))
}

/// The subcommand's name and how it ended.
async fn answer(state: &SlackState, slash: &SlashForm) -> (&'static str, Done) {
    let settings = &state.settings;
    if slash.command != settings.command {
        let why = format!(
            "this service answers {} only, not {}",
            settings.command, slash.command
        );
        let reply = format!(":no_entry: Not mine: {why}. Check the command in the Slack app.");
        return ("unknown", Done::new(AuditOutcome::Refused, why, reply));
    }
    let cmd = match command::parse(&slash.text) {
        Ok(cmd) => cmd,
        Err(why) => {
            let reply = format!(":question: {why}.\n{}", command::usage(&settings.command));
            return ("invalid", Done::new(AuditOutcome::Failed, why, reply));
        }
    };
    if let Some(permission) = cmd.permission() {
        let allowed = match permission {
            Permission::Run => &settings.run_allowed,
            Permission::Approve => &settings.approve_allowed,
            Permission::Mode => &settings.mode_allowed,
        };
        if let Err(why) = state
            .access
            .check(&slash.user_id, allowed, permission.setting())
            .await
        {
            let reply = format!(
                ":no_entry: Not allowed: `{}` needs you in {}; {why}. The attempt is recorded.",
                cmd.name(),
                permission.setting()
            );
            return (cmd.name(), Done::new(AuditOutcome::Refused, why, reply));
        }
    }
    (cmd.name(), execute(state, slash, &cmd).await)
}

async fn execute(state: &SlackState, slash: &SlashForm, cmd: &Command) -> Done {
    let by = who(&slash.user_name, &slash.user_id);
    match cmd {
        Command::Help => Done::ok(
            "help",
            format!(
                "{}\nMode: {}",
                command::usage(&state.settings.command),
                state.modes.describe()
            ),
        ),
        Command::Status(one) => status_reply(state, one.clone(), &slash.response_url).await,
        Command::Incidents { open_only } => incidents(state, *open_only).await,
        Command::Run {
            responder,
            target: Some(target),
        } => runs::run(state, slash, responder, target, &by).await,
        Command::Run {
            responder,
            target: None,
        } => runs::run_now(state, slash, responder, &by).await,
        Command::Schedule => schedules::list(state),
        Command::Approve(incident) => decide(state, *incident, true, &by).await,
        Command::Deny(incident) => decide(state, *incident, false, &by).await,
        Command::Mode(None) => Done::ok("show", format!("Mode: {}", state.modes.describe())),
        Command::Mode(Some((mode, scope))) => set_mode(state, *mode, scope.as_deref(), &by).await,
        Command::Trust { responder, target } => trust(state, responder, target, &by).await,
    }
}

async fn status_reply(state: &SlackState, one: Option<String>, response_url: &str) -> Done {
    let (actions, names) = (
        state.actions.clone(),
        state.settings.status_containers.clone(),
    );
    let work = tokio::spawn(async move {
        status::collect(&actions, &names, one.as_deref())
            .await
            .map(|rows| {
                if rows.is_empty() {
                    "No containers match SLACK_STATUS_CONTAINERS.".to_owned()
                } else {
                    status::table(&rows)
                }
            })
    });
    let mut work = work;
    match tokio::time::timeout(INLINE_BUDGET, &mut work).await {
        Ok(Ok(Ok(table))) => Done::ok("status", table),
        Ok(Ok(Err(why))) => Done::new(
            AuditOutcome::Failed,
            why.clone(),
            format!(":warning: {why}"),
        ),
        Ok(Err(_)) => Done::new(
            AuditOutcome::Failed,
            "status task failed",
            ":warning: Status failed.",
        ),
        Err(_) => {
            // Slack gives up after 3 s; the table follows when the engine has answered.
            let (state, url) = (state.clone(), response_url.to_owned());
            tokio::spawn(async move {
                let text = match work.await {
                    Ok(Ok(table)) => table,
                    Ok(Err(why)) => format!(":warning: {why}"),
                    Err(_) => ":warning: Status failed.".to_owned(),
                };
                follow_up(&state, &url, text);
            });
            Done::ok(
                "status (follows via response_url)",
                ":hourglass_flowing_sand: Asking Docker; the table follows in a moment.",
            )
        }
    }
}

async fn incidents(state: &SlackState, open_only: bool) -> Done {
    let rows = match state.store.list_incidents(open_only, 15).await {
        Ok(rows) => rows,
        Err(e) => {
            return Done::new(
                AuditOutcome::Failed,
                e.to_string(),
                ":warning: The record is unavailable; try again.",
            )
        }
    };
    if rows.is_empty() {
        let none = if open_only {
            "No open incidents."
        } else {
            "No incidents yet."
        };
        return Done::ok("none", none);
    }
    let lines: Vec<String> = rows
        .iter()
        .map(|i| {
            let target = i
                .target
                .as_deref()
                .map(|t| format!(" `{t}`"))
                .unwrap_or_default();
            let run = i
                .run_outcome
                .map(|o| o.as_str())
                .or(i.run_state.map(|s| s.as_str()))
                .unwrap_or("no run");
            let summary = i
                .summary
                .as_deref()
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            format!(
                "• *#{}* {} {}{target}, {run}, opened {}{summary}",
                i.id, i.status, i.alertname, i.opened_at
            )
        })
        .collect();
    let title = if open_only {
        "Open incidents"
    } else {
        "Recent incidents"
    };
    Done::ok(
        format!("{} listed", rows.len()),
        format!("*{title}*\n{}", lines.join("\n")),
    )
}

async fn decide(state: &SlackState, incident: i64, approve: bool, by: &str) -> Done {
    let now = OffsetDateTime::now_utc();
    match state
        .store
        .decide_approval(incident, approve, by, now)
        .await
    {
        Ok(Some(row)) => {
            state.approvals.notify_waiters();
            let verb = if approve { "Approved" } else { "Denied" };
            Done::ok(
                format!("{} approval {} of incident {incident}", row.state, row.id),
                format!(
                    "{verb} *{}* of incident *#{incident}*: {}",
                    row.step_id, row.plan
                ),
            )
        }
        Ok(None) => {
            // `approve` never picks an option of a choice for a person: its buttons do.
            let why = format!("incident {incident} has no pending approval (decided, expired, or cancelled by a resolve; an option of a choice is approved with its button)");
            Done::new(
                AuditOutcome::Failed,
                why.clone(),
                format!(":information_source: Nothing changed: {why}."),
            )
        }
        Err(e) => Done::new(
            AuditOutcome::Failed,
            e.to_string(),
            ":warning: The record is unavailable; nothing was decided.",
        ),
    }
}

async fn set_mode(state: &SlackState, mode: Mode, scope: Option<&str>, by: &str) -> Done {
    if let Some(name) = scope {
        if !state.catalog.responders.contains_key(name) {
            let why = format!("no responder named {name}");
            return Done::new(
                AuditOutcome::Failed,
                why.clone(),
                format!(":question: {why}."),
            );
        }
    }
    let now = OffsetDateTime::now_utc();
    if let Err(e) = state
        .store
        .set_mode_override(scope, mode.as_str(), by, now)
        .await
    {
        return Done::new(
            AuditOutcome::Failed,
            e.to_string(),
            ":warning: The record is unavailable; the mode is unchanged.",
        );
    }
    state.modes.set(scope, mode);
    let what = scope.map_or_else(|| "Global mode".to_owned(), |s| format!("Mode of {s}"));
    tracing::warn!(scope = scope.unwrap_or("global"), mode = %mode, by = %loggable(by), "Mode changed from Slack.");
    let mut reply = format!(
        ":gear: {what} set to *{mode}*. Now: {}",
        state.modes.describe()
    );
    if let Some(playbook) = scope.and_then(|s| state.catalog.responders.get(s)) {
        let effective = state.modes.effective(playbook);
        if effective != mode {
            reply.push_str(&format!(
                ". Runs of it stay *{effective}*: the global mode is stricter"
            ));
        }
    }
    Done::ok(format!("{} {mode}", scope.unwrap_or("global")), reply)
}

/// `trust <responder> <target>`: the fixes that did not hold so far no longer count, so its
/// destructive steps there act again without an approval (the record reaches every replica:
/// each run reads it).
async fn trust(state: &SlackState, responder: &str, target: &str, by: &str) -> Done {
    if !state.catalog.responders.contains_key(responder) {
        let why = format!("no responder named {responder}");
        return Done::new(
            AuditOutcome::Failed,
            why.clone(),
            format!(":question: {why}."),
        );
    }
    let now = OffsetDateTime::now_utc().unix_timestamp();
    if let Err(e) = state.store.trust_fix(responder, target, by, now).await {
        return Done::new(
            AuditOutcome::Failed,
            e.to_string(),
            ":warning: The record is unavailable; nothing changed.",
        );
    }
    tracing::warn!(responder, target = %loggable(target), by = %loggable(by), "Fixes trusted again from Slack.");
    Done::ok(
        format!("{responder} {target}"),
        format!(":white_check_mark: {responder} on `{target}` is trusted again: its fixes that did not hold so far no longer make its destructive steps wait for an approval."),
    )
}
