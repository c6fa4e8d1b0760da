//! Targets take turns within a priority (see [`Rank`]): each new journal entry's turn on
//! SQLite.
//!
//! One process is a SQLite file's writer, and appends are serialised at it, so the turns live
//! in memory: per priority, the turn the dispatcher has reached, and per priority and target,
//! the turn of its latest pending entry. They are read back from the pending entries the
//! first time the journal is appended to, so a restart keeps every target's order.

use std::collections::HashMap;

use sqlx::{Row, SqliteConnection};

use crate::store::{Rank, StoreError};

/// Beyond this many remembered targets, those with nothing pending past the dispatcher's
/// turn are forgotten (a forgotten target's next entry gets the reached turn, as it would).
const REMEMBERED: usize = 4096;

#[derive(Debug, Default)]
pub(super) struct TargetTurns {
    loaded: bool,
    /// Per priority, the latest turn the dispatcher has taken.
    reached: HashMap<u8, i64>,
    /// Per priority, per target, the turn of its latest entry.
    latest: HashMap<u8, HashMap<String, i64>>,
    /// How many remembered targets make [`TargetTurns::forget_passed`] look again.
    forget_beyond: usize,
}

impl TargetTurns {
    /// Whether the pending entries have been read back yet.
    pub(super) fn loaded(&self) -> bool {
        self.loaded
    }

    /// Reads back, from the pending entries, each target's latest turn and each priority's
    /// earliest (where the dispatcher stands).
    pub(super) async fn pending(
        conn: &mut SqliteConnection,
    ) -> Result<Vec<(u8, String, i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT priority, target, MIN(turn), MAX(turn) FROM journal
             WHERE processed = 0 GROUP BY priority, target",
        )
        .fetch_all(conn)
        .await?;
        rows.iter()
            .map(|row| {
                let priority: i64 = row.try_get(0)?;
                let priority = u8::try_from(priority)
                    .map_err(|_| StoreError::Corrupt(format!("journal priority {priority}")))?;
                Ok((priority, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?))
            })
            .collect()
    }

    /// Takes what [`TargetTurns::pending`] read.
    pub(super) fn load(&mut self, pending: Vec<(u8, String, i64, i64)>) {
        for (priority, target, earliest, latest) in pending {
            let reached = self.reached.entry(priority).or_insert(earliest);
            *reached = (*reached).min(earliest);
            self.latest
                .entry(priority)
                .or_default()
                .insert(target, latest);
        }
        self.loaded = true;
    }

    /// The turn of a new entry ranked `rank`: after its target's latest, and not before the
    /// dispatcher's.
    pub(super) fn assign(&mut self, rank: &Rank) -> i64 {
        let priority = rank.priority.0;
        let reached = self.reached.get(&priority).copied().unwrap_or(0);
        let targets = self.latest.entry(priority).or_default();
        // A known target's turn is updated in place: no key is allocated per alert.
        if let Some(latest) = targets.get_mut(rank.target.as_str()) {
            *latest = (*latest + 1).max(reached);
            return *latest;
        }
        targets.insert(rank.target.clone(), reached);
        reached
    }

    /// The dispatcher took an entry of `priority` at `turn`.
    pub(super) fn taken(&mut self, priority: u8, turn: i64) {
        let reached = self.reached.entry(priority).or_insert(turn);
        *reached = (*reached).max(turn);
    }

    /// Forgets the targets with nothing pending past the dispatcher's turn, once there are
    /// more than [`REMEMBERED`] (or twice as many as were kept the last time, so a storm of
    /// distinct targets does not make every read walk them all).
    pub(super) fn forget_passed(&mut self) {
        let total: usize = self.latest.values().map(HashMap::len).sum();
        if total <= self.forget_beyond.max(REMEMBERED) {
            return;
        }
        for (priority, targets) in &mut self.latest {
            let reached = self.reached.get(priority).copied().unwrap_or(0);
            targets.retain(|_, latest| *latest > reached);
        }
        self.forget_beyond = 2 * self.latest.values().map(HashMap::len).sum::<usize>();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Priority;

    fn rank(priority: u8, target: &str) -> Rank {
        Rank::new(Priority(priority), target)
    }

    #[test]
    fn a_flooded_target_queues_behind_itself_and_a_newcomer_joins_where_the_dispatcher_is() {
        let mut turns = TargetTurns::default();
        let flood: Vec<i64> = (0..5).map(|_| turns.assign(&rank(8, "a"))).collect();
        assert_eq!(flood, [0, 1, 2, 3, 4]);
        assert_eq!(turns.assign(&rank(8, "b")), 0, "b goes with a's first");
        turns.taken(8, 2);
        assert_eq!(
            turns.assign(&rank(8, "c")),
            2,
            "c joins at the turn reached"
        );
        assert_eq!(
            turns.assign(&rank(8, "b")),
            2,
            "b's next: not before the turn reached"
        );
        assert_eq!(turns.assign(&rank(8, "a")), 5, "a's next: after its own");
        assert_eq!(
            turns.assign(&rank(0, "a")),
            0,
            "each priority has its own turns"
        );
    }

    #[test]
    fn read_back_pending_entries_keep_each_targets_order() {
        let mut turns = TargetTurns::default();
        turns.load(vec![(8, "a".into(), 3, 40), (8, "b".into(), 7, 9)]);
        assert!(turns.loaded());
        assert_eq!(turns.assign(&rank(8, "a")), 41);
        assert_eq!(turns.assign(&rank(8, "b")), 10);
        assert_eq!(
            turns.assign(&rank(8, "c")),
            3,
            "a newcomer joins at the earliest pending"
        );
    }

    #[test]
    fn forgetting_targets_with_nothing_ahead_of_the_dispatcher_changes_no_turn() {
        let mut turns = TargetTurns::default();
        for i in 0..=REMEMBERED {
            turns.assign(&rank(4, &format!("t{i}")));
        }
        turns.assign(&rank(4, "late"));
        turns.assign(&rank(4, "late"));
        turns.taken(4, 0);
        turns.forget_passed();
        assert_eq!(
            turns.latest.len(),
            1,
            "only the target with a turn past 0 is kept"
        );
        assert_eq!(turns.assign(&rank(4, "t7")), 0);
        assert_eq!(turns.assign(&rank(4, "late")), 2);
    }

    #[test]
    fn targets_still_ahead_are_walked_again_only_once_twice_as_many_are_remembered() {
        let mut turns = TargetTurns::default();
        for i in 0..=REMEMBERED {
            let rank = rank(4, &format!("t{i}"));
            turns.assign(&rank);
            turns.assign(&rank);
        }
        // The dispatcher reaches `turn`; how many targets are remembered after.
        let remembered_once_reached = |turns: &mut TargetTurns, turn| {
            turns.taken(4, turn);
            turns.forget_passed();
            turns.latest[&4].len()
        };
        let all_still_ahead = remembered_once_reached(&mut turns, 0);
        assert_eq!(all_still_ahead, REMEMBERED + 1, "all still ahead: kept");
        let not_looked_at = remembered_once_reached(&mut turns, 5);
        assert_eq!(not_looked_at, REMEMBERED + 1, "not looked at again yet");
        for i in 0..=REMEMBERED + 1 {
            turns.assign(&rank(4, &format!("u{i}")));
        }
        turns.forget_passed();
        assert_eq!(
            turns.latest[&4].len(),
            0,
            "beyond twice as many: all passed, forgotten"
        );
    }
}
