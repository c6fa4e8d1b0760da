-- Within one priority, targets take turns: each entry's turn is after the pending entries of
-- its own target (responder and the labels its target is rendered from) and never before the
-- turn the dispatcher has reached, so one flooded target cannot starve the others' alerts.
-- The dispatcher takes entries by priority, then turn, then arrival. Entries from before
-- this migration are all turn 0 of one target: they keep their arrival order.
ALTER TABLE journal ADD COLUMN target TEXT NOT NULL DEFAULT '';
ALTER TABLE journal ADD COLUMN turn INTEGER NOT NULL DEFAULT 0;
DROP INDEX journal_next;
CREATE INDEX journal_next ON journal (processed, priority DESC, turn, id);
