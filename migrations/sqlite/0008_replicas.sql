-- Runs are held under leases, so that with several replicas (PostgreSQL) a dead replica's
-- runs are reported by another; on SQLite one process owns the file and the same columns
-- tell this process's runs from an earlier one's.
ALTER TABLE runs ADD COLUMN owner TEXT;
ALTER TABLE runs ADD COLUMN lease_until_unix INTEGER NOT NULL DEFAULT 0;
-- A resolve recorded anywhere asks the run's holder to cancel what has not started.
ALTER TABLE runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
-- Set to the target while the run holds it: one running run per target is a database rule.
ALTER TABLE runs ADD COLUMN target_lock TEXT;
CREATE UNIQUE INDEX runs_one_per_target ON runs (target_lock);
CREATE INDEX runs_owner ON runs (owner, state);

