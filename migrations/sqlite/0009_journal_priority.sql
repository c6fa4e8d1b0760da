-- The dispatcher takes the most urgent entries first (decided at intake from the labels:
-- destructive responders, then read-only ones, then no route; severity within each), so a
-- backlog of alerts nobody acts on never delays a real response. Arrival order within one.
-- The arrival-order index stays: the oldest pending entry's age is read from it.
ALTER TABLE journal ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
CREATE INDEX journal_next ON journal (processed, priority DESC, id);
