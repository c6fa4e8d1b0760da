-- Grafana annotations ride the outbox too (destination 'grafana'): one row creates a run's
-- annotation when the run starts, one completes it (`timeEnd`, the outcome) when it ends.
-- The completion finds its annotation through the run, so a crash between the two loses
-- nothing; one row of each kind per run, so a retry or a second report never doubles one.
ALTER TABLE outbox ADD COLUMN run_id INTEGER REFERENCES runs (id);
-- The id Grafana gave the annotation, recorded on the row that created it.
ALTER TABLE outbox ADD COLUMN annotation_id INTEGER;
CREATE UNIQUE INDEX outbox_one_annotation ON outbox (run_id, kind) WHERE destination = 'grafana';
-- A file shared in the incident's thread with a Slack message (the chart of the alert's
-- expression, PNG): kept with the message so an outage delays it like any reply.
ALTER TABLE outbox ADD COLUMN file BLOB;
