//! The engine's observer in a dispatched run: records steps, posts replies, spends budgets.

mod choice;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::Dispatcher;
use crate::limits::Admission;
use tokio_util::sync::CancellationToken;

use crate::responders::engine::{ApprovalOutcome, ChoiceOutcome, RunObserver};
use crate::responders::preemption::Preemption;
use crate::responders::{Responder, Step};
use crate::store::{
    ActionSpend, ApprovalRow, ApprovalState, DecisionKind, NewApproval, NewDecision, NewStep,
    PendingRun, Spend, StepEnd, StepState, RATE_LIMITED,
};

/// Records a run's progress in the store and its thread.
pub(super) struct StoreObserver<'a> {
    dispatcher: &'a Dispatcher,
    run: &'a PendingRun,
    responder: Arc<Responder>,
    /// Says whether a cancellation was a preemption (an approval closes as `preempted`).
    preemption: Arc<Preemption>,
    /// When the step in progress started (the engine runs one step at a time).
    step_started: Mutex<Option<Instant>>,
    /// When the run's first destructive step started: the action its charts mark.
    first_action: Mutex<Option<OffsetDateTime>>,
    /// The last destructive step that succeeded, and when it ended: what a watch follows.
    acted: Mutex<Option<(String, OffsetDateTime)>>,
}

impl<'a> StoreObserver<'a> {
    pub(super) fn new(
        dispatcher: &'a Dispatcher,
        run: &'a PendingRun,
        responder: Arc<Responder>,
        preemption: Arc<Preemption>,
    ) -> Self {
        Self {
            dispatcher,
            run,
            responder,
            preemption,
            step_started: Mutex::new(None),
            first_action: Mutex::new(None),
            acted: Mutex::new(None),
        }
    }

    /// The last destructive step that succeeded (its id) and when it ended, if one did.
    pub(super) fn acted(&self) -> Option<(String, OffsetDateTime)> {
        self.acted.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// When the run's first destructive step started, if one did.
    pub(super) fn first_action(&self) -> Option<OffsetDateTime> {
        *self.first_action.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_step(&self, step: &Step) -> NewStep {
        let kind = step.action.kind();
        NewStep {
            run_id: self.run.run_id,
            step_id: step.id.clone(),
            action: kind.name().to_owned(),
            destructive: kind.destructive(),
        }
    }

    async fn decide(&self, kind: DecisionKind, detail: &str) {
        let d = NewDecision {
            incident_id: Some(self.run.incident_id),
            run_id: Some(self.run.run_id),
            kind,
            detail: detail.to_owned(),
        };
        if let Err(e) = self
            .dispatcher
            .store
            .record_decision(&d, OffsetDateTime::now_utc())
            .await
        {
            tracing::error!(error.message = %e, "Could not record a decision.");
        }
    }

    /// Records that the run was escalated to a human.
    pub(super) async fn escalated(&self, reason: &str) {
        self.decide(DecisionKind::Escalated, reason).await;
    }

    async fn report(&self, step: &Step, end: &StepEnd) {
        let reporter = &self.dispatcher.reporter;
        reporter
            .step(
                self.run.incident_id,
                &step.id,
                step.action.kind().name(),
                self.run.mode.as_str(),
                end,
            )
            .await;
    }
}

#[async_trait]
impl RunObserver for StoreObserver<'_> {
    async fn started(&self, step: &Step) -> i64 {
        tracing::info!(step = %step.id, "Step started.");
        let handle = match self
            .dispatcher
            .store
            .step_started(&self.new_step(step), OffsetDateTime::now_utc())
            .await
        {
            Ok(row) => row,
            Err(e) => {
                tracing::error!(step = %step.id, error.message = %e, "Could not record a step start.");
                -1
            }
        };
        *self.step_started.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        if step.action.kind().destructive() {
            let first = {
                let mut first = self.first_action.lock().unwrap_or_else(|e| e.into_inner());
                let was = first.is_none();
                first.get_or_insert_with(OffsetDateTime::now_utc);
                was
            };
            if first {
                self.dispatcher.silence(self.run, &self.responder).await;
            }
        }
        handle
    }

    async fn finished(&self, step: &Step, handle: i64, end: &StepEnd) {
        tracing::info!(step = %step.id, state = end.state.as_str(), summary = %end.summary, "Step ended.");
        let started = self
            .step_started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(started) = started {
            let metrics = &self.dispatcher.metrics;
            metrics.step_finished(step.action.kind().name(), started.elapsed());
        }
        if step.action.kind().destructive() && end.state == StepState::Succeeded {
            let acted = (step.id.clone(), OffsetDateTime::now_utc());
            *self.acted.lock().unwrap_or_else(|e| e.into_inner()) = Some(acted);
        }
        if let Err(e) = self
            .dispatcher
            .store
            .step_finished(handle, end, OffsetDateTime::now_utc())
            .await
        {
            tracing::error!(step = %step.id, error.message = %e, "Could not record a step end.");
        }
        self.report(step, end).await;
    }

    async fn chart(&self, step: &Step, plot: crate::chart::Plot) {
        let action = self.first_action();
        self.dispatcher
            .chart_step(self.run, &step.id, plot, action)
            .await;
    }

    async fn not_run(&self, step: &Step, end: &StepEnd) {
        tracing::info!(step = %step.id, state = end.state.as_str(), summary = %end.summary, "Step did not run.");
        if let Err(e) = self
            .dispatcher
            .store
            .step_not_run(&self.new_step(step), end, OffsetDateTime::now_utc())
            .await
        {
            tracing::error!(step = %step.id, error.message = %e, "Could not record a step.");
        }
        self.report(step, end).await;
    }

    async fn admit(&self, step: &Step) -> Admission {
        let d = self.dispatcher;
        if !d.guards.take_action() {
            let reason = RATE_LIMITED.to_owned();
            self.decide(DecisionKind::RateLimited, &reason).await;
            return Admission::Refused { reason };
        }
        let spend = ActionSpend {
            responder: &self.responder.name,
            target: &self.run.target,
            step: &step.id,
            budget: &self.responder.budget,
            run_id: self.run.run_id,
            actions_per_minute: d.actions_per_minute,
        };
        let spent = d
            .store
            .spend_action(&spend, OffsetDateTime::now_utc())
            .await
            .unwrap_or_else(|e| {
                Spend::Budget(format!("budget could not be checked ({e}); not acting"))
            });
        let Some((kind, reason)) = spent.refusal() else {
            return Admission::Allowed;
        };
        tracing::warn!(step = %step.id, reason, kind = kind.as_str(), "Destructive step refused.");
        if kind == DecisionKind::BudgetExhausted {
            d.metrics.budget_refused(&self.responder.name);
        }
        self.decide(kind, reason).await;
        Admission::Refused {
            reason: reason.to_owned(),
        }
    }

    async fn approval(
        &self,
        step: &Step,
        plan: &str,
        cancel: &CancellationToken,
    ) -> ApprovalOutcome {
        let d = self.dispatcher;
        let waits = "the run waits for a person's approval";
        d.lift_silences(self.run.incident_id, Some(self.run.run_id), waits)
            .await;
        let now = OffsetDateTime::now_utc();
        let ttl = d.approval_ttl;
        let request = NewApproval {
            incident_id: self.run.incident_id,
            run_id: self.run.run_id,
            step_id: step.id.clone(),
            plan: plan.to_owned(),
            expires_at: now + ttl,
            choice: None,
        };
        let id = match d.store.request_approval(&request, now).await {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(step = %step.id, error.message = %e, "Could not record an approval request; not acting.");
                return ApprovalOutcome::Expired {
                    waited: "0s (the request could not be stored)".to_owned(),
                };
            }
        };
        let waited = humantime::format_duration(ttl).to_string();
        tracing::info!(step = %step.id, approval = id, "Waiting for approval.");
        let message = d
            .reporter
            .approval_requested(self.run.incident_id, id, &step.id, plan, &waited)
            .await;
        let deadline = tokio::time::Instant::now() + ttl;
        loop {
            match d.store.approval(id).await {
                Ok(Some(row)) if row.state.decided() => {
                    self.settled(message, &row).await;
                    let by = row.decided_by.unwrap_or_else(|| "someone".to_owned());
                    d.reporter
                        .approval_decided(self.run.incident_id, &step.id, row.state, &by)
                        .await;
                    return if row.state == ApprovalState::Approved {
                        ApprovalOutcome::Approved { by }
                    } else {
                        ApprovalOutcome::Denied { by }
                    };
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(approval = id, error.message = %e, "Could not read an approval; will retry.")
                }
            }
            tokio::select! {
                _ = d.approvals.notified() => {}
                // A decision made on another replica, or between the read and the wait, is
                // seen at the next look.
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = tokio::time::sleep_until(deadline) => {
                    self.close(id, ApprovalState::Expired, message).await;
                    return ApprovalOutcome::Expired { waited };
                }
                _ = cancel.cancelled() => {
                    let preempted = self.preemption.preempted_by().is_some();
                    let state = if preempted {
                        ApprovalState::Preempted
                    } else {
                        ApprovalState::Cancelled
                    };
                    self.close(id, state, message).await;
                    return ApprovalOutcome::Cancelled;
                }
            }
        }
    }

    async fn choose(
        &self,
        group: &str,
        options: &[(&Step, String)],
        cancel: &CancellationToken,
    ) -> ChoiceOutcome {
        let waits = "the run waits for a person to choose";
        (self.dispatcher)
            .lift_silences(self.run.incident_id, Some(self.run.run_id), waits)
            .await;
        self.offer_choice(group, options, cancel).await
    }
}

impl StoreObserver<'_> {
    /// Closes a still-pending approval and edits its message to the final state, which may
    /// be a decision that won the race against the close.
    async fn close(&self, approval: i64, state: ApprovalState, message: Option<i64>) {
        let store = &self.dispatcher.store;
        if let Err(e) = store
            .close_approval(approval, state, OffsetDateTime::now_utc())
            .await
        {
            tracing::error!(approval, error.message = %e, "Could not close an approval.");
        }
        if let Ok(Some(row)) = store.approval(approval).await {
            self.settled(message, &row).await;
        }
    }

    /// Replaces the request's buttons with the settled state.
    async fn settled(&self, message: Option<i64>, row: &ApprovalRow) {
        if let Some(message) = message {
            self.dispatcher
                .reporter
                .approval_settled(self.run.incident_id, message, row)
                .await;
        }
    }
}
