//! Parent edits for folded alerts: at most one per incident every [`EVERY`], and the last
//! count always lands. A storm of 10,000 alerts is then a handful of edits of its parent,
//! not one per recorded batch, which Slack's rate limits would make everyone wait for.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tokio::time::Instant;

/// Shortest time between two count edits of one incident's parent.
pub(super) const EVERY: Duration = Duration::from_secs(5);

/// When each incident's parent was last edited for folds, and which are owed an edit.
#[derive(Debug, Default)]
pub struct FoldEdits {
    last: HashMap<i64, Instant>,
    owed: BTreeSet<i64>,
}

impl FoldEdits {
    /// Alerts folded into `incidents` at `now`: returns those to edit now; the others are
    /// owed an edit, which [`FoldEdits::due`] hands out once their wait is over.
    pub fn folded(&mut self, now: Instant, incidents: impl IntoIterator<Item = i64>) -> Vec<i64> {
        let mut edit = Vec::new();
        for incident in incidents {
            match self.last.get(&incident) {
                Some(at) if now.duration_since(*at) < EVERY => {
                    self.owed.insert(incident);
                }
                _ => {
                    self.last.insert(incident, now);
                    self.owed.remove(&incident);
                    edit.push(incident);
                }
            }
        }
        edit
    }

    /// The owed edits whose wait is over at `now`; forgets incidents quiet for [`EVERY`].
    pub fn due(&mut self, now: Instant) -> Vec<i64> {
        let waited = |at: &Instant| now.duration_since(*at) >= EVERY;
        let due: Vec<i64> = self
            .owed
            .iter()
            .copied()
            .filter(|i| self.last.get(i).is_none_or(waited))
            .collect();
        for incident in &due {
            self.owed.remove(incident);
            self.last.insert(*incident, now);
        }
        let owed = &self.owed;
        self.last.retain(|i, at| owed.contains(i) || !waited(at));
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storm_edits_its_parent_once_per_wait_and_the_last_count_lands() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut edits = FoldEdits::default();
        assert_eq!(
            edits.folded(at(0), [1, 2]),
            [1, 2],
            "the first folds edit at once"
        );
        // Batch after batch within the wait: nothing now, one edit owed each.
        for ms in (100..4_900).step_by(100) {
            assert!(edits.folded(at(ms), [1, 2]).is_empty(), "at {ms} ms");
            assert!(edits.due(at(ms)).is_empty(), "at {ms} ms");
        }
        assert_eq!(edits.due(at(5_000)), [1, 2], "the owed edits, once");
        assert!(edits.due(at(5_100)).is_empty());
        assert!(
            edits.due(at(20_000)).is_empty(),
            "nothing owed, nothing due"
        );
        assert_eq!(
            edits.folded(at(20_000), [1]),
            [1],
            "a later fold edits at once"
        );
    }
}
