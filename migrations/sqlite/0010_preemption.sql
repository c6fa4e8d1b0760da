-- A run asked to stop for another incident whose target died (a Docker death) while the run
-- only observed: the holder preempts it at once, or declines while a destructive step is in
-- flight. Set when the death is recorded; the holder hears of it at its next lease renewal.
ALTER TABLE runs ADD COLUMN preempt_by INTEGER;
-- When the target died (unix seconds): a death before the run's last destructive step ended
-- is that step's business (a restart whose stop timed out), not a reason to preempt.
ALTER TABLE runs ADD COLUMN preempt_died_unix INTEGER;
