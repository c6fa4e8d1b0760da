//! What one journal entry records, given what its batch knows.

use super::{AlertRow, Batch, FoldKey, Recorder};
use crate::store::{
    AlertPlan, DecisionKind, JournalEntry, NewDecision, Recorded, StoreError, TargetDeath,
};

impl<'a> Batch<'a> {
    pub(super) async fn record<R: Recorder>(
        &mut self,
        recorder: &mut R,
        entry: &'a JournalEntry,
        plan: &AlertPlan,
    ) -> Result<Recorded, StoreError> {
        let alert = &entry.alert;
        let open = self.open_incident(recorder, &alert.fingerprint).await?;
        let mut recorded = Recorded {
            incident_id: open,
            ..Recorded::default()
        };
        match plan {
            AlertPlan::Resolve => {
                let Some(incident) = open else {
                    self.decisions.push(NewDecision {
                        incident_id: None,
                        run_id: None,
                        kind: DecisionKind::ResolvedWithoutIncident,
                        detail: format!("{} resolved; no open incident for it", alert.name()),
                    });
                    return Ok(recorded);
                };
                self.alerts.push(AlertRow { incident, entry });
                // Whichever replica holds them hears of it at its next lease renewal.
                recorded.active_runs = recorder.resolve_incident(incident).await?;
                recorded.resolved = true;
                self.closed(&alert.fingerprint, incident);
            }
            AlertPlan::Update => {
                // A note may come after the resolve: it still belongs to that incident's thread.
                let latest = match open {
                    Some(id) => Some(id),
                    None => recorder.latest_incident(&alert.fingerprint).await?,
                };
                recorded.incident_id = latest;
                if let Some(incident) = latest {
                    self.alerts.push(AlertRow { incident, entry });
                }
            }
            AlertPlan::Firing {
                runs,
                declines,
                target,
            } => {
                let key: FoldKey = (alert.name().to_owned(), target.clone());
                if open.is_none() {
                    let acting = !runs.is_empty();
                    if let Some(incident) = self.fold_target(recorder, &key, acting).await? {
                        self.folded(entry, incident, target.as_deref());
                        recorded.incident_id = Some(incident);
                        recorded.folded = true;
                        return Ok(recorded);
                    }
                }
                let incident = match open {
                    Some(id) => id,
                    None => {
                        recorded.opened = true;
                        let id = recorder.insert_incident(alert, target.as_deref()).await?;
                        // The newest incident of its fingerprint and of its name and target.
                        self.open.insert(alert.fingerprint.clone(), Some(id));
                        self.newest.insert(key.clone(), Some(id));
                        id
                    }
                };
                recorded.incident_id = Some(incident);
                self.alerts.push(AlertRow { incident, entry });
                let alert_id = if runs.is_empty() {
                    0
                } else {
                    // Its runs need its id: it is written now, after the rows before it.
                    self.flush_alerts(recorder).await?
                };
                for (index, run) in runs.iter().enumerate() {
                    // In a storm the same alert re-fires while a run of it still waits for its
                    // target: that run has not looked at anything yet, so it answers this alert
                    // too. Without this, N alerts would queue N runs for one target.
                    if !recorded.opened {
                        if let Some(waiting) =
                            recorder.pending_run(incident, &run.responder).await?
                        {
                            recorded.coalesced.push((index, waiting));
                            self.decisions.push(NewDecision {
                                incident_id: Some(incident),
                                run_id: Some(waiting),
                                kind: DecisionKind::Joined,
                                detail: format!(
                                    "{} joined run {waiting} of {}, which has not started yet",
                                    alert.name(),
                                    run.responder
                                ),
                            });
                            continue;
                        }
                    }
                    let id = recorder.insert_run(incident, alert_id, run).await?;
                    recorded.run_ids.push(id);
                    if run.preempts {
                        // The target died: a run of another incident that only observes it
                        // is asked to stop (see `dispatch::preempt`).
                        let death = TargetDeath {
                            target: &run.target,
                            incident,
                            died_unix: alert.starts_at.unix_timestamp(),
                        };
                        let asked = recorder.ask_preemption(&death).await?;
                        recorded.preempting.extend(asked);
                    }
                }
                if !recorded.run_ids.is_empty() {
                    if recorded.opened {
                        self.newest_with_run.insert(key, Some(incident));
                    } else {
                        // An older incident gained its first run, maybe: which one is newest
                        // with a run, for its name and target, is read again when needed.
                        self.newest_with_run.clear();
                    }
                }
                for (kind, detail) in declines {
                    self.decisions.push(NewDecision {
                        incident_id: Some(incident),
                        run_id: None,
                        kind: *kind,
                        detail: detail.clone(),
                    });
                }
            }
        }
        Ok(recorded)
    }

    /// Folds a firing alert into the open incident of the same alert name and target: in a
    /// storm of distinct alerts for one container, each is recorded (alert row and decision)
    /// but only the first runs and writes to Slack. Alerts not acted on (no route, a refused
    /// or unresolved target) fold the same way, by their name and target (none when nothing
    /// rendered one).
    fn folded(&mut self, entry: &'a JournalEntry, incident: i64, target: Option<&str>) {
        let alert = &entry.alert;
        self.alerts.push(AlertRow { incident, entry });
        self.decisions.push(NewDecision {
            incident_id: Some(incident),
            run_id: None,
            kind: DecisionKind::Folded,
            detail: format!(
                "{} for {} (fingerprint {}) folded into this open incident: no new run",
                alert.name(),
                target.unwrap_or("no target"),
                alert.fingerprint
            ),
        });
    }
}
