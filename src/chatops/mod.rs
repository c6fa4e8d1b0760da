//! ChatOps: Slack's slash command (`POST /slack/commands`) and the approval buttons
//! (`POST /slack/interactions`), a surface of its own beside the sources: besides writing manual
//! runs to the journal, it reads live state (`status` inspects containers), sets modes and
//! decides approvals.
//!
//! # Authentication
//! Slack signs every request with the app's signing secret (`SLACK_SIGNING_SECRET`):
//! `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{X-Slack-Request-Timestamp}:{raw body}">`.
//! The signature is checked over the raw bytes, before the form is decoded, in constant time,
//! and the timestamp must be within five minutes of now either way (a replayed request is
//! refused). Failures answer **401**; without a signing secret both endpoints answer **503**
//! (a deployment mistake Slack shows the user, never an unsigned request accepted). What the
//! headers alone show (a header missing, a stale timestamp) is refused before the body is read.
//! A request whose signature was already accepted is refused too (401), so a captured request
//! replayed inside the window acts at most once (see [`Replays`]).
//!
//! # Answering
//! Slack waits three seconds. Every reply is an ephemeral JSON message answered at once;
//! work that may take longer (a `status` of many containers, the incident a `run` opens)
//! follows through the request's `response_url`. A manual `run` is written to the journal as
//! a [`Trigger`] and run by the dispatcher like any alert: same budgets, allow-lists, locks
//! and record. Who may `run`, approve and set the mode comes from the settings (user IDs and
//! user group IDs); every attempt, allowed or refused, is recorded in the audit
//! (`GET /api/audit`).

mod access;
mod buttons;
pub mod command;
mod handlers;
mod replay;
mod runs;
pub mod schedules;
mod signature;
pub mod status;

pub use access::Access;
pub use replay::Replays;
pub use signature::{
    fresh_headers, verify_signature, SlackSigned, MAX_CLOCK_SKEW_SECS, OFF, SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
};

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::actions::ActionCtx;
use crate::alert::Trigger;
use crate::config::{Catalog, SlackChatSettings};
use crate::http::{read_body, ApiError, BodyBudget, Credential, Gate, IngestError};
use crate::notify::render::escape;
use crate::notify::slack::{SlackLink, CALL_TIMEOUT};
use crate::notify::Reporter;
use crate::responders::overrides::ModeOverrides;
use crate::store::{Intake, NewAudit, Store};

/// What the Slack handlers need.
#[derive(Debug, Clone)]
pub struct SlackState {
    /// Secret, command name, allow-lists, status containers.
    pub settings: Arc<SlackChatSettings>,
    /// The record: incidents, approvals, audit, modes.
    pub store: Arc<dyn Store>,
    /// Where manual triggers become durable.
    pub intake: Intake,
    /// Responders, for `run` and `mode`.
    pub catalog: Arc<Catalog>,
    /// Runtime modes, shared with the dispatcher.
    pub modes: Arc<ModeOverrides>,
    /// Docker, for `status`.
    pub actions: ActionCtx,
    /// The process's one Slack client, for `response_url` follow-ups.
    pub slack: SlackLink,
    /// Notified after a decision so the waiting run looks at once.
    pub approvals: Arc<tokio::sync::Notify>,
    /// Edits approval messages.
    pub reporter: Reporter,
    /// Allow-lists and group membership.
    pub access: Arc<Access>,
    /// The largest body, for the 413's message.
    pub body_limit: usize,
    /// Signatures already accepted, so that a replay acts at most once.
    pub replays: Arc<Replays>,
}

/// The Slack routes, behind a [`Gate`] that refuses unsigned or stale requests from their
/// headers.
pub fn routes(state: SlackState, budget: &BodyBudget) -> Router {
    let gate = Gate::new(
        Credential::Signed(Arc::new(SlackSigned {
            configured: state.settings.signing_secret.is_some(),
        })),
        budget,
    );
    Router::new()
        .route(
            "/slack/commands",
            gate.clone().guard(post(handlers::command)),
        )
        .route(
            "/slack/interactions",
            gate.guard(post(buttons::interaction)),
        )
        .with_state(state)
}

/// The checks both endpoints start with once the body is read: within the body limit,
/// configured, signed, and not seen before (a captured request replayed inside the
/// five-minute window is refused like an unsigned one).
fn verified(
    state: &SlackState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    let body = read_body(body, state.body_limit)?;
    let secret = state
        .settings
        .signing_secret
        .as_ref()
        .ok_or(IngestError::NotConfigured(OFF))?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let (timestamp, signature) = (header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER));
    verify_signature(timestamp, signature, &body, secret.expose_secret(), now)
        .and_then(|()| state.replays.first_time(signature.unwrap_or_default(), now))
        .inspect_err(|e| tracing::warn!(reason = %e, "Refused an unsigned Slack request."))?;
    Ok(body)
}

/// Decodes an `application/x-www-form-urlencoded` body.
fn form<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|e| ApiError::BadRequest(format!("not a Slack form body: {e}")))
}

/// An ephemeral reply, the shape of every immediate answer. Replies carry alert names,
/// labels, targets and the command's own text, and none of ours needs a live mention or
/// link: the whole text is escaped, so `<!channel>` in any of them stays text.
fn ephemeral(text: impl Into<String>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"response_type": "ephemeral", "text": escape(&text.into())}))
}

/// Text from a Slack request as the log shows it: control characters (NUL, line breaks, the
/// escape that starts terminal sequences) written as escapes, so a command can neither forge
/// log lines nor drive the terminal of whoever reads them.
fn loggable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Who did something, as decisions and approvals record it: `@alice (U0123)`.
fn who(user_name: &str, user_id: &str) -> String {
    if user_name.is_empty() {
        user_id.to_owned()
    } else {
        format!("@{user_name} ({user_id})")
    }
}

/// Records one attempt; a store failure is logged, never shown as the command's failure.
async fn audit(state: &SlackState, entry: NewAudit) {
    tracing::info!(
        user = %loggable(&entry.user_id),
        command = %loggable(&entry.command),
        outcome = %entry.outcome,
        detail = %loggable(&entry.detail),
        "Slack request."
    );
    if let Err(e) = state
        .store
        .record_audit(&entry, OffsetDateTime::now_utc())
        .await
    {
        tracing::error!(error.message = %e, "Could not record an audit entry.");
    }
}

/// Posts a follow-up to a `response_url` (ephemeral, the original left in place), in the
/// background.
fn follow_up(state: &SlackState, response_url: &str, text: String) {
    if response_url.is_empty() {
        return;
    }
    let (slack, url) = (state.slack.clone(), response_url.to_owned());
    tokio::spawn(async move {
        // Escaped like every immediate reply (see [`ephemeral`]).
        let text = escape(&text);
        let post = slack.respond(&url, &text);
        // Bounded like every other Slack call, so a hung response_url holds no task forever.
        match tokio::time::timeout(CALL_TIMEOUT, post).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error.message = %e, "Could not post a response_url follow-up.")
            }
            Err(_elapsed) => tracing::warn!("A response_url follow-up timed out."),
        }
    });
}

/// A manual trigger for the journal, unique per Slack request.
fn trigger(trigger_id: &str, responder: &str, target: &str, by: &str) -> Trigger {
    let now = OffsetDateTime::now_utc();
    let id = if trigger_id.is_empty() {
        format!("{}", now.unix_timestamp_nanos())
    } else {
        trigger_id.to_owned()
    };
    Trigger {
        id,
        responder: responder.to_owned(),
        target: target.to_owned(),
        requested_by: by.to_owned(),
    }
}

#[cfg(test)]
mod tests;
