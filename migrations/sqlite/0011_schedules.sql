-- How far each scheduled responder's slots were looked at: the latest slot the scheduler
-- journaled (run or reported missed) or, for a schedule first seen, the time it was first
-- seen. A restart looks for missed slots after it. Only a mark: the journal's unique dedup
-- key (responder and slot), not this table, keeps a slot to one run.
CREATE TABLE schedule_marks (
    responder TEXT    PRIMARY KEY,
    mark_unix INTEGER NOT NULL
);
