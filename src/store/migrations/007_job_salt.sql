-- Column controls (issue 15): the per-job salt of hashed columns, generated
-- by the server on first use, encrypted like connection passwords and never
-- returned by any API. It stays with the job, so a hash is stable across
-- restarts, re-snapshots and workers.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS control_salt_enc text;
