//! Did the fix hold: after a run's destructive step succeeded, its incident watches the
//! alert name and target for the responder's `watch:`.
//!
//! A firing of the same alert name and target that opens a new incident inside the window
//! is a recurrence: both threads say the fix did not hold, linking each other, and the run
//! counts as ineffective. A window that ends quietly is said once in the thread. Either
//! ending is taken by one guarded update in the store, so with replicas exactly one reports it.

use std::time::Duration;

use time::OffsetDateTime;

use super::Dispatcher;
use crate::alert::{Alert, Source};
use crate::notify::render::{compact_duration, escape};
use crate::responders::Responder;
use crate::store::{IncidentStatus, NewWatch, PendingRun, Watch};

/// The window recurrences are counted in against a responder's `ineffective_limit`.
const INEFFECTIVE_WINDOW: Duration = Duration::from_secs(24 * 3600);

impl Dispatcher {
    /// Starts the watch of a finished run whose destructive step `acted` (id, when it ended)
    /// succeeded, if its responder watches; true when it started.
    pub(super) async fn start_watch(
        &self,
        run: &PendingRun,
        responder: &Responder,
        acted: Option<(String, OffsetDateTime)>,
    ) -> bool {
        let (Some(window), Some((step, at))) = (responder.watch, acted) else {
            return false;
        };
        // A person's `run` or a scheduled slot has no alert that could come back: the next
        // such run is no recurrence of it.
        if matches!(run.alert.source, Source::Slack | Source::Schedule) {
            return false;
        }
        let ends = at + window;
        let watch = NewWatch {
            incident_id: run.incident_id,
            run_id: run.run_id,
            responder: run.responder.clone(),
            alertname: run.alert.name().to_owned(),
            target: run.target.clone(),
            step,
            acted_unix: at.unix_timestamp(),
            ends_unix: ends.unix_timestamp(),
        };
        if let Err(e) = self.store.start_watch(&watch).await {
            tracing::error!(error.message = %e, "Could not start watching whether the fix holds.");
            return false;
        }
        tracing::info!(until = %crate::store::format_time(ends), "Watching whether the fix holds.");
        true
    }

    /// `alert` opened `incident` on `target`: if that ends a watch, says so in both threads
    /// and counts the watched run as ineffective.
    pub(super) async fn recurrence(&self, alert: &Alert, target: &str, incident: i64) {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let ended = match (self.store)
            .watch_recurred(alert.name(), target, incident, now)
            .await
        {
            Ok(ended) => ended,
            Err(e) => {
                tracing::error!(incident, error.message = %e, "Could not look for a watch this alert ends.");
                return;
            }
        };
        for watch in ended {
            let w = &watch.watch;
            self.metrics.run_ineffective(&w.responder);
            tracing::warn!(incident, earlier = w.incident_id, responder = %w.responder, target, "The fix did not hold: the alert fired again within the watch.");
            let after = compact_duration(now - w.acted_unix);
            let step = escape(&w.step);
            let what = format!("{} on `{}`", escape(&w.alertname), escape(&w.target));
            let earlier = format!(
                "The fix did not hold (fired again {after} after *{step}*): {what} is firing again in {}. This run of {} counts as ineffective.",
                self.incident_link(incident),
                escape(&w.responder),
            );
            self.reporter.note(w.incident_id, &earlier).await;
            let now_text = format!(
                "The fix did not hold (fired again {after} after *{step}* by {} in {}).",
                escape(&w.responder),
                self.incident_link(w.incident_id),
            );
            self.reporter.note(incident, &now_text).await;
            self.lift_silences(w.incident_id, None, "the fix did not hold")
                .await;
            self.reporter.refresh(w.incident_id).await;
        }
    }

    /// Says in each thread whose watch ended quietly by now that the fix held.
    pub(super) async fn watches_ended(&self) {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let held = match self.store.watches_held(now).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error.message = %e, "Could not look for watches that ended; will retry.");
                return;
            }
        };
        for Watch { watch: w, .. } in held {
            let window = compact_duration(w.ends_unix - w.acted_unix);
            let (name, target, step) = (escape(&w.alertname), escape(&w.target), escape(&w.step));
            // An alert that never resolved did not come back either: it never went away.
            let still_open = match self.store.incident_detail(w.incident_id).await {
                Ok(detail) => detail.is_some_and(|d| d.incident.status == IncidentStatus::Open),
                Err(e) => {
                    tracing::warn!(incident = w.incident_id, error.message = %e, "Could not read whether the watched incident resolved.");
                    false
                }
            };
            let text = if still_open {
                format!("Watched for {window} after *{step}*: {name} on `{target}` has not resolved since, so the fix may not have held. Please check.")
            } else {
                format!("The fix held for {window}: {name} did not fire again on `{target}` after *{step}*.")
            };
            self.reporter.note(w.incident_id, &text).await;
            self.lift_silences(w.incident_id, None, "the watch ended")
                .await;
        }
    }

    /// Whether this run's destructive steps must wait for an approval, as if `approval:
    /// required`: its responder's fixes on its target did not hold `ineffective_limit` times
    /// within a day since the last `/responder trust`. Says why in the thread, with the times.
    pub(super) async fn approval_forced(&self, run: &PendingRun, responder: &Responder) -> bool {
        if responder.watch.is_none() {
            return false;
        }
        let now = OffsetDateTime::now_utc();
        let since = (now - INEFFECTIVE_WINDOW).unix_timestamp();
        let (who, target) = (escape(&run.responder), escape(&run.target));
        let times = match self
            .store
            .recurrences(&run.responder, &run.target, since)
            .await
        {
            Ok(times) => times,
            Err(e) => {
                // Unknown whether the fix keeps failing: a person decides, as if it did.
                tracing::error!(error.message = %e, "Could not read whether this responder's fixes held; asking for approval.");
                let text = format!(":lock: Every destructive step of {who} on `{target}` waits for an approval: whether its last fixes held could not be read ({}).", escape(e.reason()));
                self.reporter.note(run.incident_id, &text).await;
                return true;
            }
        };
        let limit = usize::try_from(responder.ineffective_limit).unwrap_or(usize::MAX);
        if times.len() < limit {
            return false;
        }
        let history: Vec<String> = (times.iter())
            .filter_map(|t| OffsetDateTime::from_unix_timestamp(*t).ok())
            .map(crate::store::format_time)
            .collect();
        tracing::warn!(
            recurrences = times.len(),
            limit,
            "The fix did not hold too often: destructive steps wait for an approval."
        );
        let text = format!(
            ":lock: Every destructive step of {who} on `{target}` waits for an approval: its fix did not hold {} times in 24h (ineffective_limit {limit}); the alert fired again at {}. Once the cause is dealt with, `trust {who} {target}` in the Slack command lifts this.",
            times.len(),
            history.join(", "),
        );
        self.reporter.note(run.incident_id, &text).await;
        true
    }

    /// A Slack link to an incident's page when the public URL is known, else its number.
    fn incident_link(&self, incident: i64) -> String {
        match &self.public_url {
            Some(base) => format!("<{base}/incidents/{incident}|incident #{incident}>"),
            None => format!("incident #{incident}"),
        }
    }
}
