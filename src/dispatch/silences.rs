//! Keep people quiet while we handle it: a route with `silence: true` has its alert silenced
//! in Alertmanager when the run's first destructive step starts, until the run and the watch
//! of its fix would end.
//!
//! The silence is lifted at once when the run fails, escalates, waits for a person or is
//! interrupted, when the fix does not hold, when the watch ends and when the alert resolves,
//! so people get the next notification. While it is active Alertmanager sends us nothing
//! for the alert either: [`Dispatcher::follow_silences`] reads its state every few seconds
//! and journals a resolve or a re-fire as Alertmanager would have sent it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::Dispatcher;
use crate::alert::{Alert, Source, Status};
use crate::notify::alertmanager::{AlertmanagerClient, Followed};
use crate::notify::render::escape;
use crate::responders::{Mode, Responder};
use crate::store::{format_time, NewSilence, PendingRun, Silence};

/// How often a silenced alert's state is read: a resolve or a re-fire is seen within this
/// plus one call's timeout, well inside 15 s.
const FOLLOW_EVERY: Duration = Duration::from_secs(5);

impl Dispatcher {
    /// The client to silence `run`'s alert with, if its route asks for it and it can be:
    /// a live run on an alert from Alertmanager (silences mute nothing else).
    fn silencer(&self, run: &PendingRun) -> Option<&AlertmanagerClient> {
        let client = self.alertmanager.as_ref()?;
        if run.alert.source != Source::Alertmanager || run.mode != Mode::Live {
            return None;
        }
        let routes = self.catalog.routes.matching(&run.alert.labels);
        let asked = (routes.iter()).any(|r| r.silence && r.responder == run.responder);
        asked.then_some(client)
    }

    /// The run's first destructive step starts: silences its alert until the run's timeout
    /// plus its watch would end, and says so in the thread (or that Alertmanager could not
    /// be reached, and the run goes on).
    pub(super) async fn silence(&self, run: &PendingRun, responder: &Responder) {
        let Some(client) = self.silencer(run) else {
            return;
        };
        let now = OffsetDateTime::now_utc();
        let ends = now + responder.timeout + responder.watch.unwrap_or_default();
        // Whole seconds: read by people in the thread and in Alertmanager.
        let ends = ends.replace_nanosecond(0).unwrap_or(ends);
        let name = run.alert.name();
        let comment = format!(
            "alert-responder is handling this alert: {} on {} in {}. Lifted when the run fails, escalates or waits for a person, when the fix does not hold, and when the alert resolves.",
            run.responder,
            run.target,
            self.incident_ref(run.incident_id),
        );
        let made = match client.silence(&run.alert.labels, now, ends, &comment).await {
            Ok(made) => made,
            Err(e) => {
                tracing::warn!(error.message = %e, "Could not silence the alert: Alertmanager did not answer.");
                let text = format!(
                    ":warning: No silence: Alertmanager could not be reached ({}). People keep being notified of {} while this runs.",
                    escape(&e.to_string()),
                    escape(name),
                );
                self.reporter.note(run.incident_id, &text).await;
                return;
            }
        };
        let silence = NewSilence {
            incident_id: run.incident_id,
            run_id: run.run_id,
            silence_id: made.id.clone(),
            made_on: made.on.clone(),
            alert: run.alert.clone(),
            made_unix: now.unix_timestamp(),
            ends_unix: ends.unix_timestamp(),
        };
        if let Err(e) = self.store.record_silence(&silence).await {
            // Unrecorded, nothing would follow or lift it: better no silence at all.
            tracing::error!(error.message = %e, "Could not record the silence; lifting it again.");
            let _ = client.expire(&made.id, &made.on).await;
            return;
        }
        tracing::info!(silence = %made.id, alertmanager = %made.on, until = %format_time(ends), "Alert silenced while it is handled.");
        let text = format!(
            "Silenced {} in Alertmanager until {} while this runs and the fix is watched (silence `{}`). It is lifted if the run fails, escalates or waits for a person, if the fix does not hold, and when the alert resolves.",
            escape(name),
            format_time(ends),
            escape(&made.id),
        );
        self.reporter.note(run.incident_id, &text).await;
    }

    /// Lifts the active silences of `incident` (only its run `run`'s, when given) because of
    /// `reason` (for people: "the run failed").
    pub(super) async fn lift_silences(&self, incident: i64, run: Option<i64>, reason: &str) {
        let Some(client) = &self.alertmanager else {
            return;
        };
        let active = match self.store.active_silences().await {
            Ok(active) => active,
            Err(e) => {
                tracing::error!(incident, error.message = %e, "Could not read the silences to lift; they end by themselves.");
                return;
            }
        };
        let mine = (active.iter())
            .filter(|s| s.silence.incident_id == incident)
            .filter(|s| run.is_none_or(|r| s.silence.run_id == r));
        for silence in mine {
            self.lift(client, silence, reason).await;
        }
    }

    /// Lifts one silence: the replica whose store update took it expires it and says so.
    async fn lift(&self, client: &AlertmanagerClient, silence: &Silence, reason: &str) {
        let s = &silence.silence;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        match self.store.lift_silence(silence.id, reason, now).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::error!(silence = %s.silence_id, error.message = %e, "Could not record lifting the silence; will try again when asked.");
                return;
            }
        }
        let name = escape(s.alert.name());
        let text = match client.expire(&s.silence_id, &s.made_on).await {
            Ok(()) => {
                tracing::info!(silence = %s.silence_id, reason, "Silence lifted.");
                format!("Silence lifted ({reason}): Alertmanager notifies people of {name} again.")
            }
            Err(e) => {
                tracing::warn!(silence = %s.silence_id, reason, error.message = %e, "Could not lift the silence: Alertmanager did not answer.");
                let ends = OffsetDateTime::from_unix_timestamp(s.ends_unix)
                    .map_or_else(|_| s.ends_unix.to_string(), format_time);
                format!(
                    ":warning: The silence of {name} should be lifted ({reason}) but Alertmanager could not be reached ({}). It ends by itself at {ends}; expire silence `{}` there to be notified sooner.",
                    escape(&e.to_string()),
                    escape(&s.silence_id),
                )
            }
        };
        self.reporter.note(s.incident_id, &text).await;
    }

    /// Until `shutdown`, every [`FOLLOW_EVERY`]: reads the state of each silenced alert in
    /// Alertmanager and journals what it would have sent us had it not been muted (a resolve;
    /// a resolve and the new firing of a re-fire). Every replica follows; the journal's dedup
    /// key makes their entries one.
    pub(super) async fn follow_silences(self, shutdown: CancellationToken) {
        let Some(client) = self.alertmanager.clone() else {
            return;
        };
        // Silences whose Alertmanager did not answer, so that is logged once, not each time.
        let mut unanswered = BTreeSet::new();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(FOLLOW_EVERY) => {}
                _ = shutdown.cancelled() => return,
            }
            let active = match self.store.active_silences().await {
                Ok(active) => active,
                Err(e) => {
                    tracing::warn!(error.message = %e, "Could not read the active silences; will retry.");
                    continue;
                }
            };
            let now = OffsetDateTime::now_utc();
            let mut live = BTreeMap::new();
            for silence in active {
                let s = &silence.silence;
                if s.ends_unix <= now.unix_timestamp() {
                    // Alertmanager ended it by itself: nothing to expire, nothing to say.
                    let _ = (self.store)
                        .lift_silence(silence.id, "it ended", now.unix_timestamp())
                        .await;
                    continue;
                }
                let key = (s.made_on.clone(), s.alert.name().to_owned());
                live.entry(key).or_insert_with(Vec::new).push(silence);
            }
            let mut news = Vec::new();
            // One read per peer and alert name, however many of its alerts are silenced.
            for ((made_on, alertname), silences) in live {
                let followed: Vec<&Alert> = silences.iter().map(|s| &s.silence.alert).collect();
                match client.listing(&alertname, &made_on, &followed).await {
                    Ok(listing) => {
                        for silence in silences {
                            unanswered.remove(&silence.id);
                            let s = &silence.silence;
                            let followed = listing.follow(&s.alert, s.made_unix);
                            news.extend(journaled(&s.alert, followed, now));
                        }
                    }
                    Err(e) => {
                        for silence in silences {
                            if unanswered.insert(silence.id) {
                                tracing::warn!(silence = %silence.silence.silence_id, error.message = %e, "Cannot follow a silenced alert: Alertmanager did not answer; will keep trying.");
                            }
                        }
                    }
                }
            }
            if news.is_empty() {
                continue;
            }
            match self.store.append_journal(&news).await {
                Ok(_) => self.wake.notify_one(),
                Err(e) => {
                    tracing::warn!(error.message = %e, "Could not journal what a silenced alert did; will retry.")
                }
            }
        }
    }

    /// `incident #N`, linked to its page when the public URL is known.
    fn incident_ref(&self, incident: i64) -> String {
        match &self.public_url {
            Some(base) => format!("incident #{incident} {base}/incidents/{incident}"),
            None => format!("incident #{incident}"),
        }
    }
}

/// What Alertmanager would have sent about `alert` (the instance followed) had it not been
/// silenced, given where it stands `now`.
fn journaled(alert: &Alert, followed: Followed, now: OffsetDateTime) -> Vec<Alert> {
    let resolved = |at: OffsetDateTime| Alert {
        status: Status::Resolved,
        ends_at: Some(at),
        ..alert.clone()
    };
    match followed {
        Followed::Firing => Vec::new(),
        Followed::Resolved => vec![resolved(now)],
        Followed::Refired(new) => vec![resolved(new.starts_at), *new],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resolve_or_a_refire_is_journaled_as_alertmanager_would_send_it() {
        let alert = crate::alert::firing_for_tests(&[("alertname", "HighMemoryUsage")]);
        let now = OffsetDateTime::from_unix_timestamp(2_000).unwrap();
        assert!(journaled(&alert, Followed::Firing, now).is_empty());

        let resolved = journaled(&alert, Followed::Resolved, now);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].status, Status::Resolved);
        assert_eq!(resolved[0].ends_at, Some(now));
        assert_eq!(resolved[0].starts_at, alert.starts_at, "the same instance");

        let mut new = alert.clone();
        new.starts_at = OffsetDateTime::from_unix_timestamp(1_500).unwrap();
        let refired = journaled(&alert, Followed::Refired(Box::new(new.clone())), now);
        assert_eq!(refired.len(), 2);
        assert_eq!(refired[0].status, Status::Resolved);
        assert_eq!(
            refired[0].ends_at,
            Some(new.starts_at),
            "ended when it came back"
        );
        assert_eq!(refired[1], new);
    }
}
