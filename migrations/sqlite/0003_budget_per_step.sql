-- Budgets count uses per destructive step: starting a cleaner must not use up the budget of
-- the cleanup that follows it in the same playbook.
ALTER TABLE budget_uses ADD COLUMN step_id TEXT NOT NULL DEFAULT '';
CREATE INDEX budget_uses_step ON budget_uses (responder, target, step_id, at_unix);
