-- Pipelines: versioned pipeline definitions ("models"), the registry of
-- tables loaded through the data API, component metrics, component outputs
-- (schema + sample) and the bounded staging area between components.
-- A pipeline run itself is a row of jobs (type 'pipeline') with one task per
-- component; see docs/architecture.md, "Pipelines".

CREATE TABLE pipeline_models (
  id           uuid PRIMARY KEY,
  namespace    text NOT NULL,
  name         text NOT NULL,
  version      text NOT NULL,
  dsl          jsonb NOT NULL,
  runtime_conf jsonb NOT NULL,
  description  text,
  source_job   text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (namespace, name, version)
);
CREATE INDEX pipeline_models_ns_idx ON pipeline_models (namespace, created_at);

-- Tables created or loaded through the data API (FATE's table meta): where the
-- data lives, the header and the partition count the caller asked for.
CREATE TABLE data_tables (
  namespace     text NOT NULL,
  table_name    text NOT NULL,
  connection_id uuid NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
  db_schema     text NOT NULL,
  db_table      text NOT NULL,
  partitions    integer NOT NULL DEFAULT 1,
  delimiter     text NOT NULL DEFAULT ',',
  head          boolean NOT NULL DEFAULT true,
  columns       jsonb NOT NULL DEFAULT '[]'::jsonb,
  key_columns   jsonb NOT NULL DEFAULT '[]'::jsonb,
  row_count     bigint NOT NULL DEFAULT 0,
  job_id        uuid REFERENCES jobs(id) ON DELETE SET NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (namespace, table_name)
);

-- FATE-style metrics of a component: (namespace, name) -> [[key, value], ...] plus meta.
CREATE TABLE component_metrics (
  job_id           uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  component        text NOT NULL,
  metric_namespace text NOT NULL,
  metric_name      text NOT NULL,
  data             jsonb NOT NULL DEFAULT '[]'::jsonb,
  meta             jsonb NOT NULL DEFAULT '{}'::jsonb,
  updated_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (job_id, component, metric_namespace, metric_name)
);

-- What a component produced: its columns, key, row total and the first rows.
CREATE TABLE component_outputs (
  job_id      uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  component   text NOT NULL,
  output_name text NOT NULL,
  columns     jsonb NOT NULL,
  key_columns jsonb NOT NULL DEFAULT '[]'::jsonb,
  total       bigint NOT NULL DEFAULT 0,
  sample      jsonb NOT NULL DEFAULT '[]'::jsonb,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (job_id, component, output_name)
);

-- Rows passed between components, in batches; bounded per output
-- (job_parameters.common.stage_max_rows, default 1,000,000) and removed
-- when the job ends.
CREATE TABLE component_staged_rows (
  job_id      uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  component   text NOT NULL,
  output_name text NOT NULL,
  batch       integer NOT NULL,
  rows        jsonb NOT NULL,
  PRIMARY KEY (job_id, component, output_name, batch)
);
