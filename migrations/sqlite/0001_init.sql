-- The intake journal: every accepted alert, durable before its webhook is answered.
CREATE TABLE journal (
    id          INTEGER PRIMARY KEY,
    dedup_key   TEXT    NOT NULL UNIQUE,
    source      TEXT    NOT NULL,
    alert       TEXT    NOT NULL,          -- canonical Alert as JSON
    received_at TEXT    NOT NULL,
    processed   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX journal_pending ON journal (processed, id);

-- One incident per alert instance (fingerprint) while it is open.
CREATE TABLE incidents (
    id            INTEGER PRIMARY KEY,
    fingerprint   TEXT NOT NULL,
    alertname     TEXT NOT NULL,
    severity      TEXT,
    target        TEXT,
    status        TEXT NOT NULL,           -- open | resolved
    labels        TEXT NOT NULL,
    summary       TEXT,
    opened_at     TEXT NOT NULL,
    resolved_at   TEXT,
    slack_channel TEXT,
    slack_ts      TEXT
);
CREATE INDEX incidents_open ON incidents (fingerprint, status);

CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    journal_id  INTEGER NOT NULL REFERENCES journal (id),
    status      TEXT NOT NULL,
    starts_at   TEXT NOT NULL,
    ends_at     TEXT,
    alert       TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX alerts_incident ON alerts (incident_id);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    alert_id    INTEGER NOT NULL REFERENCES alerts (id),
    responder   TEXT NOT NULL,
    target      TEXT NOT NULL,
    mode        TEXT NOT NULL,             -- live | dry-run
    state       TEXT NOT NULL,             -- pending | running | finished | interrupted
    outcome     TEXT,                      -- succeeded | failed | escalated | cancelled | interrupted
    summary     TEXT,
    created_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT
);
CREATE INDEX runs_incident ON runs (incident_id);
CREATE INDEX runs_state ON runs (state);

CREATE TABLE steps (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    step_id     TEXT NOT NULL,
    action      TEXT NOT NULL,
    destructive INTEGER NOT NULL DEFAULT 0,
    state       TEXT NOT NULL,             -- started | succeeded | failed | skipped | refused | cancelled | planned | unknown
    summary     TEXT,
    outputs     TEXT,
    error       TEXT,
    started_at  TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX steps_run ON steps (run_id);

-- Every decision the responder took that is not a step: no route, refused target, budget, ...
CREATE TABLE decisions (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER REFERENCES incidents (id),
    run_id      INTEGER REFERENCES runs (id),
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX decisions_incident ON decisions (incident_id);

-- Uses of destructive actions, the history budgets are computed from (survives restarts).
CREATE TABLE budget_uses (
    id        INTEGER PRIMARY KEY,
    responder TEXT NOT NULL,
    target    TEXT NOT NULL,
    at_unix   INTEGER NOT NULL,
    run_id    INTEGER
);
CREATE INDEX budget_uses_key ON budget_uses (responder, target, at_unix);

-- Messages to people, delivered in order per incident; nothing lost while Slack is down.
CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY,
    incident_id   INTEGER NOT NULL REFERENCES incidents (id),
    kind          TEXT NOT NULL,           -- parent | reply | update
    text          TEXT NOT NULL,
    state         TEXT NOT NULL,           -- pending | sent | failed | disabled
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_attempt_unix INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    channel       TEXT,
    ts            TEXT,
    created_at    TEXT NOT NULL,
    sent_at       TEXT
);
CREATE INDEX outbox_pending ON outbox (state, incident_id, id);
