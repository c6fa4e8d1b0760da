//! A choice in a dispatched run: one approval row per option (all of one `choice` group, so
//! the store lets at most one be approved), one Slack message with a button per option, and
//! the wait for the first decision.

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::StoreObserver;
use crate::responders::engine::ChoiceOutcome;
use crate::responders::Step;
use crate::store::{ApprovalRow, ApprovalState, NewApproval};

/// The state an option takes when another was chosen, or the choice was denied.
const NOT_CHOSEN: ApprovalState = ApprovalState::Refused;

impl StoreObserver<'_> {
    /// Offers `options` of `group` and waits; see [`crate::responders::engine::RunObserver::choose`].
    pub(super) async fn offer_choice(
        &self,
        group: &str,
        options: &[(&Step, String)],
        cancel: &CancellationToken,
    ) -> ChoiceOutcome {
        let d = self.dispatcher;
        let now = OffsetDateTime::now_utc();
        let ttl = d.approval_ttl;
        let mut ids = Vec::with_capacity(options.len());
        for (step, plan) in options {
            let request = NewApproval {
                incident_id: self.run.incident_id,
                run_id: self.run.run_id,
                step_id: step.id.clone(),
                plan: plan.clone(),
                expires_at: now + ttl,
                choice: Some(group.to_owned()),
            };
            match d.store.request_approval(&request, now).await {
                Ok(id) => ids.push(id),
                Err(e) => {
                    tracing::error!(choice = group, error.message = %e, "Could not record a choice; not acting.");
                    self.close_all(&ids, ApprovalState::Expired, None).await;
                    return ChoiceOutcome::Expired {
                        waited: "0s (the choice could not be stored)".to_owned(),
                    };
                }
            }
        }
        let waited = humantime::format_duration(ttl).to_string();
        tracing::info!(choice = group, options = ids.len(), "Waiting for a choice.");
        let offered: Vec<(i64, &str, &str)> = options
            .iter()
            .zip(&ids)
            .map(|((step, plan), id)| (*id, step.id.as_str(), plan.as_str()))
            .collect();
        let message = d
            .reporter
            .choice_requested(self.run.incident_id, group, &offered, &waited)
            .await;
        let deadline = tokio::time::Instant::now() + ttl;
        loop {
            if let Some(outcome) = self.decided(&ids, message).await {
                return outcome;
            }
            tokio::select! {
                _ = d.approvals.notified() => {}
                // A decision made on another replica is seen at the next look.
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = tokio::time::sleep_until(deadline) => {
                    self.close_all(&ids, ApprovalState::Expired, message).await;
                    // A click that won the race against the close still counts.
                    return self.decided(&ids, message).await.unwrap_or(ChoiceOutcome::Expired { waited });
                }
                _ = cancel.cancelled() => {
                    let preempted = self.preemption.preempted_by().is_some();
                    let state = if preempted {
                        ApprovalState::Preempted
                    } else {
                        ApprovalState::Cancelled
                    };
                    self.close_all(&ids, state, message).await;
                    return ChoiceOutcome::Cancelled;
                }
            }
        }
    }

    /// The choice's outcome once an option was approved or the choice denied: the other
    /// options are then closed as not chosen and the message shows every option's end.
    async fn decided(&self, ids: &[i64], message: Option<i64>) -> Option<ChoiceOutcome> {
        let d = self.dispatcher;
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            match d.store.approval(*id).await {
                Ok(Some(row)) => rows.push(row),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(approval = id, error.message = %e, "Could not read an option; will retry.");
                    return None;
                }
            }
        }
        // A denial wins over an approval made at the same moment: anyone's "no" stops it.
        let index = rows
            .iter()
            .position(|r| r.state == ApprovalState::Denied)
            .or_else(|| rows.iter().position(|r| r.state == ApprovalState::Approved))?;
        let row = rows[index].clone();
        self.close_all(ids, NOT_CHOSEN, message).await;
        let by = row
            .decided_by
            .clone()
            .unwrap_or_else(|| "someone".to_owned());
        d.reporter
            .approval_decided(self.run.incident_id, &row.step_id, row.state, &by)
            .await;
        Some(if row.state == ApprovalState::Approved {
            ChoiceOutcome::Chosen { index, by }
        } else {
            ChoiceOutcome::Denied { by }
        })
    }

    /// Closes every still-pending option as `state` and edits the message to show them all.
    async fn close_all(&self, ids: &[i64], state: ApprovalState, message: Option<i64>) {
        let store = &self.dispatcher.store;
        let now = OffsetDateTime::now_utc();
        let mut rows: Vec<ApprovalRow> = Vec::with_capacity(ids.len());
        for id in ids {
            if let Err(e) = store.close_approval(*id, state, now).await {
                tracing::error!(approval = id, error.message = %e, "Could not close an option.");
            }
            if let Ok(Some(row)) = store.approval(*id).await {
                rows.push(row);
            }
        }
        if let Some(message) = message {
            self.dispatcher
                .reporter
                .choice_settled(self.run.incident_id, message, &rows)
                .await;
        }
    }
}
