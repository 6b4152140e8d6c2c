-- Sinks: a change feed delivered to a webhook, NATS JetStream or RabbitMQ.
-- `position` is the feed sequence up to which every selected change is
-- confirmed by the target or stored in sink_dead_letters; it is written with
-- the counts after each batch, under the sink's run_id, so a task of an older
-- run cannot move it.
CREATE TABLE sinks (
  id            uuid PRIMARY KEY,
  name          text NOT NULL UNIQUE,
  feed          text NOT NULL,
  kind          text NOT NULL CHECK (kind IN ('webhook', 'nats', 'rabbitmq')),
  format        text NOT NULL CHECK (format IN ('json', 'debezium', 'protobuf')),
  config        jsonb NOT NULL DEFAULT '{}'::jsonb,
  secrets_enc   text,
  secret_keys   jsonb NOT NULL DEFAULT '[]'::jsonb,
  tables        jsonb NOT NULL DEFAULT '[]'::jsonb,
  delivery      jsonb NOT NULL DEFAULT '{}'::jsonb,
  status        text NOT NULL DEFAULT 'running',
  error         text,
  run_id        integer NOT NULL DEFAULT 1,
  position      text,
  delivered     bigint NOT NULL DEFAULT 0,
  failed        bigint NOT NULL DEFAULT 0,
  lag_ms        bigint,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Messages a sink gave up on, with the change they carry (replayable in any format).
CREATE TABLE sink_dead_letters (
  id          bigserial PRIMARY KEY,
  sink_id     uuid NOT NULL REFERENCES sinks(id) ON DELETE CASCADE,
  sequence    text NOT NULL,
  message_id  text NOT NULL,
  msg_key     text NOT NULL,
  event       jsonb NOT NULL,
  error       text NOT NULL,
  attempts    integer NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (sink_id, message_id)
);
CREATE INDEX sink_dead_letters_key_idx ON sink_dead_letters (sink_id, msg_key);
