//! Sources: verify the caller, parse the body into canonical alerts, persist, then ack.
//!
//! A source never runs an action; it answers 2xx only once its alerts are durable.
//! Endpoints: `POST /webhook/alertmanager` and `POST /webhook/pagerduty`; Docker events and
//! schedules come in without HTTP. Slack's commands and buttons are a surface of their own
//! (see [`crate::chatops`]).

pub mod alertmanager;
mod credential;
pub mod docker_events;
pub mod pagerduty;
pub mod schedule;

use std::sync::Arc;

use axum::routing::post;
use axum::Router;
use secrecy::SecretString;

pub use credential::PagerDutySigned;

use crate::alert::Source;
use crate::http::{BodyBudget, Credential, Gate};
use crate::metrics::Metrics;
use crate::store::Intake;

/// What the source handlers need.
#[derive(Debug, Clone)]
pub struct SourceState {
    /// Where alerts become durable.
    pub intake: Intake,
    /// Who may send Alertmanager webhooks: the bearer token, the web config's users.
    pub access: crate::http::Access,
    /// The PagerDuty Webhooks V3 signing secret; `None` turns `/webhook/pagerduty` off.
    pub pagerduty_secret: Option<Arc<SecretString>>,
    /// The body limit and the bytes all bodies may hold at once.
    pub budget: BodyBudget,
    /// Webhook and duplicate counters.
    pub metrics: Arc<Metrics>,
}

/// The webhook routes of the HTTP sources, each behind its [`Gate`].
pub fn routes(state: SourceState) -> Router {
    let alertmanager = Gate::new(Credential::Access(state.access.clone()), &state.budget)
        .counted(Source::Alertmanager, &state.metrics);
    let pagerduty = Gate::new(
        Credential::Signed(Arc::new(PagerDutySigned {
            configured: state.pagerduty_secret.is_some(),
        })),
        &state.budget,
    )
    .counted(Source::PagerDuty, &state.metrics);
    Router::new()
        .route(
            "/webhook/alertmanager",
            alertmanager.guard(post(alertmanager::receive)),
        )
        .route(
            "/webhook/pagerduty",
            pagerduty.guard(post(pagerduty::receive)),
        )
        .with_state(state)
}

#[cfg(test)]
mod properties;
