//! Whether a run may be preempted, decided by the run's holder at the instant it is asked.
//!
//! A run is preempted when its target died and another incident needs the target at once;
//! only while the run merely observes (sampling, waiting in `after:`, verifying, waiting for
//! an approval). The engine marks the span of each destructive step (from its admission to
//! its end) here, and a preemption and that mark exclude each other under one lock: either
//! the preemption wins and the destructive step never starts, or the step started first and
//! the preemption is declined for good (the new run waits, as for any busy target).
//!
//! A death that came before the run's last destructive step ended is declined too: that step
//! already acted on the container (a restart whose stop timed out kills it with SIGKILL, and
//! the death is reported seconds later, while the run verifies the restart it made).

use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

/// One run's preemption state, shared by its engine and the dispatcher.
#[derive(Debug, Default)]
pub struct Preemption {
    state: Mutex<State>,
    /// Fired on preemption: cuts short the observing step in progress.
    cut: CancellationToken,
}

#[derive(Debug, Default)]
struct State {
    /// The destructive step in flight, if any.
    destructive: Option<String>,
    /// The last destructive step that ran, and when it ended (unix seconds).
    acted: Option<(String, i64)>,
    /// The incident that preempted the run.
    by: Option<i64>,
    /// Incidents whose request was declined (a destructive step was in flight).
    declined: Vec<i64>,
}

/// The answer to a preemption request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The run is preempted now: it stops at once.
    Preempted,
    /// A destructive step is in flight, or ended after the death: never preempted; the new
    /// run waits.
    Declined {
        /// Why, naming the step.
        why: String,
    },
    /// Asked before (preempted already, or declined for this incident): nothing new.
    Repeated,
}

impl Preemption {
    /// Asks to preempt the run for incident `by`, whose target died at `died` (unix seconds).
    pub fn request(&self, by: i64, died: i64) -> Answer {
        let mut state = self.lock();
        if state.by.is_some() || state.declined.contains(&by) {
            return Answer::Repeated;
        }
        let why = match (&state.destructive, &state.acted) {
            (Some(step), _) => Some(format!("destructive step {step} in flight")),
            (None, Some((step, ended))) if died <= *ended => Some(format!(
                "the container died before its destructive step {step} ended"
            )),
            _ => None,
        };
        if let Some(why) = why {
            state.declined.push(by);
            return Answer::Declined { why };
        }
        state.by = Some(by);
        self.cut.cancel();
        Answer::Preempted
    }

    /// Marks destructive step `step` as in flight, unless the run was preempted (then the
    /// step must not start: returns the preempting incident).
    pub fn begin_destructive(&self, step: &str) -> Result<(), i64> {
        let mut state = self.lock();
        if let Some(by) = state.by {
            return Err(by);
        }
        state.destructive = Some(step.to_owned());
        Ok(())
    }

    /// The destructive step in flight ended at `ended` (unix seconds), or never ran (`None`:
    /// refused).
    pub fn end_destructive(&self, ended: Option<i64>) {
        let mut state = self.lock();
        let step = state.destructive.take();
        if let (Some(step), Some(ended)) = (step, ended) {
            state.acted = Some((step, ended));
        }
    }

    /// The incident that preempted the run, if one did.
    pub fn preempted_by(&self) -> Option<i64> {
        self.lock().by
    }

    /// Completes when the run is preempted.
    pub async fn preempted(&self) {
        self.cut.cancelled().await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a preempted run's unstarted steps and summary say.
pub fn reason(by: i64) -> String {
    format!("preempted by incident {by} (container died)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observing_run_is_preempted_once() {
        let p = Preemption::default();
        assert_eq!(p.request(7, 100), Answer::Preempted);
        assert_eq!(p.preempted_by(), Some(7));
        assert_eq!(p.request(7, 100), Answer::Repeated);
        let again = p.request(8, 100);
        assert_eq!(again, Answer::Repeated, "the first preemption stands");
        let step = p.begin_destructive("restart");
        assert_eq!(step, Err(7), "nothing destructive after");
    }

    #[test]
    fn a_destructive_step_in_flight_is_never_preempted() {
        let p = Preemption::default();
        p.begin_destructive("restart").unwrap();
        let why = "destructive step restart in flight".to_owned();
        assert_eq!(p.request(7, 100), Answer::Declined { why });
        assert_eq!(p.preempted_by(), None);
        p.end_destructive(Some(110));
        let again = p.request(7, 120);
        assert_eq!(again, Answer::Repeated, "a declined request stays so");
        let later = p.request(8, 120);
        assert_eq!(later, Answer::Preempted, "a later death may preempt");
    }

    #[test]
    fn a_death_before_the_last_destructive_step_ended_is_that_steps_business() {
        let cases = [
            ("died during the restart", Some(110), 105, false),
            ("died as the restart ended", Some(110), 110, false),
            ("died after the restart", Some(110), 111, true),
            ("the restart was refused", None, 105, true),
        ];
        for (name, ended, died, preempted) in cases {
            let p = Preemption::default();
            p.begin_destructive("restart").unwrap();
            p.end_destructive(ended);
            let answer = p.request(7, died);
            assert_eq!(answer == Answer::Preempted, preempted, "{name}: {answer:?}");
        }
    }

    #[tokio::test]
    async fn preemption_cuts_the_step_in_progress() {
        let p = std::sync::Arc::new(Preemption::default());
        let waiter = tokio::spawn({
            let p = p.clone();
            async move { p.preempted().await }
        });
        assert_eq!(p.request(3, 100), Answer::Preempted);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("cut short at once")
            .unwrap();
    }
}
