-- Steps waiting for a human: decided over the API (and later in Slack), or expired.
CREATE TABLE approvals (
    id              INTEGER PRIMARY KEY,
    incident_id     INTEGER NOT NULL REFERENCES incidents (id),
    run_id          INTEGER NOT NULL REFERENCES runs (id),
    step_id         TEXT NOT NULL,
    plan            TEXT NOT NULL,
    state           TEXT NOT NULL,         -- pending | approved | denied | expired | cancelled
    requested_at    TEXT NOT NULL,
    expires_at_unix INTEGER NOT NULL,
    decided_by      TEXT,
    decided_at      TEXT
);
CREATE INDEX approvals_incident ON approvals (incident_id, state);
