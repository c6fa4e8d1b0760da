//! How the journal entries of one read are split into recording transactions.
//!
//! An entry that may act (one a route, a manual request or PagerDuty enrichment may turn into
//! a run), a resolve and a note each cost the transaction statements of their own; an alert
//! nothing can act on only folds into an open incident or opens a quiet one, which costs
//! almost nothing in a batch. So a transaction takes up to [`RECORD_BATCH`] of the former
//! and four times as many of the latter (mixed in proportion): a backlog of noise is worked
//! off with a quarter of the commits, while each transaction intake waits for stays as
//! short as before.

use super::{Dispatcher, RECORD_BATCH};
use crate::alert::{Alert, Status};
use crate::routing::extract;
use crate::store::JournalEntry;

/// How many more entries nothing can act on a transaction takes than entries that may.
const QUIET_PER_ACTING: usize = 4;

impl Dispatcher {
    /// `entries` in order, as the batches one transaction each records.
    pub(super) fn batches<'e>(&self, entries: &'e [JournalEntry]) -> Vec<&'e [JournalEntry]> {
        split(entries, |entry| self.may_cost(&entry.alert))
    }

    /// Whether recording `alert` may cost statements of its own: anything but a firing
    /// alert that no route matches (nor a manual request, nor enrichment could change that).
    fn may_cost(&self, alert: &Alert) -> bool {
        alert.status != Status::Firing
            || alert.manual_request().is_some()
            || extract::applies(alert)
            || !self.catalog.routes.matching(&alert.labels).is_empty()
    }
}

/// Consecutive slices of `entries`, each within one transaction's budget: an entry `costly`
/// says may cost statements of its own counts [`QUIET_PER_ACTING`] times another.
fn split<T>(entries: &[T], costly: impl Fn(&T) -> bool) -> Vec<&[T]> {
    let budget = RECORD_BATCH * QUIET_PER_ACTING;
    let mut batches = Vec::new();
    let (mut start, mut spent) = (0, 0);
    for (i, entry) in entries.iter().enumerate() {
        let cost = if costly(entry) { QUIET_PER_ACTING } else { 1 };
        if spent + cost > budget {
            batches.push(&entries[start..i]);
            (start, spent) = (i, 0);
        }
        spent += cost;
    }
    if start < entries.len() {
        batches.push(&entries[start..]);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(batches: &[&[bool]]) -> Vec<usize> {
        batches.iter().map(|b| b.len()).collect()
    }

    #[test]
    fn entries_that_may_act_go_as_before_and_noise_four_times_as_many() {
        let acting = vec![true; 40];
        assert_eq!(sizes(&split(&acting, |c| *c)), [16, 16, 8]);
        let noise = vec![false; 150];
        assert_eq!(sizes(&split(&noise, |c| *c)), [64, 64, 22]);
        assert!(split(&Vec::<bool>::new(), |c| *c).is_empty());
    }

    #[test]
    fn a_mix_counts_each_by_its_cost_and_keeps_the_order() {
        // 8 acting (32) + 32 quiet (32) fill one budget; the rest starts the next batch.
        let mut mixed = vec![true; 8];
        mixed.extend(vec![false; 33]);
        let batches = split(&mixed, |c| *c);
        assert_eq!(sizes(&batches), [40, 1]);
        assert_eq!(batches.concat(), mixed);
    }
}
