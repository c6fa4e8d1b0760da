//! The slash command's runs: `run <responder> <target>` (a manual trigger) and, for a
//! scheduled responder, `run <responder>` (now, on the target its file declares).
//!
//! Both are journaled and run by the dispatcher like alerts: same allow-lists, budgets,
//! locks, approvals, mode and record. A scheduled responder's run now is journaled as an
//! extra slot at this instant, asked for by a person: the dispatcher plans it as it plans the
//! schedule's own slots (declared target, the responder's channel), which it leaves untouched.

use std::time::Duration;

use time::OffsetDateTime;

use super::handlers::{Done, SlashForm, INLINE_BUDGET};
use super::{follow_up, trigger, SlackState};
use crate::alert::slot::Slot;
use crate::alert::Alert;
use crate::responders::Mode;
use crate::store::AuditOutcome;

/// `run <responder> <target>`: a manual trigger, run like an alert.
pub(super) async fn run(
    state: &SlackState,
    slash: &SlashForm,
    responder: &str,
    target: &str,
    by: &str,
) -> Done {
    let Some(playbook) = state.catalog.responders.get(responder) else {
        return unknown(state, responder);
    };
    // The dispatcher checks again when it plans the run; checking first gives a clear no.
    if let Some(detail) = playbook.target_refusal(target) {
        return Done::new(
            AuditOutcome::Refused,
            detail.clone(),
            format!(":no_entry: Refused: {detail}."),
        );
    }
    let trigger = trigger(&slash.trigger_id, responder, target, by);
    let alert = trigger.into_alert(OffsetDateTime::now_utc());
    let mode = state.modes.effective(playbook);
    let requested = format!("Run of *{responder}* on `{target}` requested ({mode})");
    start_run(state, slash, alert, requested, mode).await
}

/// The answer to a run of a responder the catalog does not have.
pub(super) fn unknown(state: &SlackState, responder: &str) -> Done {
    let known: Vec<&str> = (state.catalog.responders.keys())
        .map(String::as_str)
        .collect();
    let why = format!("no responder named {responder}");
    Done::new(
        AuditOutcome::Failed,
        why.clone(),
        format!(":question: {why}; known: {}", known.join(", ")),
    )
}

/// Journals a person's run request and answers with its incident's number, which the
/// dispatcher opens within moments; when that takes longer than Slack waits, the number
/// follows via `response_url`.
pub(super) async fn start_run(
    state: &SlackState,
    slash: &SlashForm,
    alert: Alert,
    requested: String,
    mode: Mode,
) -> Done {
    let fingerprint = alert.fingerprint.clone();
    if let Err(e) = state.intake.submit(vec![alert]).await {
        return Done::new(
            AuditOutcome::Failed,
            e.to_string(),
            ":warning: The run could not be recorded; nothing was started. Try again.",
        );
    }
    let deadline = tokio::time::Instant::now() + INLINE_BUDGET;
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(id)) = state.store.incident_by_fingerprint(&fingerprint).await {
            return Done::ok(
                format!("incident {id} ({mode})"),
                format!(":arrow_forward: {requested}: incident *#{id}*. Progress in its thread."),
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (state2, url, text) = (state.clone(), slash.response_url.clone(), requested.clone());
    tokio::spawn(async move {
        for _ in 0..600 {
            if let Ok(Some(id)) = state2.store.incident_by_fingerprint(&fingerprint).await {
                follow_up(
                    &state2,
                    &url,
                    format!(":arrow_forward: {text}: incident *#{id}*."),
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    Done::ok(
        format!("queued ({mode})"),
        format!(":arrow_forward: {requested}; queued, its incident number follows."),
    )
}

/// `run <responder>`: a scheduled responder, now.
pub(super) async fn run_now(
    state: &SlackState,
    slash: &SlashForm,
    responder: &str,
    by: &str,
) -> Done {
    let Some(playbook) = state.catalog.responders.get(responder) else {
        return unknown(state, responder);
    };
    let Some(schedule) = &playbook.schedule else {
        let why = format!("{responder} has no schedule, so no target of its own");
        return Done::new(
            AuditOutcome::Failed,
            why.clone(),
            format!(":question: {why}: say which, e.g. `run {responder} <target>`."),
        );
    };
    let now = OffsetDateTime::now_utc();
    let slot = Slot {
        responder: responder.to_owned(),
        at: now,
        local: schedule.local(now),
        late: None,
        missed: false,
        requested_by: Some(by.to_owned()),
    };
    let mode = state.modes.effective(playbook);
    let requested = format!("Run of scheduled *{responder}* now requested ({mode})");
    start_run(state, slash, slot.into_alert(), requested, mode).await
}
