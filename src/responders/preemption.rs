//! Whether a run may be preempted, decided by the run's holder at the instant it is asked.
//!
//! A run is preempted when its target died and another incident needs the target at once;
//! only while the run merely observes (sampling, waiting in `after:`, verifying, waiting for
//! an approval). The engine marks the span of each destructive step (from its admission to
//! its end) here, and a preemption and that mark exclude each other under one lock: either
//! the preemption wins and the destructive step never starts, or the step started first and
//! the preemption is declined for good (the new run waits, as for any busy target).

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
    /// A destructive step is in flight: never preempted; the new run waits.
    Declined {
        /// The step in flight.
        step: String,
    },
    /// Asked before (preempted already, or declined for this incident): nothing new.
    Repeated,
}

impl Preemption {
    /// Asks to preempt the run for incident `by`, whose target died.
    pub fn request(&self, by: i64) -> Answer {
        let mut state = self.lock();
        if state.by.is_some() || state.declined.contains(&by) {
            return Answer::Repeated;
        }
        if let Some(step) = &state.destructive {
            let step = step.clone();
            state.declined.push(by);
            return Answer::Declined { step };
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

    /// The destructive step in flight ended (or never started after all).
    pub fn end_destructive(&self) {
        self.lock().destructive = None;
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
        assert_eq!(p.request(7), Answer::Preempted);
        assert_eq!(p.preempted_by(), Some(7));
        assert_eq!(p.request(7), Answer::Repeated);
        assert_eq!(
            p.request(8),
            Answer::Repeated,
            "the first preemption stands"
        );
        assert_eq!(
            p.begin_destructive("restart"),
            Err(7),
            "nothing destructive after"
        );
    }

    #[test]
    fn a_destructive_step_in_flight_is_never_preempted() {
        let p = Preemption::default();
        p.begin_destructive("restart").unwrap();
        assert_eq!(
            p.request(7),
            Answer::Declined {
                step: "restart".into()
            }
        );
        assert_eq!(p.preempted_by(), None);
        p.end_destructive();
        assert_eq!(
            p.request(7),
            Answer::Repeated,
            "a declined request stays so"
        );
        assert_eq!(p.request(8), Answer::Preempted, "a later death may preempt");
    }

    #[tokio::test]
    async fn preemption_cuts_the_step_in_progress() {
        let p = std::sync::Arc::new(Preemption::default());
        let waiter = tokio::spawn({
            let p = p.clone();
            async move { p.preempted().await }
        });
        assert_eq!(p.request(3), Answer::Preempted);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("cut short at once")
            .unwrap();
    }
}
