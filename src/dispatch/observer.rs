//! The engine's observer in a dispatched run: records steps, posts replies, spends budgets.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::Dispatcher;
use crate::limits::Admission;
use crate::responders::engine::RunObserver;
use crate::responders::{Responder, Step};
use crate::store::{DecisionKind, NewDecision, NewStep, PendingRun, StepEnd};

/// Records a run's progress in the store and its thread.
pub(super) struct StoreObserver<'a> {
    dispatcher: &'a Dispatcher,
    run: &'a PendingRun,
    responder: Arc<Responder>,
}

impl<'a> StoreObserver<'a> {
    pub(super) fn new(
        dispatcher: &'a Dispatcher,
        run: &'a PendingRun,
        responder: Arc<Responder>,
    ) -> Self {
        Self {
            dispatcher,
            run,
            responder,
        }
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
        match self
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
        }
    }

    async fn finished(&self, step: &Step, handle: i64, end: &StepEnd) {
        tracing::info!(step = %step.id, state = end.state.as_str(), summary = %end.summary, "Step ended.");
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
        if !self.dispatcher.guards.take_action() {
            let reason = "global limit of destructive actions per minute reached (RESPONDER_ACTIONS_PER_MINUTE)".to_owned();
            self.decide(DecisionKind::RateLimited, &reason).await;
            return Admission::Refused { reason };
        }
        let store = &self.dispatcher.store;
        let now = OffsetDateTime::now_utc();
        let admission = store
            .consume_budget(
                &self.responder.name,
                &self.run.target,
                &self.responder.budget,
                self.run.run_id,
                now,
            )
            .await
            .unwrap_or_else(|e| Admission::Refused {
                reason: format!("budget could not be checked ({e}); not acting"),
            });
        if let Admission::Refused { reason } = &admission {
            tracing::warn!(step = %step.id, reason, "Destructive step refused by budget.");
            self.decide(DecisionKind::BudgetExhausted, reason).await;
        }
        admission
    }
}
