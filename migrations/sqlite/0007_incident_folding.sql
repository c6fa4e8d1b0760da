-- A firing alert with a new fingerprint for the same alert name and target as an open
-- incident folds into it (alert storms); this finds that incident without a scan.
CREATE INDEX incidents_fold ON incidents (target, alertname, status);
