//! The worker: claims journal entries, routes them, records the plan, and runs responders.
//!
//! Each journal entry is planned (route, target, allow-list) by pure code, then recorded with
//! its incident and runs in one store transaction, so a crash either leaves the entry to be
//! planned again or leaves runs that recovery starts (never started) or reports (interrupted).

mod annotations;
mod batches;
mod chart;
pub mod enrich;
mod folds;
mod observer;
pub mod planning;
pub mod preempt;
pub mod priority;
mod silences;
mod watches;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Map;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::actions::ActionCtx;
use crate::alert::{Alert, Source, Status};
use crate::config::Catalog;
use crate::limits::Guards;
use crate::metrics::Metrics;
use crate::notify::alertmanager::AlertmanagerClient;
use crate::notify::{pagerduty, Reporter};
use crate::responders::engine::{self, RunInput, RunResult};
use crate::responders::escalation::Priority;
use crate::responders::overrides::ModeOverrides;
use crate::responders::Mode;
use crate::routing::extract;
use crate::store::{
    AlertPlan, Claim, JournalEntry, PagerDutyKind, PendingRun, PreemptRequest, Recorded,
    RecoverScope, RunOutcome, Store, StoreError,
};
use folds::FoldEdits;
use observer::StoreObserver;
use preempt::RunHandle;

/// How many journal entries one read of the journal takes.
const JOURNAL_BATCH: u32 = 256;

/// How many journal entries that may act one transaction records (more that cannot: see
/// [`batches`]). Intake shares the one writer connection
/// and waits for the transaction in progress: small ones keep its acks fast, and intake's
/// group commits get the connection between them (the pool is first come, first served), so
/// under a flood new alerts keep being acknowledged while the backlog is worked off.
const RECORD_BATCH: usize = 16;

/// How long a replica leaves the journal to the replica recording it before looking again.
/// Bounds the delay only if that replica dies mid-recording; otherwise it records ours too.
const CONTENDED_PAUSE: Duration = Duration::from_millis(100);

/// The dispatcher's parts, shared by its loop and the runs it spawns.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    /// Durable record.
    pub store: Arc<dyn Store>,
    /// Routes, responders, templates.
    pub catalog: Arc<Catalog>,
    /// Global mode.
    pub mode: Mode,
    /// Modes set at runtime over the global and playbook ones (`/responder mode`).
    pub modes: Arc<ModeOverrides>,
    /// Clients for actions.
    pub actions: ActionCtx,
    /// Concurrency, per-target locks, global action rate.
    pub guards: Guards,
    /// Slack thread writer.
    pub reporter: Reporter,
    /// Notified when the journal has new entries.
    pub wake: Arc<Notify>,
    /// Cancellation and preemption handles of runs not yet finished, by run id.
    pub active: Arc<Mutex<HashMap<i64, RunHandle>>>,
    /// Tracks spawned runs so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// Settings playbooks read as `config.*`.
    pub config: Arc<BTreeMap<String, String>>,
    /// How long a step waits for approval.
    pub approval_ttl: Duration,
    /// Notified when an approval is decided, so waiting runs look at once.
    pub approvals: Arc<Notify>,
    /// Run, budget and step-duration metrics.
    pub metrics: Arc<Metrics>,
    /// Runs at once across every replica (`RESPONDER_MAX_RUNS`).
    pub max_runs: u32,
    /// Destructive actions per minute across every replica (`RESPONDER_ACTIONS_PER_MINUTE`).
    pub actions_per_minute: u32,
    /// How often runs whose holder is gone are looked for (a third of the lease).
    pub reap_every: Duration,
    /// Notified when another replica set a mode or asked for a cancellation, so this one
    /// looks at once instead of at its next second.
    pub cluster_wake: Arc<Notify>,
    /// Whether alerts no route matches get a Slack thread (`SLACK_POST_UNROUTED`).
    pub post_unrouted: bool,
    /// Count edits of parents that alerts folded into, spaced out per incident.
    pub folds: Arc<Mutex<FoldEdits>>,
    /// Reads PagerDuty incidents' first alerts (`PAGERDUTY_API_TOKEN`); off when `None`.
    pub pagerduty_lookup: Option<Arc<enrich::PagerDutyLookup>>,
    /// Where people reach this service (`RESPONDER_PUBLIC_URL`), for links to incident pages.
    pub public_url: Option<String>,
    /// Makes and lifts silences for routes with `silence: true` (`ALERTMANAGER_URL`); off
    /// when `None`.
    pub alertmanager: Option<AlertmanagerClient>,
}

impl Dispatcher {
    /// Recovers what a crash left, then processes the journal until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        self.recover().await;
        let cluster = tokio::spawn(self.clone().keep_in_step(shutdown.clone()));
        let silences = tokio::spawn(self.clone().follow_silences(shutdown.clone()));
        loop {
            self.drain_journal().await;
            let owed = self.lock_folds().due(tokio::time::Instant::now());
            for incident in owed {
                self.reporter.refresh(incident).await;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                // A periodic look also retries entries a database error left pending.
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        self.tracker.close();
        // Give runs in flight a moment; what is still running then is cut short by the exit:
        // record and report it as interrupted now, while the outbox can still send that,
        // rather than leave it to the next start. Never re-run either way.
        if tokio::time::timeout(Duration::from_secs(10), self.tracker.wait())
            .await
            .is_err()
        {
            // Also hands on the runs that never started.
            self.interrupt(RecoverScope::Mine).await;
        } else {
            // Nothing runs any more: only runs that never started are handed on (another
            // replica, or the next start).
            let _ = self
                .store
                .recover_runs(RecoverScope::Mine, OffsetDateTime::now_utc())
                .await;
        }
        let _ = cluster.await;
        let _ = silences.await;
    }

    async fn drain_journal(&self) {
        loop {
            let entries = match self.store.pending_journal(JOURNAL_BATCH).await {
                Ok(entries) if entries.is_empty() => return,
                Ok(entries) => entries,
                Err(e) => {
                    tracing::error!(error.message = %e, "Could not read the journal; will retry.");
                    return;
                }
            };
            for chunk in self.batches(&entries) {
                if !self.record_and_handle(chunk).await {
                    return;
                }
            }
        }
    }

    /// Records `entries` in one transaction, then acts on each; false if they could not be
    /// recorded (they stay pending and are retried).
    async fn record_and_handle(&self, entries: &[JournalEntry]) -> bool {
        let enriched;
        let entries = if entries.iter().any(|e| extract::applies(&e.alert)) {
            enriched = self.enrich(entries).await;
            &enriched[..]
        } else {
            entries
        };
        let plans: Vec<AlertPlan> = entries.iter().map(|e| self.plan(&e.alert)).collect();
        let batch: Vec<(&JournalEntry, &AlertPlan)> = entries.iter().zip(&plans).collect();
        let recorded = match self
            .store
            .record_alerts(&batch, OffsetDateTime::now_utc())
            .await
        {
            Ok(recorded) => recorded,
            Err(StoreError::Contended) => {
                tracing::debug!("Another replica is recording the journal; it records these too.");
                // It drains the whole journal, ours included, and hears of our inserts; looking
                // again at every one of our commits would only read and plan entries to throw
                // them away, with the CPU the recording replica needs.
                tokio::time::sleep(CONTENDED_PAUSE).await;
                return false;
            }
            Err(e) => {
                tracing::error!(entries = entries.len(), error.message = %e, "Could not record alerts; will retry.");
                return false;
            }
        };
        // Folded alerts change only their incident's counts: at most one parent edit per
        // incident every few seconds, however many folded into it (the last one is owed).
        let mut folded = BTreeSet::new();
        for ((entry, plan), recorded) in batch.into_iter().zip(recorded) {
            if recorded.folded {
                folded.extend(recorded.incident_id);
            }
            self.handle(entry, plan, recorded).await;
        }
        let edit = self
            .lock_folds()
            .folded(tokio::time::Instant::now(), folded);
        for incident in edit {
            self.reporter.refresh(incident).await;
        }
        true
    }

    /// `entries` with each PagerDuty incident given the labels of its details and title (the
    /// lookups run at once); what is recorded, planned and run is the enriched alert.
    async fn enrich(&self, entries: &[JournalEntry]) -> Vec<JournalEntry> {
        let lookup = self.pagerduty_lookup.as_deref();
        let rules = &self.catalog.extract;
        let enriched = entries.iter().cloned().map(|mut entry| async move {
            let report = enrich::enrich(&mut entry.alert, rules, lookup).await;
            for note in &report.notes {
                tracing::warn!(pagerduty.incident = %entry.alert.fingerprint, note, "PagerDuty labels incomplete.");
            }
            entry
        });
        futures::future::join_all(enriched).await
    }

    fn lock_folds(&self) -> std::sync::MutexGuard<'_, FoldEdits> {
        self.folds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Acts on what was recorded for one entry: reports, spawns its runs, cancels on resolve.
    async fn handle(&self, entry: &JournalEntry, plan: &AlertPlan, recorded: Recorded) {
        let alert = &entry.alert;
        if recorded.already_recorded {
            tracing::debug!(
                journal = entry.id,
                "Journal entry recorded by another replica."
            );
            return;
        }
        let Some(incident) = recorded.incident_id else {
            tracing::info!(alertname = alert.name(), fingerprint = %alert.fingerprint, status = alert.status.as_str(), "Alert had no incident to join.");
            return;
        };
        if alert.status == Status::Update {
            self.reporter.pagerduty_update(incident, alert).await;
            return;
        }
        if recorded.folded {
            tracing::debug!(incident, alertname = alert.name(), fingerprint = %alert.fingerprint, "Alert folded into the open incident of its name and target.");
            // As for any one-shot alert without a run of its own: the incident closes once
            // no run of it is left.
            if alert.is_one_shot() {
                let _ = self.close_one_shot(incident).await;
            }
            return;
        }
        let channel = planning::channel(&self.catalog.responders, alert, plan);
        if recorded.opened && (self.post_unrouted || !planning::unrouted(alert, plan)) {
            self.reporter.opened_in(incident, channel).await;
            if let Some(line) = extract::thread_line(alert) {
                self.reporter.note(incident, &line).await;
            }
        } else if !recorded.run_ids.is_empty() {
            // A quiet incident that now acts (routes changed since it opened) needs its
            // thread before the run's replies; posted ones are left as they are.
            self.reporter.opened_in(incident, channel).await;
        }
        if let AlertPlan::Firing {
            runs,
            declines,
            target,
        } = plan
        {
            // A new incident of a watched alert and target: the last fix did not hold. Said
            // before this incident's own run starts acting again.
            if let Some(target) = target.as_deref().filter(|_| recorded.opened) {
                self.recurrence(alert, target, incident).await;
            }
            for (kind, detail) in declines {
                tracing::info!(
                    incident,
                    kind = kind.as_str(),
                    detail,
                    "Alert not acted on."
                );
                // Said in the thread beside a run this alert started; otherwise the parent
                // says why, and a re-fire that changes nothing adds nothing.
                if !recorded.run_ids.is_empty() {
                    self.reporter.note(incident, detail).await;
                }
            }
            let late = alert.slot().and_then(|slot| slot.late_note());
            if let Some(late) = late.filter(|_| !recorded.run_ids.is_empty()) {
                self.reporter.note(incident, &late).await;
            }
            for (index, waiting) in &recorded.coalesced {
                tracing::debug!(incident, run = waiting, responder = %runs[*index].responder, "Alert joins the run waiting for its target.");
            }
            let created = runs
                .iter()
                .enumerate()
                .filter(|(i, _)| !recorded.coalesced.iter().any(|(c, _)| c == i))
                .map(|(_, run)| run);
            for (run, id) in created.zip(&recorded.run_ids) {
                self.spawn_run(PendingRun {
                    run_id: *id,
                    incident_id: incident,
                    responder: run.responder.clone(),
                    target: run.target.clone(),
                    mode: run.mode,
                    alert: alert.clone(),
                });
            }
        }
        let died_unix = alert.starts_at.unix_timestamp();
        let asked: Vec<PreemptRequest> = (recorded.preempting.iter())
            .map(|&run_id| PreemptRequest {
                run_id,
                by: incident,
                died_unix,
            })
            .collect();
        self.preempt(&asked).await;
        if recorded.resolved {
            self.resolve(incident, &recorded.active_runs).await;
            self.lift_silences(incident, None, "the alert resolved")
                .await;
            if alert.source != Source::PagerDuty {
                // Queued only when a trigger was (the store checks).
                let event = pagerduty::resolve_event(incident, alert);
                self.reporter
                    .pagerduty(incident, PagerDutyKind::Resolve, event)
                    .await;
            }
        }
        if alert.is_one_shot() && recorded.run_ids.is_empty() {
            let _ = self.close_one_shot(incident).await;
        }
    }

    /// Decides what to do with an alert. Pure apart from reading the catalog.
    pub fn plan(&self, alert: &Alert) -> AlertPlan {
        planning::plan_alert(&self.catalog, &self.modes, &self.config, alert)
    }

    async fn resolve(&self, incident: i64, active_runs: &[i64]) {
        // Runs another replica holds are cancelled there, at its next lease renewal.
        let cancelled = self.cancel_runs(active_runs);
        tracing::info!(incident, cancelled, "Alert resolved; incident closed.");
        if cancelled > 0 {
            self.reporter
                .note(
                    incident,
                    "Alert resolved: steps not yet started are cancelled.",
                )
                .await;
        }
        self.reporter.refresh(incident).await;
    }

    /// Nothing will resolve a one-shot alert (a container's death): its incident closes once
    /// no run of it is left.
    /// Returns whether it closed (and its parent message was refreshed).
    async fn close_one_shot(&self, incident: i64) -> bool {
        match self
            .store
            .close_idle_incident(incident, OffsetDateTime::now_utc())
            .await
        {
            Ok(true) => {
                tracing::info!(incident, "One-shot incident closed: its runs are done.");
                self.reporter.refresh(incident).await;
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::error!(incident, error.message = %e, "Could not close a one-shot incident.");
                false
            }
        }
    }

    /// A run on a PagerDuty incident ends with a note on it; a P0/P1 escalation of any other
    /// incident triggers a PagerDuty event (once per incident: the store keeps it so).
    async fn tell_pagerduty(&self, run: &PendingRun, result: &RunResult, priority: Priority) {
        let alert = &run.alert;
        if alert.source == Source::PagerDuty {
            let Some(pd_incident) = alert.labels.get("pd_incident_id") else {
                return;
            };
            let content = format!(
                "alert-responder: responder {} on {} ({}) {}: {}",
                run.responder,
                run.target,
                run.mode.as_str(),
                result.outcome.as_str(),
                result.summary
            );
            let note = serde_json::json!({ "incident": pd_incident, "content": content });
            self.reporter
                .pagerduty(run.incident_id, PagerDutyKind::Note, note)
                .await;
        } else if let Some(reason) = result.escalation.as_ref().filter(|_| priority.pages()) {
            // Only P0/P1 page (the runbook's "When to Escalate"); P2/P3 stay in Slack.
            let event =
                pagerduty::trigger_event(run.incident_id, alert, &run.target, reason, priority);
            self.reporter
                .pagerduty(run.incident_id, PagerDutyKind::Trigger, event)
                .await;
        }
    }

    /// At startup, and then every [`Dispatcher::reap_every`]: reports runs whose holder is
    /// gone (an earlier process, or a replica that stopped renewing its lease), and starts
    /// the runs they created but never started.
    async fn recover(&self) {
        for run in self.interrupt(RecoverScope::Abandoned).await {
            tracing::info!(
                run = run.run_id,
                "Starting a run whose holder is gone (never started)."
            );
            self.spawn_run(run);
        }
    }

    /// Keeps this replica in step with the others until `shutdown`: renews the leases of its
    /// runs each second (and cancels those a resolve recorded elsewhere asked to cancel),
    /// picks up mode overrides set through any replica, and reaps abandoned runs.
    async fn keep_in_step(self, shutdown: CancellationToken) {
        let mut last_reap = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = self.cluster_wake.notified() => {}
                _ = shutdown.cancelled() => return,
            }
            let now = OffsetDateTime::now_utc();
            match self.store.renew_leases(now).await {
                Ok(news) => {
                    self.preempt(&news.preempt).await;
                    let cancelled = self.cancel_runs(&news.cancel);
                    if cancelled > 0 {
                        tracing::info!(
                            cancelled,
                            "Runs cancelled: their alert resolved (recorded by another replica)."
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(error.message = %e, "Could not renew the leases of this replica's runs; will retry.")
                }
            }
            match self.store.mode_overrides().await {
                Ok(rows) => self.modes.replace(&rows),
                Err(e) => tracing::warn!(error.message = %e, "Could not read the mode overrides."),
            }
            self.watches_ended().await;
            if last_reap.elapsed() >= self.reap_every {
                last_reap = tokio::time::Instant::now();
                self.recover().await;
            }
        }
    }

    /// Cancels this replica's runs among `ids`; returns how many it held.
    fn cancel_runs(&self, ids: &[i64]) -> usize {
        let active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        ids.iter()
            .filter_map(|id| active.get(id).map(|run| &run.cancel))
            .filter(|token| !token.is_cancelled())
            .map(CancellationToken::cancel)
            .count()
    }

    /// Marks the runs of `scope` still `running` as interrupted (each started step as
    /// `unknown`) and escalates each; returns the runs never started, now this replica's.
    async fn interrupt(&self, scope: RecoverScope) -> Vec<PendingRun> {
        // The store says what cut each run short: on SQLite only a restart or a shutdown can;
        // on PostgreSQL also the loss of another replica.
        let recovery = match self
            .store
            .recover_runs(scope, OffsetDateTime::now_utc())
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error.message = %e, "Could not record interrupted runs.");
                return Vec::new();
            }
        };
        for run in recovery.interrupted {
            let cause = &run.cause;
            tracing::warn!(run = run.run_id, responder = %run.responder, target = %run.target, cause, "Run was interrupted; not re-running it.");
            self.metrics
                .run_finished(&run.responder, RunOutcome::Interrupted);
            let text = match &run.last_step {
                Some(step) => format!("Run of {} on `{}` was interrupted by {cause} during step *{step}*, which may or may not have happened. Not re-run: please check.", run.responder, run.target),
                None => format!("Run of {} on `{}` was interrupted by {cause} between steps. Not re-run: please check.", run.responder, run.target),
            };
            // A responder gone from the catalog since is escalated at the default priority.
            let priority = self
                .catalog
                .responders
                .get(&run.responder)
                .map(|r| r.priority)
                .unwrap_or_default();
            self.reporter
                .escalate(run.incident_id, priority, &text)
                .await;
            self.annotate_interrupted(&run, &text).await;
            self.lift_silences(run.incident_id, Some(run.run_id), "the run was interrupted")
                .await;
            self.reporter.refresh(run.incident_id).await;
        }
        recovery.pending
    }

    fn spawn_run(&self, run: PendingRun) {
        let handle = RunHandle::new(run.incident_id);
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(run.run_id, handle.clone());
        let span = tracing::info_span!("run", run_id = run.run_id, incident_id = run.incident_id, responder = %run.responder, target = %run.target);
        let this = self.clone();
        self.tracker.spawn(
            async move {
                this.execute(&run, &handle).await;
                this.active
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&run.run_id);
            }
            .instrument(span),
        );
    }

    /// Takes the run in the store: held by this replica, its target held across every
    /// replica (waiting while another run, anywhere, holds it). A run cancelled while waiting
    /// starts without holding anything, only to record its steps as cancelled. False when it
    /// is not this replica's to run (claimed elsewhere, or the store failed).
    async fn claim(&self, run: &PendingRun, cancel: &CancellationToken) -> bool {
        let mut waiting_logged = false;
        loop {
            let now = OffsetDateTime::now_utc();
            if cancel.is_cancelled() {
                return match self.store.start_run(run.run_id, now).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::error!(error.message = %e, "Could not mark the run started; not running it.");
                        false
                    }
                };
            }
            let wait = match self.store.claim_run(run.run_id, self.max_runs, now).await {
                Ok(Claim::Started) => return true,
                Ok(Claim::Gone) => {
                    tracing::info!("Run is no longer pending here (cancelled, or taken over by another replica); leaving it.");
                    return false;
                }
                Ok(busy @ (Claim::TargetBusy | Claim::Full)) => {
                    if !waiting_logged {
                        tracing::info!(reason = ?busy, "Run waits: its target or the cluster's run slots are taken.");
                        waiting_logged = true;
                    }
                    Duration::from_millis(250)
                }
                Err(e) => {
                    tracing::error!(error.message = %e, "Could not claim the run; will retry.");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = cancel.cancelled() => {}
            }
        }
    }

    async fn execute(&self, run: &PendingRun, handle: &RunHandle) {
        let cancel = &handle.cancel;
        let Some(responder) = self.catalog.responders.get(&run.responder).cloned() else {
            tracing::error!("Responder no longer in the catalog; run dropped.");
            return;
        };
        // A resolve while waiting for the target skips the wait; the engine then sees the
        // cancelled token and records every step as cancelled without touching anything.
        let asking = self.keep_asking(run);
        let _permit = tokio::select! {
            permit = self.guards.acquire(&run.target) => Some(permit),
            _ = cancel.cancelled() => None,
        };
        if !self.claim(run, cancel).await {
            return;
        }
        drop(asking);
        tracing::info!("Run started.");
        let started = OffsetDateTime::now_utc();
        self.annotate_start(run).await;
        let preemption = handle.preemption.clone();
        let observer = StoreObserver::new(self, run, responder.clone(), preemption);
        let previous = self
            .store
            .previous_outputs(&run.responder, &run.target, run.run_id)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error.message = %e, "Could not read the previous run's outputs; `previous` is empty.");
                Map::new()
            });
        let approval_forced = self.approval_forced(run, &responder).await;
        let input = RunInput {
            responder: &responder,
            alert: &run.alert,
            target: &run.target,
            mode: run.mode,
            templates: &self.catalog.templates,
            actions: &self.actions,
            cancel,
            preemption: &handle.preemption,
            config: &self.config,
            previous: &previous,
            approval_forced,
        };
        let result = engine::run(input, &observer).await;
        tracing::info!(outcome = result.outcome.as_str(), summary = %result.summary, "Run finished.");
        self.metrics.run_finished(&run.responder, result.outcome);
        let now = OffsetDateTime::now_utc();
        if let Err(e) = self
            .store
            .finish_run(run.run_id, result.outcome, &result.summary, now)
            .await
        {
            tracing::error!(error.message = %e, "Could not record the run's outcome.");
        }
        self.annotate_end(run, result.outcome, &result.summary)
            .await;
        let watching = self.start_watch(run, &responder, observer.acted()).await;
        let lifted = if result.escalation.is_some() {
            Some("the run escalated to a person")
        } else if result.outcome != RunOutcome::Succeeded {
            Some("the run did not succeed")
        } else if !watching {
            Some("the run is done and there is no fix to watch")
        } else {
            None
        };
        if let Some(reason) = lifted {
            self.lift_silences(run.incident_id, Some(run.run_id), reason)
                .await;
        }
        if let Some(reason) = &result.escalation {
            observer.escalated(reason).await;
            self.reporter
                .escalate(run.incident_id, responder.priority, reason)
                .await;
        }
        self.tell_pagerduty(run, &result, responder.priority).await;
        // Closing a one-shot incident refreshes the parent itself.
        if !(run.alert.is_one_shot() && self.close_one_shot(run.incident_id).await) {
            self.reporter.refresh(run.incident_id).await;
        }
        // The chart marks the first action; a run that changed nothing marks its start.
        self.chart(run, observer.first_action().unwrap_or(started))
            .await;
    }
}
