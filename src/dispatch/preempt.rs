//! Preemption: a dead target does not wait behind a run that only observes it.
//!
//! When an alert says its target died (a Docker death, [`target_died`]) and plans a run on a
//! target another incident's run holds, recording it asks that run to stop (in the store, so
//! whichever replica holds it hears of it) unless the store shows a destructive step started.
//! The holder decides for good ([`Preemption::request`]): while only observing, the run is
//! stopped at once (its observing step cut short, its other steps cancelled) and finishes
//! `preempted`, freeing the target for the new run; with a destructive step in flight it is
//! never preempted and the new run waits, as for any busy target.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::Dispatcher;
use crate::alert::{Alert, Source};
use crate::responders::preemption::{reason, Answer, Preemption};
use crate::store::{DecisionKind, NewDecision, PendingRun, PreemptRequest, TargetDeath};

/// How often a death's run, waiting for its target, asks whoever holds it now.
const ASK_AGAIN: Duration = Duration::from_secs(1);

/// Whether `alert` says its target is dead: a death from the Docker engine whose container
/// exited (an `oom` that killed only a child leaves it running, and has no exit code). Only
/// such an alert preempts. Pure.
pub fn target_died(alert: &Alert) -> bool {
    alert.source == Source::Docker && alert.is_one_shot() && alert.labels.contains_key("exit_code")
}

/// What the dispatcher holds of a run of this replica until it ends.
#[derive(Debug, Clone)]
pub struct RunHandle {
    /// The run's incident.
    pub incident_id: i64,
    /// Fired by a resolve, a preemption or shutdown.
    pub cancel: CancellationToken,
    /// Shared with the run's engine.
    pub preemption: Arc<Preemption>,
}

impl RunHandle {
    /// A handle for a run of `incident_id` about to be spawned.
    pub fn new(incident_id: i64) -> Self {
        Self {
            incident_id,
            cancel: CancellationToken::new(),
            preemption: Arc::default(),
        }
    }
}

impl Dispatcher {
    /// While a death's run waits for its target, asks each second whoever holds it now: the
    /// run that held it when the death was recorded was asked then, but another run waiting
    /// for the target may take it first. `None` for other runs. Stops when dropped.
    pub(super) fn keep_asking(&self, run: &PendingRun) -> Option<AbortOnDropHandle<()>> {
        if !target_died(&run.alert) {
            return None;
        }
        let this = self.clone();
        let (target, by) = (run.target.clone(), run.incident_id);
        let died_unix = run.alert.starts_at.unix_timestamp();
        Some(AbortOnDropHandle::new(tokio::spawn(async move {
            loop {
                tokio::time::sleep(ASK_AGAIN).await;
                let death = TargetDeath {
                    target: &target,
                    incident: by,
                    died_unix,
                };
                match this.store.ask_preemption(&death).await {
                    Ok(asked) => {
                        let requests: Vec<PreemptRequest> = (asked.into_iter())
                            .map(|run_id| PreemptRequest {
                                run_id,
                                by,
                                died_unix,
                            })
                            .collect();
                        this.preempt(&requests).await;
                    }
                    Err(e) => {
                        tracing::warn!(error.message = %e, "Could not ask the target's holder to stop; will retry.");
                    }
                }
            }
        })))
    }

    /// Answers requests to preempt runs, for those this replica holds; the others' holders
    /// answer at their next lease renewal.
    pub(super) async fn preempt(&self, requests: &[PreemptRequest]) {
        for request in requests {
            let (run, by) = (request.run_id, request.by);
            let handle = self
                .active
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&run)
                .cloned();
            let Some(handle) = handle else {
                tracing::debug!(
                    run,
                    by,
                    "Run to preempt is held by another replica; it decides."
                );
                continue;
            };
            let answer = handle.preemption.request(by, request.died_unix);
            if answer == Answer::Preempted {
                handle.cancel.cancel();
            }
            self.say(run, &handle, by, answer).await;
        }
    }

    /// Records and reports the answer in both incidents' threads.
    async fn say(&self, run: i64, handle: &RunHandle, by: i64, answer: Answer) {
        let incident = handle.incident_id;
        let (kind, detail, news) = match answer {
            Answer::Repeated => return,
            Answer::Preempted => {
                tracing::info!(run, incident, by, "Run preempted: its target died.");
                (
                    DecisionKind::Preempted,
                    format!("{}: it was only observing; stopped so that run starts at once", reason(by)),
                    format!("Run {run} of incident {incident} was only observing this target: preempted, this run starts at once."),
                )
            }
            Answer::Declined { why } => {
                tracing::info!(
                    run,
                    incident,
                    by,
                    why,
                    "Run not preempted: it acted on the target."
                );
                (
                    DecisionKind::PreemptionDeclined,
                    format!("not preempted by incident {by} (container died): {why}"),
                    format!("Waits for run {run} of incident {incident}, which is not preempted: {why}."),
                )
            }
        };
        let decision = NewDecision {
            incident_id: Some(incident),
            run_id: Some(run),
            kind,
            detail: detail.clone(),
        };
        let now = OffsetDateTime::now_utc();
        if let Err(e) = self.store.record_decision(&decision, now).await {
            tracing::error!(run, error.message = %e, "Could not record a preemption decision.");
        }
        self.reporter.note(incident, &capitalized(&detail)).await;
        self.reporter.note(by, &news).await;
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::docker_events::{to_alert, Death, Reason};

    #[test]
    fn only_a_container_death_reported_by_docker_preempts() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let death = |reason, exit_code| Death {
            id: "c0ffee".into(),
            name: "k2-a".into(),
            image: None,
            reason,
            exit_code,
            time: at,
            first_event: at,
        };
        let killed = to_alert(&death(Reason::Killed, Some(137)));
        let oom = to_alert(&death(Reason::Oom, Some(137)));
        let child_killed = to_alert(&death(Reason::Oom, None));
        let mut from_prometheus = oom.clone();
        from_prometheus.source = Source::Alertmanager;
        let cases = [
            ("docker kill", &killed, true),
            ("oom kill", &oom, true),
            ("a child killed, the container lives", &child_killed, false),
            (
                "an alert about a death, not the engine",
                &from_prometheus,
                false,
            ),
        ];
        for (name, alert, want) in cases {
            assert_eq!(target_died(alert), want, "{name}");
        }
    }

    #[test]
    fn notes_start_with_a_capital() {
        assert_eq!(
            capitalized("preempted by incident 3"),
            "Preempted by incident 3"
        );
        assert_eq!(capitalized(""), "");
    }
}
