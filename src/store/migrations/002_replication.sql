-- Replication: connections (secrets encrypted), jobs, tasks and job logs.
CREATE TABLE connections (
  id             uuid PRIMARY KEY,
  name           text NOT NULL UNIQUE,
  kind           text NOT NULL CHECK (kind IN ('mysql', 'postgres')),
  host           text NOT NULL,
  port           integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
  username       text NOT NULL,
  password_enc   text NOT NULL,
  database       text,
  tls            jsonb,
  environment_id text UNIQUE,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  modify_index   bigint NOT NULL DEFAULT nextval('modify_index')
);

CREATE TABLE jobs (
  id                    uuid PRIMARY KEY,
  seq                   bigserial UNIQUE,
  name                  text NOT NULL UNIQUE,
  type                  text NOT NULL CHECK (type IN ('synchronous', 'migration', 'subscribe', 'pipeline')),
  status                text NOT NULL CHECK (status IN ('pending', 'running', 'paused', 'complete', 'failed', 'canceled')),
  status_reason         text,
  source_connection_id  uuid REFERENCES connections(id),
  dest_connection_id    uuid REFERENCES connections(id),
  spec                  jsonb NOT NULL,
  owner                 text,
  feed_name             text UNIQUE,
  run_id                integer NOT NULL DEFAULT 0,
  state                 jsonb NOT NULL DEFAULT '{}'::jsonb,
  progress              jsonb NOT NULL DEFAULT '{}'::jsonb,
  metrics               jsonb NOT NULL DEFAULT '{}'::jsonb,
  error                 text,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  started_at            timestamptz,
  finished_at           timestamptz,
  create_index          bigint NOT NULL DEFAULT nextval('modify_index'),
  modify_index          bigint NOT NULL DEFAULT nextval('modify_index')
);
CREATE INDEX jobs_status_idx ON jobs (status);

CREATE TABLE tasks (
  id          uuid PRIMARY KEY,
  job_id      uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  kind        text NOT NULL,
  name        text NOT NULL,
  status      text NOT NULL DEFAULT 'pending',
  node_id     text,
  node_hint   text,
  queue       text,
  placement   text,
  position    jsonb,
  progress    jsonb NOT NULL DEFAULT '{}'::jsonb,
  detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
  error       text,
  attempts    integer NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (job_id, name)
);

CREATE TABLE job_logs (
  id      bigserial PRIMARY KEY,
  job_id  uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  at      timestamptz NOT NULL DEFAULT now(),
  level   text NOT NULL,
  message text NOT NULL
);
CREATE INDEX job_logs_job_idx ON job_logs (job_id, id);
