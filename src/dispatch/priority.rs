//! Which journal entries the dispatcher takes first, decided once at intake.
//!
//! A backlog must never delay a real response: after a flood of alerts nobody acts on, an
//! alert that restarts something is next, not 50,000th. The order, from the labels alone:
//! 1. a person's request (`/responder run`);
//! 2. alerts routed to a responder with a destructive step (a scheduled slot ranks as if
//!    routed to its responder);
//! 3. alerts routed to a read-only responder;
//! 4. alerts no route matches;
//!
//! and within each, `critical` before `error` before `warning` before the rest (PagerDuty's
//! `pd_urgency="high"` counts as `critical`). Entries of equal priority keep their arrival
//! order. Priority depends on labels only, never on the status, so every notification of
//! one alert (same fingerprint, same labels) has the same priority: a resolve never overtakes
//! its firing.

use crate::alert::Alert;
use crate::config::Catalog;
use crate::responders::Responder;
use crate::store::Priority;

/// Tiers, most urgent last (the journal takes the highest first).
const NO_ROUTE: u8 = 0;
const READ_ONLY: u8 = 1;
const DESTRUCTIVE: u8 = 2;
const PERSON: u8 = 3;

/// The priority of `alert` under `catalog`'s routes. Pure.
pub fn priority(catalog: &Catalog, alert: &Alert) -> Priority {
    let slot = alert.slot();
    let tier = if alert.manual_request().is_some() || slot.is_some_and(|s| s.requested_by.is_some())
    {
        PERSON
    } else if let Some(slot) = slot {
        // A scheduled slot ranks as an alert routed to its responder would.
        (catalog.responders.get(slot.responder)).map_or(NO_ROUTE, |r| tier_of(r))
    } else {
        catalog
            .routes
            .matching(&alert.labels)
            .iter()
            .filter_map(|route| catalog.responders.get(&route.responder))
            .map(|r| tier_of(r))
            .max()
            .unwrap_or(NO_ROUTE)
    };
    Priority(tier * 4 + severity_rank(alert))
}

/// The tier of an alert routed to `responder`: whether it may act.
fn tier_of(responder: &Responder) -> u8 {
    let destructive = (responder.steps.iter()).any(|step| step.action.kind().destructive());
    if destructive {
        DESTRUCTIVE
    } else {
        READ_ONLY
    }
}

/// 3 for critical, 2 for error, 1 for warning, 0 for anything else.
fn severity_rank(alert: &Alert) -> u8 {
    if alert.labels.get("pd_urgency").map(String::as_str) == Some("high") {
        return 3;
    }
    match alert
        .labels
        .get("severity")
        .map(|s| s.to_ascii_lowercase())
        .as_deref()
    {
        Some("critical" | "page" | "p1") => 3,
        Some("error" | "high" | "p2") => 2,
        Some("warning" | "warn" | "p3") => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
