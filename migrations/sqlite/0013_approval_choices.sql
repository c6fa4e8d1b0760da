-- Options offered together as one choice (`choice:` steps) carry their group; at most one
-- approval of a run's group may ever be approved, even when two people click two options at
-- the same moment: the partial unique index refuses the second, whatever the code does.
ALTER TABLE approvals ADD COLUMN choice TEXT;
CREATE UNIQUE INDEX approvals_one_choice ON approvals (run_id, choice)
    WHERE state = 'approved' AND choice IS NOT NULL;
