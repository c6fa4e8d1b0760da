//! What a run's Grafana annotation says: who ran on what, for which alert, and how it ended.

use time::OffsetDateTime;

use super::Dispatcher;
use crate::notify::grafana::RunLabel;
use crate::responders::Mode;
use crate::store::{InterruptedRun, PendingRun, RunOutcome};

fn label(run: &PendingRun) -> RunLabel<'_> {
    RunLabel {
        responder: &run.responder,
        target: &run.target,
        dry_run: run.mode == Mode::DryRun,
    }
}

impl Dispatcher {
    /// The run started now: its annotation opens.
    pub(super) async fn annotate_start(&self, run: &PendingRun) {
        let text = format!(
            "{} on {} ({}): started for {}",
            run.responder,
            run.target,
            run.mode.as_str(),
            run.alert.name()
        );
        self.reporter
            .annotation_started(
                run.incident_id,
                run.run_id,
                label(run),
                &text,
                OffsetDateTime::now_utc(),
            )
            .await;
    }

    /// The run ended now: its annotation becomes a region tagged with the outcome.
    pub(super) async fn annotate_end(&self, run: &PendingRun, outcome: RunOutcome, summary: &str) {
        let text = format!(
            "{} on {} ({}) {}: {summary}",
            run.responder,
            run.target,
            run.mode.as_str(),
            outcome.as_str()
        );
        self.reporter
            .annotation_ended(
                run.incident_id,
                run.run_id,
                label(run),
                outcome.as_str(),
                &text,
                OffsetDateTime::now_utc(),
            )
            .await;
    }

    /// A crash cut the run short: its annotation ends now, tagged `interrupted`.
    pub(super) async fn annotate_interrupted(&self, run: &InterruptedRun, text: &str) {
        let label = RunLabel {
            responder: &run.responder,
            target: &run.target,
            dry_run: false,
        };
        let outcome = RunOutcome::Interrupted.as_str();
        self.reporter
            .annotation_ended(
                run.incident_id,
                run.run_id,
                label,
                outcome,
                text,
                OffsetDateTime::now_utc(),
            )
            .await;
    }
}
