-- Cluster pool (issue 6): named worker capacity leased to users.
-- A cluster is free when user_id IS NULL; it is held by user_id otherwise.
-- release_status: none (never released) | releasing | released | failed.
-- While releasing, the cluster is neither held (placement ignores it) nor
-- free (apply skips it) until the release finishes.
CREATE TABLE clusters (
  id                uuid PRIMARY KEY,
  name              text NOT NULL UNIQUE,
  size              integer NOT NULL CHECK (size >= 1),
  consensus_plugin  text NOT NULL DEFAULT '',
  consensus_mode    text NOT NULL DEFAULT '',
  status            text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'stopped')),
  user_id           text,
  apply_ts          timestamptz,
  release_ts        timestamptz,
  release_status    text NOT NULL DEFAULT 'none',
  release_progress  integer NOT NULL DEFAULT 0,
  release_message   text NOT NULL DEFAULT '',
  from_config       boolean NOT NULL DEFAULT false,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clusters_user_idx ON clusters (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX clusters_free_idx ON clusters (consensus_plugin, consensus_mode, size) WHERE user_id IS NULL;
CREATE INDEX tasks_queue_idx ON tasks (queue);
