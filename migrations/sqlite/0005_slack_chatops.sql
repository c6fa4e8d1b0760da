-- Who asked the responder to do what from Slack, allowed or refused: every slash command and
-- every button click, kept for the audit.
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    user_id   TEXT NOT NULL,             -- Slack user ID (U...)
    user_name TEXT NOT NULL,
    command   TEXT NOT NULL,             -- run | approve | deny | mode | status | ... | button
    args      TEXT NOT NULL,
    outcome   TEXT NOT NULL,             -- allowed | refused | failed
    detail    TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (id DESC);

-- Mode set at runtime (`/responder mode`): scope '' is global, otherwise a responder name.
-- Survives restarts; the settings' RESPONDER_MODE applies where no override exists.
CREATE TABLE mode_overrides (
    scope   TEXT PRIMARY KEY,
    mode    TEXT NOT NULL,               -- live | dry-run
    set_by  TEXT NOT NULL,
    set_at  TEXT NOT NULL
);

-- Messages with Block Kit blocks (approval buttons), and edits of one earlier message
-- (the approval request) instead of the incident's parent.
ALTER TABLE outbox ADD COLUMN blocks TEXT;
ALTER TABLE outbox ADD COLUMN edit_of INTEGER REFERENCES outbox (id);

-- The outbox message that carries an approval's buttons, so a decision can edit it.
ALTER TABLE approvals ADD COLUMN message_id INTEGER REFERENCES outbox (id);
