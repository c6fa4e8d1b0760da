-- Within one priority, targets take turns: each entry's turn is after the pending entries of
-- its own target (responder and the labels its target is rendered from) and never before the
-- turn the dispatcher has reached in its priority (journal_reached, raised as entries are
-- recorded), so one flooded target cannot starve the others' alerts. The dispatcher takes entries by priority, then turn, then arrival. Entries from
-- before this migration are all turn 0 of one target: they keep their arrival order.
ALTER TABLE journal ADD COLUMN target TEXT NOT NULL DEFAULT '';
ALTER TABLE journal ADD COLUMN turn BIGINT NOT NULL DEFAULT 0;
DROP INDEX journal_next;
CREATE INDEX journal_next ON journal (priority DESC, turn, id) WHERE processed = 0;
CREATE INDEX journal_target_turns ON journal (priority, target, turn) WHERE processed = 0;
-- A table, not MIN(turn) over the pending entries: recorded entries stay in the partial
-- indexes as dead tuples until vacuum, and every insert would walk past all of them.
CREATE TABLE journal_reached (
    priority SMALLINT PRIMARY KEY,
    turn     BIGINT NOT NULL
);
