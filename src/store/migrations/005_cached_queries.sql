-- Cached queries: an aggregate SQL query on a connection's source, kept fresh
-- from the capture's feed. The result, the feed sequence it covers and the
-- upkeep state are written together, so a restarted upkeep resumes exactly.
CREATE TABLE cached_queries (
  id             uuid PRIMARY KEY,
  connection_id  uuid NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
  job_id         uuid REFERENCES jobs(id) ON DELETE CASCADE,
  environment_id text,
  sql            text NOT NULL,
  mode           text NOT NULL CHECK (mode IN ('incremental', 'rerun')),
  mode_reason    text,
  plan           jsonb NOT NULL DEFAULT '{}'::jsonb,
  status         text NOT NULL DEFAULT 'pending',
  error          text,
  columns        jsonb NOT NULL DEFAULT '[]'::jsonb,
  rows           jsonb,
  row_keys       jsonb,
  version        bigint NOT NULL DEFAULT 0,
  refreshed_at   timestamptz,
  last_sequence  text,
  state          jsonb,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cached_queries_connection_idx ON cached_queries (connection_id);
CREATE INDEX cached_queries_job_idx ON cached_queries (job_id);
