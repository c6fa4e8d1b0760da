//! Safety limits: per-(responder, target) budgets and the global action rate limit.
//!
//! Budget admission is pure: the history of uses and the current time are passed in, so the
//! store can evaluate it inside a transaction (budgets survive restarts and replicas) and
//! tests can use any clock. The global rate limit (governor) and the per-target locks and
//! concurrency bound are in-process guards against alert storms.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Serialize;
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

/// How often a responder may act destructively on one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Budget {
    /// Minimum time between two uses.
    #[serde(with = "humantime_serde_compat")]
    pub cooldown: Duration,
    /// At most this many uses ...
    pub max: u32,
    /// ... within this window.
    #[serde(with = "humantime_serde_compat")]
    pub per: Duration,
}

impl Default for Budget {
    /// The runbook's default: at most 1 restart per 15 minutes and 3 per 6 hours.
    fn default() -> Self {
        Self {
            cooldown: Duration::from_secs(15 * 60),
            max: 3,
            per: Duration::from_secs(6 * 3600),
        }
    }
}

mod humantime_serde_compat {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

/// Whether a destructive step may go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead (the store has recorded the use).
    Allowed,
    /// Refused, with the reason and when it would next be allowed.
    Refused {
        /// E.g. `cooldown: last restart 3m ago, next allowed in 12m`.
        reason: String,
    },
}

/// Decides admission from the unix-second times of earlier uses. Pure.
pub fn admit(budget: &Budget, uses: &[i64], now: i64) -> Admission {
    let cooldown = secs(budget.cooldown);
    let window = secs(budget.per);
    if let Some(last) = uses.iter().copied().max() {
        let since = now - last;
        if since < cooldown {
            return Admission::Refused {
                reason: format!(
                    "cooldown: last use {} ago, next allowed in {}",
                    human(since),
                    human(cooldown - since)
                ),
            };
        }
    }
    let in_window: Vec<i64> = uses.iter().copied().filter(|t| now - t < window).collect();
    if in_window.len() >= budget.max as usize {
        let oldest = in_window.iter().copied().min().unwrap_or(now);
        return Admission::Refused {
            reason: format!(
                "{} uses in the last {} (max {}), next allowed in {}",
                in_window.len(),
                human(window),
                budget.max,
                human(window - (now - oldest))
            ),
        };
    }
    Admission::Allowed
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn human(secs: i64) -> String {
    humantime::format_duration(Duration::from_secs(secs.max(0).unsigned_abs())).to_string()
}

/// In-process guards: one run per target, a bounded number of runs, a global action rate.
#[derive(Debug, Clone)]
pub struct Guards {
    runs: Arc<Semaphore>,
    targets: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    actions: Arc<DefaultDirectRateLimiter>,
}

/// Held while a run executes: its concurrency slot and its target's lock.
#[derive(Debug)]
pub struct RunPermit {
    _slot: OwnedSemaphorePermit,
    _target: OwnedMutexGuard<()>,
}

impl Guards {
    /// `max_runs` runs at once; at most `actions_per_minute` destructive actions overall.
    pub fn new(max_runs: usize, actions_per_minute: NonZeroU32) -> Self {
        Self {
            runs: Arc::new(Semaphore::new(max_runs.max(1))),
            targets: Arc::default(),
            actions: Arc::new(RateLimiter::direct(Quota::per_minute(actions_per_minute))),
        }
    }

    /// Waits for the target to be free and a run slot, in that order, so a busy target
    /// never holds a slot another target could use.
    pub async fn acquire(&self, target: &str) -> RunPermit {
        let lock = {
            let mut targets = self.targets.lock().unwrap_or_else(|e| e.into_inner());
            // Drop locks nobody holds so the map does not grow with every target ever seen.
            targets.retain(|_, l| Arc::strong_count(l) > 1);
            targets.entry(target.to_owned()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        let slot = self
            .runs
            .clone()
            .acquire_owned()
            .await
            .expect("the run semaphore is never closed");
        RunPermit {
            _slot: slot,
            _target: guard,
        }
    }

    /// Takes one unit of the global destructive-action rate, if available.
    pub fn take_action(&self) -> bool {
        self.actions.check().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60;
    const HOUR: i64 = 3600;

    #[test]
    fn budget_admission_follows_cooldown_and_window() {
        let budget = Budget::default(); // 15m cooldown, 3 per 6h
        let now = 100 * HOUR;
        struct Case {
            name: &'static str,
            uses: Vec<i64>,
            allowed: bool,
            reason_has: &'static str,
        }
        let cases = [
            Case {
                name: "first use",
                uses: vec![],
                allowed: true,
                reason_has: "",
            },
            Case {
                name: "inside cooldown",
                uses: vec![now - 5 * MIN],
                allowed: false,
                reason_has: "cooldown",
            },
            Case {
                name: "cooldown just over",
                uses: vec![now - 15 * MIN],
                allowed: true,
                reason_has: "",
            },
            Case {
                name: "three in window",
                uses: vec![now - 5 * HOUR, now - 3 * HOUR, now - HOUR],
                allowed: false,
                reason_has: "3 uses in the last 6h (max 3)",
            },
            Case {
                name: "oldest left the window",
                uses: vec![now - 6 * HOUR, now - 3 * HOUR, now - HOUR],
                allowed: true,
                reason_has: "",
            },
        ];
        for case in cases {
            let got = admit(&budget, &case.uses, now);
            match got {
                Admission::Allowed => assert!(case.allowed, "{}", case.name),
                Admission::Refused { reason } => {
                    assert!(!case.allowed, "{}: {reason}", case.name);
                    assert!(reason.contains(case.reason_has), "{}: {reason}", case.name);
                }
            }
        }
    }

    #[test]
    fn refusal_says_when_the_next_use_is_allowed() {
        let budget = Budget::default();
        let got = admit(&budget, &[1000 - 5 * MIN], 1000);
        assert_eq!(
            got,
            Admission::Refused {
                reason: "cooldown: last use 5m ago, next allowed in 10m".into()
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_run_per_target_at_a_time_but_other_targets_proceed() {
        let guards = Guards::new(4, NonZeroU32::new(10).unwrap());
        let first = guards.acquire("k2-a").await;
        let other = tokio::time::timeout(Duration::from_secs(1), guards.acquire("k2-b")).await;
        assert!(other.is_ok(), "another target is not blocked");
        let same = tokio::time::timeout(Duration::from_secs(60), guards.acquire("k2-a")).await;
        assert!(same.is_err(), "the same target waits while a run holds it");
        drop(first);
        let same = tokio::time::timeout(Duration::from_secs(1), guards.acquire("k2-a")).await;
        assert!(same.is_ok(), "and proceeds once it is released");
    }

    #[tokio::test(start_paused = true)]
    async fn global_concurrency_is_bounded() {
        let guards = Guards::new(1, NonZeroU32::new(10).unwrap());
        let _a = guards.acquire("k2-a").await;
        let b = tokio::time::timeout(Duration::from_secs(60), guards.acquire("k2-b")).await;
        assert!(b.is_err(), "a second run waits for the only slot");
    }

    #[test]
    fn global_action_rate_is_limited() {
        let guards = Guards::new(1, NonZeroU32::new(2).unwrap());
        assert!(guards.take_action());
        assert!(guards.take_action());
        assert!(
            !guards.take_action(),
            "third action inside the minute is refused"
        );
    }
}
