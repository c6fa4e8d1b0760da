-- After a run whose destructive step succeeded, its incident watches the alert name and
-- target for the responder's `watch:`. A watch ends once, either way: `recurred` (the same
-- alert name and target fired again as a new incident inside the window) or `held` (the
-- window ended quietly). The state changes with one guarded UPDATE, so two replicas never
-- both report one ending. Times are unix seconds.
CREATE TABLE watches (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id       INTEGER NOT NULL,
    run_id            INTEGER NOT NULL UNIQUE,
    responder         TEXT    NOT NULL,
    alertname         TEXT    NOT NULL,
    target            TEXT    NOT NULL,
    step              TEXT    NOT NULL,
    acted_unix        INTEGER NOT NULL,
    ends_unix         INTEGER NOT NULL,
    state             TEXT    NOT NULL DEFAULT 'watching',
    recurred_incident INTEGER,
    recurred_unix     INTEGER
);
CREATE INDEX watches_watching ON watches (alertname, target) WHERE state = 'watching';
CREATE INDEX watches_incident ON watches (incident_id);

-- `/responder trust <responder> <target>`: recurrences before `trusted_unix` no longer make
-- that responder's destructive steps on that target wait for an approval.
CREATE TABLE watch_trust (
    responder    TEXT    NOT NULL,
    target       TEXT    NOT NULL,
    trusted_unix INTEGER NOT NULL,
    trusted_by   TEXT    NOT NULL,
    PRIMARY KEY (responder, target)
);
CREATE INDEX watches_recurred ON watches (responder, target, recurred_unix) WHERE state = 'recurred';
