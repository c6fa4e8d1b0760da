-- The intake journal in a file of its own, so that a webhook's group commit never waits for
-- the dispatcher's bookkeeping at the main database's one writer. Every accepted alert,
-- durable before its webhook is answered; `processed` is set after the main database has
-- recorded the entry (and the main database's own `journal` row for that id is what says so,
-- see src/store/sqlite/intake_file.rs). AUTOINCREMENT: an id is never reused, since the main
-- database refers to it.
CREATE TABLE journal (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key   TEXT    NOT NULL UNIQUE,
    source      TEXT    NOT NULL,
    alert       TEXT    NOT NULL,          -- canonical Alert as JSON
    received_at TEXT    NOT NULL,
    priority    INTEGER NOT NULL DEFAULT 0,
    processed   INTEGER NOT NULL DEFAULT 0
);
-- Only pending entries are indexed for the dispatcher: its next batch (most urgent first,
-- arrival order within one) and the oldest pending entry's age.
CREATE INDEX journal_next ON journal (priority DESC, id) WHERE processed = 0;
CREATE INDEX journal_oldest ON journal (id) WHERE processed = 0;
