-- The outbox carries PagerDuty deliveries too (notes on PagerDuty incidents, Events API v2
-- triggers and resolves). Each destination is delivered on its own, so a Slack outage never
-- holds back a PagerDuty event, nor the reverse; order is kept per incident and destination.
ALTER TABLE outbox ADD COLUMN destination TEXT NOT NULL DEFAULT 'slack';
CREATE INDEX outbox_destination_pending ON outbox (destination, state, incident_id, id);
