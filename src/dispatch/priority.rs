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
//! `pd_urgency="high"` counts as `critical`). Priority depends on labels only, never on the
//! status, so every notification of one alert (same fingerprint, same labels) has the same
//! priority: a resolve never overtakes its firing.
//!
//! Within one priority, targets take turns (see [`Rank`]): the turn key is the responder and
//! the values of the labels its target template reads (`{{ alert.labels.container }}` reads
//! `container`), so one container's flood waits behind itself, not in front of another's
//! alert. Also from the labels alone, so one alert's notifications share a turn key.

use crate::alert::Alert;
use crate::config::Catalog;
use crate::responders::Responder;
use crate::store::{Priority, Rank};

/// Tiers, most urgent last (the journal takes the highest first).
const NO_ROUTE: u8 = 0;
const READ_ONLY: u8 = 1;
const DESTRUCTIVE: u8 = 2;
const PERSON: u8 = 3;

/// The priority of `alert` under `catalog`'s routes and the target whose turn it takes. Pure.
pub fn rank(catalog: &Catalog, alert: &Alert) -> Rank {
    let slot = alert.slot();
    let (tier, target) = if let Some((responder, target)) = alert.manual_request() {
        (PERSON, format!("{responder}\u{1f}{target}"))
    } else if let Some(slot) = slot {
        // A scheduled slot ranks as an alert routed to its responder would.
        let tier = if slot.requested_by.is_some() {
            PERSON
        } else {
            (catalog.responders.get(slot.responder)).map_or(NO_ROUTE, |r| tier_of(r))
        };
        (tier, slot.responder.to_owned())
    } else {
        let routes = catalog.routes.matching(&alert.labels);
        let responders = (routes.iter())
            .filter_map(|route| catalog.responders.get(&route.responder))
            .map(|responder| &**responder);
        // The most urgent route decides, and the first of equals (as routing runs them).
        let mut chosen: Option<&Responder> = None;
        for responder in responders {
            if chosen.is_none_or(|c| tier_of(responder) > tier_of(c)) {
                chosen = Some(responder);
            }
        }
        match chosen {
            Some(responder) => (tier_of(responder), turn_key(responder, alert)),
            None => (NO_ROUTE, String::new()),
        }
    };
    Rank::new(Priority(tier * 4 + severity_rank(alert)), target)
}

/// The responder's name and the values of the labels its target template reads: alerts
/// that render the same target share it, without rendering the template at intake.
fn turn_key(responder: &Responder, alert: &Alert) -> String {
    let mut key = responder.name.clone();
    for label in labels_read(&responder.target.source) {
        key.push('\u{1f}');
        key.push_str(alert.labels.get(label).map_or("", String::as_str));
    }
    key
}

/// The label names a template reads as `alert.labels.NAME` or `alert.labels["NAME"]`.
fn labels_read(source: &str) -> impl Iterator<Item = &str> {
    source.split("alert.labels").skip(1).filter_map(|rest| {
        let name = match rest.strip_prefix('.') {
            Some(dotted) => dotted,
            None => rest
                .strip_prefix("[\"")
                .or_else(|| rest.strip_prefix("['"))?,
        };
        let end = name
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(name.len());
        Some(&name[..end]).filter(|n| !n.is_empty())
    })
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
