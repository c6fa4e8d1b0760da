//! Recording a batch of journal entries, the same on every backend: what each entry does to
//! incidents, alerts, runs and decisions ([`Store::record_alerts`]), written once over the
//! few statements a backend provides ([`Recorder`]).
//!
//! A batch is one transaction, which sees its own writes, so what it reads once stays true
//! for it as long as it keeps track of what it writes: the open incident of every fingerprint
//! in the batch and the incidents alerts may fold into are read with one statement each at
//! the start, and kept up to date as entries open and resolve incidents. Alert rows and
//! decisions nobody reads back in the batch are written together, in order (their ids come
//! out as they would one by one): an alert that folds, or one no route matches, costs no
//! statement of its own beyond the incident it may open.

mod entry;
pub(crate) mod statements;

pub(crate) use statements::recorder_impl;

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;

use super::{AlertPlan, JournalEntry, NewDecision, Recorded, RunPlan, StoreError};
use crate::alert::Alert;

/// An alert name and target (`None`: nothing rendered one): what alerts fold by.
pub(crate) type FoldKey = (String, Option<String>);

/// The open incidents of one [`FoldKey`]: the newest, and the newest with a run.
#[derive(Debug, Clone)]
pub(crate) struct FoldCandidates {
    pub(crate) key: FoldKey,
    pub(crate) newest: i64,
    pub(crate) newest_with_run: Option<i64>,
}

/// An alert row to write: the journal entry's alert, recorded against `incident`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AlertRow<'a> {
    pub(crate) incident: i64,
    pub(crate) entry: &'a JournalEntry,
}

/// The statements recording needs, inside one transaction of a backend; rows are stamped
/// with the recording's time and runs held by its holder.
#[async_trait]
pub(crate) trait Recorder: Send {
    /// The newest open incident of each of `fingerprints` that has one.
    async fn open_incidents(
        &mut self,
        fingerprints: &[&str],
    ) -> Result<HashMap<String, i64>, StoreError>;
    /// What each of `keys` may fold into (keys without an open incident are left out).
    async fn fold_candidates(
        &mut self,
        keys: &[&FoldKey],
    ) -> Result<Vec<FoldCandidates>, StoreError>;
    /// The newest open incident of `key` (with a run, if `with_run`).
    async fn fold_target(
        &mut self,
        key: &FoldKey,
        with_run: bool,
    ) -> Result<Option<i64>, StoreError>;
    /// The newest incident of `fingerprint`, open or not.
    async fn latest_incident(&mut self, fingerprint: &str) -> Result<Option<i64>, StoreError>;
    async fn insert_incident(
        &mut self,
        alert: &Alert,
        target: Option<&str>,
    ) -> Result<i64, StoreError>;
    /// Inserts alert rows (at least one), ids in the order given; returns the last one's.
    async fn insert_alerts(&mut self, rows: &[AlertRow<'_>]) -> Result<i64, StoreError>;
    /// Inserts decisions, ids in the order given.
    async fn insert_decisions(&mut self, decisions: &[NewDecision]) -> Result<(), StoreError>;
    /// Resolves the incident and asks its unfinished runs to cancel; returns those runs.
    async fn resolve_incident(&mut self, incident: i64) -> Result<Vec<i64>, StoreError>;
    /// A run of `responder` for the incident that has not started yet.
    async fn pending_run(
        &mut self,
        incident: i64,
        responder: &str,
    ) -> Result<Option<i64>, StoreError>;
    /// Creates a pending run of `alert_id`'s alert; returns its id.
    async fn insert_run(
        &mut self,
        incident: i64,
        alert_id: i64,
        run: &RunPlan,
    ) -> Result<i64, StoreError>;
    /// Asks the running runs of other incidents on the dead target to stop unless a
    /// destructive step of theirs has started; returns them.
    async fn ask_preemption(
        &mut self,
        death: &crate::store::TargetDeath<'_>,
    ) -> Result<Vec<i64>, StoreError>;
}

/// Records `batch` in order through `recorder`: what recording each entry alone, one after
/// the other, would record, with the same ids.
pub(crate) async fn record_batch<R: Recorder>(
    recorder: &mut R,
    batch: &[(&JournalEntry, &AlertPlan)],
) -> Result<Vec<Recorded>, StoreError> {
    let mut state = Batch::read(recorder, batch).await?;
    let mut recorded = Vec::with_capacity(batch.len());
    for (entry, plan) in batch {
        recorded.push(state.record(recorder, entry, plan).await?);
    }
    state.flush_alerts(recorder).await?;
    if !state.decisions.is_empty() {
        recorder.insert_decisions(&state.decisions).await?;
    }
    Ok(recorded)
}

/// What the batch knows of the database as its own writes change it. A key missing from a
/// map is unknown (read when needed); a `None` value is known: no such open incident.
#[derive(Debug, Default)]
struct Batch<'a> {
    /// Newest open incident by fingerprint.
    open: HashMap<String, Option<i64>>,
    /// Newest open incident by alert name and target.
    newest: HashMap<FoldKey, Option<i64>>,
    /// Newest open incident with a run, by alert name and target.
    newest_with_run: HashMap<FoldKey, Option<i64>>,
    /// Alert rows not written yet, in order.
    alerts: Vec<AlertRow<'a>>,
    /// Decisions not written yet, in order.
    decisions: Vec<NewDecision>,
}

impl<'a> Batch<'a> {
    /// Reads the open incidents of the batch's fingerprints and of its fold keys.
    async fn read<R: Recorder>(
        recorder: &mut R,
        batch: &[(&'a JournalEntry, &AlertPlan)],
    ) -> Result<Batch<'a>, StoreError> {
        let mut state = Batch::default();
        let fingerprints: HashSet<&str> = batch
            .iter()
            .map(|(entry, _)| entry.alert.fingerprint.as_str())
            .collect();
        let fingerprints: Vec<&str> = fingerprints.into_iter().collect();
        let open = recorder.open_incidents(&fingerprints).await?;
        for fingerprint in fingerprints {
            let incident = open.get(fingerprint).copied();
            state.open.insert(fingerprint.to_owned(), incident);
        }
        let keys: HashSet<FoldKey> = batch
            .iter()
            .filter_map(|(entry, plan)| match plan {
                AlertPlan::Firing { target, .. } => {
                    Some((entry.alert.name().to_owned(), target.clone()))
                }
                _ => None,
            })
            .collect();
        if keys.is_empty() {
            return Ok(state);
        }
        let candidates = recorder
            .fold_candidates(&keys.iter().collect::<Vec<_>>())
            .await?;
        for key in keys {
            state.newest.insert(key.clone(), None);
            state.newest_with_run.insert(key, None);
        }
        for found in candidates {
            state.newest.insert(found.key.clone(), Some(found.newest));
            state
                .newest_with_run
                .insert(found.key, found.newest_with_run);
        }
        Ok(state)
    }

    async fn open_incident<R: Recorder>(
        &mut self,
        recorder: &mut R,
        fingerprint: &str,
    ) -> Result<Option<i64>, StoreError> {
        if let Some(known) = self.open.get(fingerprint) {
            return Ok(*known);
        }
        let found = recorder.open_incidents(&[fingerprint]).await?;
        let incident = found.get(fingerprint).copied();
        self.open.insert(fingerprint.to_owned(), incident);
        Ok(incident)
    }

    /// The incident an alert of `key` folds into: the newest open one (with a run, if the
    /// alert would act: noise must not swallow real work).
    async fn fold_target<R: Recorder>(
        &mut self,
        recorder: &mut R,
        key: &FoldKey,
        acting: bool,
    ) -> Result<Option<i64>, StoreError> {
        let known = if acting {
            &mut self.newest_with_run
        } else {
            &mut self.newest
        };
        if let Some(incident) = known.get(key) {
            return Ok(*incident);
        }
        let incident = recorder.fold_target(key, acting).await?;
        known.insert(key.clone(), incident);
        Ok(incident)
    }

    /// The incident no longer open: whatever pointed at it is unknown again.
    fn closed(&mut self, fingerprint: &str, incident: i64) {
        self.open.remove(fingerprint);
        self.newest.retain(|_, open| *open != Some(incident));
        self.newest_with_run
            .retain(|_, open| *open != Some(incident));
    }

    /// Writes the alert rows not written yet; returns the id of the last (0: none).
    async fn flush_alerts<R: Recorder>(&mut self, recorder: &mut R) -> Result<i64, StoreError> {
        if self.alerts.is_empty() {
            return Ok(0);
        }
        let last = recorder.insert_alerts(&self.alerts).await?;
        self.alerts.clear();
        Ok(last)
    }
}
