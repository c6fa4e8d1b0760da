//! Budgets as they would have stood: the uses recorded then by runs `replay` does not re-plan
//! (older alerts, other incidents), plus the uses its own re-planned runs would have made, in
//! time order. A restart that would not have happened frees its budget for the next alert; a
//! changed `budget:` shows as "would have been refused" or "would now be allowed".

use std::collections::BTreeSet;

use crate::limits::{admit, Admission, Budget};
use crate::store::BudgetUse;

/// Whose budget: (responder, target, step).
type Key = (String, String, String);

/// The history budgets are weighed against during a replay.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    /// (key, unix time) of every use counted.
    uses: Vec<(Key, i64)>,
}

impl Ledger {
    /// The recorded uses, without those of the runs being re-planned (`replayed`): those are
    /// spent again, or not, as the replay decides.
    pub(super) fn new(recorded: Vec<BudgetUse>, replayed: &BTreeSet<i64>) -> Self {
        let uses = recorded
            .into_iter()
            .filter(|u| u.run_id.is_none_or(|id| !replayed.contains(&id)))
            .map(|u| ((u.responder, u.target, u.step), u.at_unix))
            .collect();
        Self { uses }
    }

    /// Whether `budget` admits a use of (responder, target, step) at `at`, counting the uses
    /// up to then; when it does, the use is counted.
    pub(super) fn spend(
        &mut self,
        responder: &str,
        target: &str,
        step: &str,
        budget: &Budget,
        at: i64,
    ) -> Admission {
        let key: Key = (responder.to_owned(), target.to_owned(), step.to_owned());
        let before: Vec<i64> = self
            .uses
            .iter()
            .filter(|(k, t)| *k == key && *t <= at)
            .map(|(_, t)| *t)
            .collect();
        let admission = admit(budget, &before, at);
        if admission == Admission::Allowed {
            self.uses.push((key, at));
        }
        admission
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn used(run: Option<i64>, at: i64) -> BudgetUse {
        BudgetUse {
            responder: "high-memory".into(),
            target: "k2-a".into(),
            step: "restart".into(),
            at_unix: at,
            run_id: run,
        }
    }

    fn budget(cooldown_min: u64) -> Budget {
        Budget {
            cooldown: Duration::from_secs(cooldown_min * 60),
            max: 3,
            per: Duration::from_secs(6 * 3600),
        }
    }

    #[test]
    fn uses_of_other_runs_count_and_those_of_replayed_runs_are_decided_again() {
        // Run 1 (older, not replayed) restarted at t=0; run 2 (replayed) at t=600.
        let recorded = vec![used(Some(1), 0), used(Some(2), 600)];
        let mut ledger = Ledger::new(recorded, &BTreeSet::from([2]));
        // Run 2 replayed at t=600 with a 15 min cooldown: run 1's use refuses it.
        assert!(matches!(
            ledger.spend("high-memory", "k2-a", "restart", &budget(15), 600),
            Admission::Refused { .. }
        ));
        // With a 5 min cooldown it would now be allowed, and counts from then on.
        assert_eq!(
            ledger.spend("high-memory", "k2-a", "restart", &budget(5), 600),
            Admission::Allowed
        );
        assert!(matches!(
            ledger.spend("high-memory", "k2-a", "restart", &budget(5), 700),
            Admission::Refused { .. }
        ));
        // Another target or step has its own budget; a later use never counts earlier.
        assert_eq!(
            ledger.spend("high-memory", "k2-b", "restart", &budget(15), 650),
            Admission::Allowed
        );
        let mut early = Ledger::new(vec![used(None, 5_000)], &BTreeSet::new());
        assert_eq!(
            early.spend("high-memory", "k2-a", "restart", &budget(15), 1_000),
            Admission::Allowed
        );
    }
}
