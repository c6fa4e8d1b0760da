-- Alertmanager silences this service made for an alert it is handling: made when a run's
-- first destructive step starts, lifted (expired in Alertmanager) when the run fails,
-- escalates, waits for a person, the fix does not hold, the watch ends or the alert
-- resolves. While one is active the alert is followed through Alertmanager's API, which
-- sends no notification for a silenced alert. A silence is lifted once, by one guarded
-- UPDATE, so two replicas never both report it. Times are unix seconds.
CREATE TABLE silences (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id   INTEGER NOT NULL,
    run_id        INTEGER NOT NULL UNIQUE,
    silence_id    TEXT    NOT NULL,
    made_on       TEXT    NOT NULL,
    alert         TEXT    NOT NULL,
    made_unix     INTEGER NOT NULL,
    ends_unix     INTEGER NOT NULL,
    state         TEXT    NOT NULL DEFAULT 'active',
    lifted_reason TEXT,
    lifted_unix   INTEGER
);
CREATE INDEX silences_active ON silences (incident_id) WHERE state = 'active';
