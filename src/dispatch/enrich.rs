//! Before a PagerDuty incident is planned, it gets the labels its title or its first alert
//! carries (see `routing::extract`): with `PAGERDUTY_API_TOKEN`, the first alert's details
//! are read from the REST API; then the catalog's `extract:` rules run over its fields.
//!
//! A lookup that fails (timeout, 4xx, 5xx, 429) never loses or holds back the alert: it is
//! planned with the rules alone, and the incident says so. After a failure, lookups pause
//! for [`QUIET_AFTER_FAILURE`], so an unreachable API costs one timeout, not one per alert,
//! while the journal waits behind it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::alert::{Alert, Labels};
use crate::notify::pagerduty::PagerDutyApi;
use crate::routing::extract::{self, Extraction, LabelReport};

/// Bound on one lookup; PagerDuty answers in well under a second when it is up.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long lookups pause after one failed.
pub const QUIET_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// Reads incidents' first alerts through the PagerDuty client.
#[derive(Debug)]
pub struct PagerDutyLookup {
    api: Arc<dyn PagerDutyApi>,
    quiet_until: Mutex<Option<Instant>>,
}

impl PagerDutyLookup {
    /// A lookup through `api` (the client configured with `PAGERDUTY_API_TOKEN`).
    pub fn new(api: Arc<dyn PagerDutyApi>) -> Self {
        Self {
            api,
            quiet_until: Mutex::new(None),
        }
    }

    /// The labels of the incident's first alert; `Err` says, in words, why there are none.
    pub async fn labels(&self, incident: &str) -> Result<Labels, String> {
        let quiet = *self.quiet_until.lock().unwrap_or_else(|e| e.into_inner());
        if quiet.is_some_and(|until| Instant::now() < until) {
            return Err("not asked: the PagerDuty API failed moments ago".to_owned());
        }
        let answer =
            tokio::time::timeout(LOOKUP_TIMEOUT, self.api.first_alert_details(incident)).await;
        let failure = match answer {
            Ok(Ok(Some(details))) => {
                return extract::details_labels(&details)
                    .ok_or_else(|| "its first alert's details list no labels".to_owned());
            }
            Ok(Ok(None)) => return Err("the incident has no alert with details".to_owned()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {}s", LOOKUP_TIMEOUT.as_secs()),
        };
        *self.quiet_until.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Instant::now() + QUIET_AFTER_FAILURE);
        Err(failure)
    }
}

/// Gives a firing PagerDuty incident the labels its details and the rules yield, records
/// where each came from in its annotations, and returns that report. Other alerts are left
/// as they are. Logs nothing: `simulate` prints its output where logs would go.
pub async fn enrich(
    alert: &mut Alert,
    rules: &[Extraction],
    lookup: Option<&PagerDutyLookup>,
) -> LabelReport {
    if !extract::applies(alert) {
        return LabelReport::default();
    }
    let mut notes = Vec::new();
    let details = match lookup {
        Some(lookup) => match lookup.labels(&alert.fingerprint).await {
            Ok(labels) => Some(labels),
            Err(why) => {
                notes.push(format!(
                    "PagerDuty API lookup of the incident's alerts gave no labels ({why}): labels from the title rules only."
                ));
                None
            }
        },
        None => None,
    };
    let mut report = extract::apply(alert, details.as_ref(), rules);
    notes.append(&mut report.notes);
    report.notes = notes;
    extract::annotate(alert, &report);
    report
}

#[cfg(test)]
mod tests;
